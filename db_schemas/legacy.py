"""Documents written by earlier omni-flows versions: every rule that reads them, in one place.

Nothing stored is rewritten to read it. A document stored before settings ids existed
gets the id derived from what it stored (:func:`legacy_settings_id`: model, task,
checkpoint, reference scheme), when it is read (:func:`with_settings_id`, the documents'
validator) and, on ``omni-flows db migrate`` (``omni_flows.migrate``), in the database
together with the adsorbate id of adsorption documents (:func:`migration_update`). Old
names read as today's (:data:`SCHEME_NAMES`), and a setting added later matches the
older results at the value they were made with (:data:`LEFT_OUT_AT`). GPAW documents
written before 2026-12 hold their settings id in ``provenance.checkpoint_hash``; they
are read as stored (their ``settings_id`` is the same id). Documents written before
2026-12 store the model, task, checkpoint and optimizer beside ``provenance.settings``
(today they are stored once, in it): read as stored, and queries match them there too
(:data:`IDENTITY_BESIDE_SETTINGS`, ``query.stored_once``).
"""

from typing import Any

from .identity import settings_id

# a reference scheme under the name it had before 2026-12 -> today's name
SCHEME_NAMES = {"atomic": "oc20_elemental"}
# settings left out of provenance.settings at the value they always had before they
# existed, so that older results keep their settings id: a missing field is this value
LEFT_OUT_AT = {"provenance.settings.placements.tilt": 0.0}
# a Provenance field -> its name in settings, where it is stored once since 2026-12
# (db_schemas.provenance); before, beside them: identity_of reads either
IN_SETTINGS = {"model_name": "model", "task": "task", "checkpoint_hash": "checkpoint",
               "optimizer": "optimizer"}
# where documents written before 2026-12 (and a DFT code's provenance, whose settings do
# not name it) store what made the result: beside provenance.settings
IDENTITY_BESIDE_SETTINGS = {field: f"provenance.{field}" for field in IN_SETTINGS}
# a MongoDB filter: documents stored before settings ids existed
WITHOUT_SETTINGS_ID = {"$or": [{"settings_id": {"$exists": False}}, {"settings_id": None},
                               {"settings_id": ""}]}
# the fields of a stored document that a migration reads
MIGRATION_FIELDS = {"provenance": 1, "adsorbate": 1, "adsorbate_id": 1}
# collections whose documents got an adsorbate id after the adsorbate name
_ADSORPTION = ("adsorption_placements", "adsorption_best")


def in_settings(settings: Any, name: str) -> tuple[bool, Any]:
    """Whether settings hold ``name`` (under ``mlip`` or at the top), and its value."""
    if not isinstance(settings, dict):
        return False, None
    for scope in (settings.get("mlip"), settings):
        if isinstance(scope, dict) and name in scope:
            return True, scope[name]
    return False, None


def identity_of(provenance: dict) -> dict[str, Any]:
    """``model_name``, ``task``, ``checkpoint_hash``, ``optimizer`` of a stored provenance
    dict: as stored beside its settings where they are (older documents, DFT codes), else
    from its settings; None where neither holds one."""
    settings = provenance.get("settings")
    return {field: provenance[field] if field in provenance else in_settings(settings, name)[1]
            for field, name in IN_SETTINGS.items()}


def legacy_settings_id(doc: dict) -> str:
    """The settings id of a document stored without one: from its model and reference.

    Before settings ids, a store held one result per (system, model, task, checkpoint,
    reference scheme) at most; these are what the id is made of.
    """
    p = doc.get("provenance") or {}
    if not isinstance(p, dict):  # a Provenance given to a document's constructor
        p = p.model_dump(mode="json")
    reference = p.get("energy_reference") or {}
    if not isinstance(reference, dict):
        reference = reference.model_dump(mode="json")
    made_by = identity_of(p)  # as stored beside the settings, else from them
    return settings_id({"legacy": True, "model": made_by["model_name"], "task": made_by["task"],
                        "checkpoint": made_by["checkpoint_hash"],
                        "reference": reference.get("scheme")})


def with_settings_id(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored dict with its settings id: the legacy one when it was stored without."""
    if not doc.get("settings_id"):
        doc = {**doc, "settings_id": legacy_settings_id(doc)}
    return doc


def migration_update(collection: str, doc: dict) -> dict[str, Any]:
    """The fields ``omni-flows db migrate`` sets on a document of ``collection`` stored
    without a settings id (read with :data:`MIGRATION_FIELDS`)."""
    update = {"settings_id": legacy_settings_id(doc)}
    if collection in _ADSORPTION and not doc.get("adsorbate_id"):
        update["adsorbate_id"] = doc.get("adsorbate")  # the built-in name it was made with
    return update
