"""Where results are written: a jobflow JobStore on MongoDB, one code path for every server.

Documents go to a maggma ``MongoStore`` (collection ``outputs``), blobs
(trajectories, large arrays: never inside a 16 MB document) to a
``GridFSStore`` (``outputs_blobs``). The server is the local SecantusDB of
``omni_flows.server`` or a user's MongoDB URI; the pymongo calls are the same.

Every client is made with the same options: writes acknowledged only once they
are in the journal (``j=True``), and an unreachable server reported within
seconds instead of a hang.

Job outputs that are result documents (``omni_flows.db_schemas``) are also
upserted into their own collection on their natural key, so that running a
flow again replaces its results instead of adding copies.
"""

from typing import Any

from jobflow import JobStore
from maggma.stores import GridFSStore, MongoStore
from pymongo import MongoClient, ReplaceOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from omni_flows.db_schemas.calculation import TASK_DOCUMENT_CLASSES, MLIPCalculationDoc
from omni_flows.db_schemas.indexes import (
    COLLECTIONS,
    JOB_BLOBS,
    JOB_OUTPUTS,
    RESULT_DOCUMENTS,
    document_for_class,
)
from omni_flows.db_schemas.legacy import with_settings_id
from omni_flows.db_schemas.query import field_value
from omni_flows.errors import DatabaseUnavailableError, IndexConflictError, MigrationNeededError
from omni_flows.migrate import documents_to_migrate, migrate_settings_ids
from omni_flows.server import ensure_server
from omni_flows.settings import Settings, load_settings, redact

# below the 5 s within which an unreachable database must be reported
SERVER_SELECTION_TIMEOUT_MS = 3000

# journal=True: the server acknowledges a write only once it is in its on-disk journal
CLIENT_OPTIONS: dict[str, Any] = {
    "w": 1,
    "journal": True,
    "serverSelectionTimeoutMS": SERVER_SELECTION_TIMEOUT_MS,
    "connectTimeoutMS": SERVER_SELECTION_TIMEOUT_MS,
}

# result documents, and the MLIP Makers' atomate2 task documents (filed as MLIPCalculationDoc)
_RESULT_CLASSES = [doc.__name__ for doc in RESULT_DOCUMENTS] + list(TASK_DOCUMENT_CLASSES)


def mongo_client(uri: str) -> MongoClient:
    """A pymongo client with the platform's options (journaled writes, short timeouts)."""
    return MongoClient(uri, **CLIENT_OPTIONS)


def check_connection(uri: str) -> None:
    """Raise :class:`DatabaseUnavailableError` unless the server at ``uri`` answers."""
    client = mongo_client(uri)
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        seconds = SERVER_SELECTION_TIMEOUT_MS / 1000
        raise DatabaseUnavailableError(
            f"cannot reach MongoDB at {redact(uri)} within {seconds:.0f} s "
            f"({type(exc).__name__}); is it running? The local server starts with "
            "`omni-flows db start`; for your own MongoDB check OMNI_FLOWS_MONGODB_URI "
            "(or mongodb_uri in the config file)."
        ) from None
    finally:
        client.close()


def ensure_indexes(db: Database) -> list[str]:
    """Create every declared index unless one on the same fields exists; return their names.

    A unique key index whose fields changed between versions (a document gained a key
    field) is rebuilt on the new fields: documents stay, only the index is replaced.
    """
    names = []
    for spec in COLLECTIONS:
        listed = list(db[spec.name].list_indexes())
        existing = {tuple(ix["key"]): ix for ix in listed}
        by_name = {ix["name"]: ix for ix in listed}
        for index in spec.indexes:
            found = existing.get(index.fields)
            stale = by_name.get(index.name) if found is None else None
            if stale is not None:
                db[spec.name].drop_index(index.name)
            if found is None:
                keys = [(field, 1) for field in index.fields]
                try:
                    db[spec.name].create_index(keys, unique=index.unique, name=index.name)
                except PyMongoError as exc:
                    raise IndexConflictError(
                        f"{db.name}.{spec.name}: cannot build index {index.name!r} on "
                        f"{index.fields} ({exc}); documents that repeat this key must be "
                        "merged or removed first"
                    ) from None
            elif bool(found.get("unique")) != index.unique:
                raise IndexConflictError(
                    f"{db.name}.{spec.name} has index {found['name']!r} on {index.fields} with "
                    f"unique={bool(found.get('unique'))}; omni-flows needs unique={index.unique}. "
                    "Drop that index and run again."
                )
            names.append(f"{spec.name}.{index.name if found is None else found['name']}")
    return names


def _ready_uri(settings: Settings) -> str:
    """The server's URI, once it answers and has every index."""
    uri = ensure_server(settings)
    check_connection(uri)
    client = mongo_client(uri)
    try:
        db = client[settings.database]
        pending = documents_to_migrate(db)  # before the keys' indexes change
        if pending:
            listed = ", ".join(f"{n} in {name}" for name, n in pending.items())
            raise MigrationNeededError(
                f"database {settings.database} holds documents of an earlier omni-flows "
                f"without settings ids ({listed}): run `omni-flows db migrate` once; it gives "
                "them the ids of what they stored, keeps every document and changes no number")
        ensure_indexes(db)
    finally:
        client.close()
    return uri


def migrate_database(settings: Settings | None = None) -> int:
    """Bring a database of an earlier omni-flows up to today's documents
    (``omni_flows.migrate``), then build its indexes; the number of documents changed."""
    settings = settings or load_settings()
    uri = ensure_server(settings)
    check_connection(uri)
    client = mongo_client(uri)
    try:
        changed = migrate_settings_ids(client[settings.database])
        ensure_indexes(client[settings.database])
    finally:
        client.close()
    return changed


def database_status(settings: Settings | None = None) -> dict:
    """Where the database is: the local server (running, pid, uri, data folder) or the
    configured URI, and the database name. A server that does not answer raises
    :class:`DatabaseUnavailableError`; the URI carries the local server's credential."""
    from omni_flows.server import server_status

    settings = settings or load_settings()
    if settings.uses_local_server:
        info = server_status(settings)
        if info is not None:
            check_connection(info.uri)
        status = ({"running": True, **info.as_dict()} if info
                  else {"running": False, "uri": settings.uri, "pid": None})
    else:  # a user's MongoDB: not ours to start or stop, but it must answer
        check_connection(settings.uri)
        status = {"running": True, "uri": settings.uri, "pid": None}
    return {**status, "database": settings.database}


def connect_database(settings: Settings | None = None) -> Database:
    """The platform's database, reachable and indexed (starts the local server if needed)."""
    settings = settings or load_settings()
    return mongo_client(_ready_uri(settings))[settings.database]


def _stored_form(output: Any) -> tuple[type, dict] | None:
    """(document class, stored dict) of a job output that is a result, else None."""
    if not isinstance(output, dict) or output.get("@class") not in _RESULT_CLASSES:
        return None
    if output["@class"] in TASK_DOCUMENT_CLASSES:
        return MLIPCalculationDoc, MLIPCalculationDoc.from_task_document(output).to_document()
    doc_cls = document_for_class(output["@class"])
    if doc_cls is None or not output.get("@module", "").startswith("omni_flows.db_schemas"):
        return None
    return doc_cls, with_settings_id(
        {k: v for k, v in output.items() if not k.startswith("@") and k != "_id"})


def publish_results(
    store: JobStore, criteria: dict | None = None, missing_only: bool = False
) -> int:
    """Upsert the job outputs that are result documents (or lists of them) into their collections.

    Oldest first, so that where several runs made the same result the newest
    one stays. With ``missing_only`` a result whose key is already filed is left
    as it is. Returns the number of documents written.
    """
    db = store.docs_store._collection.database
    query = {**(criteria or {}), "output.@class": {"$in": _RESULT_CLASSES}}  # matches lists too
    written = 0
    for job_doc in store.docs_store.query(query, sort={"completed_at": 1}):
        output = job_doc["output"]
        # one round trip per collection and job, however many documents it made
        upserts: dict[str, list[tuple[dict, dict]]] = {}
        for stored in map(_stored_form, output if isinstance(output, list) else [output]):
            if stored is None:
                continue
            doc_cls, doc = stored
            doc["provenance"]["jobflow_uuid"] = (doc["provenance"].get("jobflow_uuid")
                                                 or job_doc["uuid"])
            key = {field: field_value(doc, field) for field in doc_cls.natural_key()}
            if missing_only and db[doc_cls.collection].count_documents(key, limit=1):
                continue
            upserts.setdefault(doc_cls.collection, []).append((key, doc))
        for name, docs in upserts.items():
            _replace_all(db[name], docs)
            written += len(docs)
    return written


def _replace_all(collection, docs: list[tuple[dict, dict]]) -> None:
    """Upsert ``docs`` (natural key, document) in order in one bulk write; where a concurrent
    writer inserted one of the keys first (duplicate key), that one and the rest are
    upserted one by one."""
    try:
        collection.bulk_write([ReplaceOne(key, doc, upsert=True) for key, doc in docs],
                              ordered=True)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if not errors or any(e.get("code") != 11000 for e in errors):
            raise
        for key, doc in docs[errors[0]["index"]:]:
            try:
                collection.replace_one(key, doc, upsert=True)
            except DuplicateKeyError:  # a concurrent writer inserted the same key first
                collection.replace_one(key, doc, upsert=True)


def _field(doc: Any, name: str) -> Any:
    """A field of a jobflow JobStoreDocument or of its dict form."""
    return doc.get(name) if isinstance(doc, dict) else getattr(doc, name, None)


def _is_result(output: Any) -> bool:
    if isinstance(output, list):
        return any(map(_is_result, output))
    if isinstance(output, dict):
        return output.get("@class") in _RESULT_CLASSES
    return type(output).__name__ in _RESULT_CLASSES


class OmniJobStore(JobStore):
    """A jobflow JobStore that also files result documents in their own collections."""

    def update(self, docs, key=None, save=None):
        super().update(docs, key=key, save=save)
        docs = docs if isinstance(docs, list) else [docs]
        uuids = [_field(d, "uuid") for d in docs if _is_result(_field(d, "output"))]
        if uuids:
            publish_results(self, {"uuid": {"$in": uuids}})


def publish_job_outputs(settings: Settings | None = None) -> int:
    """:func:`publish_results` of every job output of the configured JobStore."""
    store = job_store(settings)
    store.connect()
    try:
        return publish_results(store)
    finally:
        store.close()


def job_store(settings: Settings | None = None) -> OmniJobStore:
    """The JobStore of the configured server: checked reachable, indexes in place."""
    settings = settings or load_settings()
    uri = _ready_uri(settings)
    options = dict(CLIENT_OPTIONS)
    return OmniJobStore(
        MongoStore(settings.database, JOB_OUTPUTS, uri=uri, mongoclient_kwargs=options),
        additional_stores={
            "data": GridFSStore(settings.database, JOB_BLOBS, uri=uri, mongoclient_kwargs=options)
        },
    )
