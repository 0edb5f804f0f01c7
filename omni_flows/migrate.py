"""Bring a database written by an earlier omni-flows up to today's documents, keeping all.

Documents stored before settings ids existed get the id derived from what they
stored (``db_schemas.legacy``: model, task, checkpoint,
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

from omni_flows.db_schemas.indexes import COLLECTIONS
from omni_flows.db_schemas.legacy import MIGRATION_FIELDS, WITHOUT_SETTINGS_ID, migration_update


def documents_to_migrate(db: Database) -> dict[str, int]:
    """The result collections that hold documents without a settings id, and how many."""
    found = {}
    for spec in COLLECTIONS:
        if spec.document is not None and db[spec.name].find_one(WITHOUT_SETTINGS_ID, {"_id": 1}):
            found[spec.name] = db[spec.name].count_documents(WITHOUT_SETTINGS_ID)
    return found


def migrate_settings_ids(db: Database) -> int:
    """Give every result document without a settings id its legacy one; return how many."""
    changed = 0
    for spec in COLLECTIONS:
        if spec.document is None:
            continue
        collection = db[spec.name]
        for doc in list(collection.find(WITHOUT_SETTINGS_ID, MIGRATION_FIELDS)):
            collection.update_one({"_id": doc["_id"]},
                                  {"$set": migration_update(spec.name, doc)})
            changed += 1
    return changed
