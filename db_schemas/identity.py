"""The identity of a result: one function gives a job's key and a document's natural key.

A number is decided by WHAT is computed (the system: bulk, slab, adsorbate
geometry and binding atom, placement index) and HOW (the settings: model, task,
checkpoint hash, relaxation settings, slab specification, placement settings,
reference scheme). :func:`result_identity` hashes both: ``key`` names the jobflow
job (a re-run with the same input finds its output), ``settings_id`` (10 hex
characters) goes into the document's natural key beside the system's fields, so
results made with other settings are other documents and never replace one
another. Tables and queries tell results apart by ``settings_id`` and select by
any setting through ``provenance.settings``. A setting belongs to a result only if it
changes that result's number: a placement's relaxation is keyed without the reference
scheme, its adsorption energy with it (workflows/flows/surface_flow.py).

Documents written before settings ids existed get one derived from what they
stored (:func:`.legacy.legacy_settings_id`), so old and new results coexist too.
"""

from dataclasses import dataclass
from typing import Any

from .fingerprint import content_hash

# hex characters of a settings id: 16^10 ~ 1e12, collisions need ~1e6 settings in one store
SETTINGS_ID_LENGTH = 10


@dataclass(frozen=True)
class ResultIdentity:
    """``key``: full hash of kind + system + settings (the job's key);
    ``settings_id``: short hash of the settings alone (in the document's natural key)."""

    key: str
    settings_id: str
    settings: dict


def settings_id(settings: dict) -> str:
    """The short id of a settings dict (canonical JSON, sorted keys)."""
    return content_hash(settings)[:SETTINGS_ID_LENGTH]


def result_identity(kind: str, system: Any, settings: dict) -> ResultIdentity:
    """The identity of the result ``kind`` of ``system`` made with ``settings``."""
    return ResultIdentity(
        key=content_hash({"kind": kind, "system": system, "settings": settings}),
        settings_id=settings_id(settings),
        settings=settings,
    )
