"""Bring a database written by an earlier omni-flows up to today's documents, keeping all.

Documents stored before settings ids existed get the id derived from what they
stored (``db_schemas.identity.legacy_settings_id``: model, task, checkpoint,
reference scheme) and adsorption documents their adsorbate id (the built-in
name they were made with), so that their natural keys are complete and new
results, made with other settings, sit beside them instead of replacing them.
Nothing is deleted or rewritten beyond these fields; running it again changes
nothing. It runs when asked (``omni-flows db migrate``, ``stores.migrate_database``),
before the unique indexes are (re)built; connecting to a database that needs it is
refused with that advice (:func:`documents_to_migrate`), so that no command changes
stored documents unasked.
"""

from pymongo.database import Database

from omni_flows.db_schemas.identity import legacy_settings_id
from omni_flows.db_schemas.indexes import COLLECTIONS

_WITHOUT_ID = {"$or": [{"settings_id": {"$exists": False}}, {"settings_id": None},
                       {"settings_id": ""}]}
_ADSORPTION = ("adsorption_placements", "adsorption_best")


def documents_to_migrate(db: Database) -> dict[str, int]:
    """The result collections that hold documents without a settings id, and how many."""
    found = {}
    for spec in COLLECTIONS:
        if spec.document is not None and db[spec.name].find_one(_WITHOUT_ID, {"_id": 1}):
            found[spec.name] = db[spec.name].count_documents(_WITHOUT_ID)
    return found


def migrate_settings_ids(db: Database) -> int:
    """Give every result document without a settings id its legacy one; return how many."""
    changed = 0
    for spec in COLLECTIONS:
        if spec.document is None:
            continue
        collection = db[spec.name]
        for doc in list(collection.find(_WITHOUT_ID, {"provenance": 1, "adsorbate": 1,
                                                      "adsorbate_id": 1})):
            update = {"settings_id": legacy_settings_id(doc)}
            if spec.name in _ADSORPTION and not doc.get("adsorbate_id"):
                update["adsorbate_id"] = doc.get("adsorbate")
            collection.update_one({"_id": doc["_id"]}, {"$set": update})
            changed += 1
    return changed
