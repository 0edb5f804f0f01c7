"""Documents written by earlier omni-flows versions: every rule that reads them, in one place.

Nothing stored is rewritten to read it. A document stored before settings ids existed
gets the id derived from what it stored (:func:`legacy_settings_id`: model, task,
checkpoint, reference scheme), when it is read (:func:`with_settings_id`, the documents'
validator) and, on ``omni-flows db migrate`` (``omni_flows.migrate``), in the database
together with the adsorbate id of adsorption documents (:func:`migration_update`). Old
names read as today's (:data:`SCHEME_NAMES`), and a setting added later matches the
older results at the value they were made with (:data:`LEFT_OUT_AT`). GPAW documents
written before 2026-12 hold their settings id in ``provenance.checkpoint_hash``; they
are read as stored (their ``settings_id`` is the same id).
"""

from typing import Any

from .identity import settings_id

# a reference scheme under the name it had before 2026-12 -> today's name
SCHEME_NAMES = {"atomic": "oc20_elemental"}
# settings left out of provenance.settings at the value they always had before they
# existed, so that older results keep their settings id: a missing field is this value
LEFT_OUT_AT = {"provenance.settings.placements.tilt": 0.0}
# a MongoDB filter: documents stored before settings ids existed
WITHOUT_SETTINGS_ID = {"$or": [{"settings_id": {"$exists": False}}, {"settings_id": None},
                               {"settings_id": ""}]}
# the fields of a stored document that a migration reads
MIGRATION_FIELDS = {"provenance": 1, "adsorbate": 1, "adsorbate_id": 1}
# collections whose documents got an adsorbate id after the adsorbate name
_ADSORPTION = ("adsorption_placements", "adsorption_best")


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
    return settings_id({"legacy": True, "model": p.get("model_name"), "task": p.get("task"),
                        "checkpoint": p.get("checkpoint_hash"),
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
