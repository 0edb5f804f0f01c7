"""The JobStore on a real SecantusDB server: indexes, re-runs, blobs, concurrent writers, timeouts.

References: the declared index specs (db_schemas.indexes), MongoDB's 16 MiB
document limit (pymongo refuses such a document), and the values the jobs
below compute by hand.
"""

import os
import subprocess
import sys
import time

import pytest
from bson.errors import InvalidDocument
from jobflow import Flow, job
from pymatgen.core import Lattice, Structure
from pymongo.errors import DocumentTooLarge, DuplicateKeyError

from omni_flows.db_schemas import COLLECTIONS, Provenance, SlabDoc
from omni_flows.engines.local import run_local
from omni_flows.errors import DatabaseUnavailableError
from omni_flows.model.errors import OmniFlowsError
from omni_flows.stores import job_store

MIB = 1024 * 1024


@job
def relax_slab(hkl: tuple[int, int, int], energy: float) -> SlabDoc:
    """Stands in for a slab relaxation: a SlabDoc with a given energy."""
    return SlabDoc(
        provenance=Provenance(model_name="test-model", task="PBE", checkpoint_hash="c0ffee"),
        bulk_id="mp-30",
        bulk_formula="Cu",
        miller_index=hkl,
        shift=0.0,
        structure=Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]]),
        min_slab_size=8.0,
        min_vacuum_size=15.0,
        energy=energy,
    )


@job
def lowest(a: SlabDoc, b: SlabDoc) -> float:
    return min(a.energy, b.energy)


def slab_flow() -> tuple[Flow, list]:
    jobs = [relax_slab((1, 1, 1), -40.5), relax_slab((1, 0, 0), -38.25)]
    jobs.append(lowest(jobs[0].output, jobs[1].output))
    return Flow(jobs, name="slabs"), jobs


@job(data="payload")
def make_blob(n_bytes: int) -> dict:
    """Output with a field jobflow sends to the blob store (GridFS)."""
    return {"payload": os.urandom(n_bytes // 2).hex(), "n_bytes": n_bytes}


def test_declared_indexes_and_unique_keys_exist_on_the_server(settings):
    store = job_store(settings)
    store.connect()
    db = store.docs_store._collection.database
    for spec in COLLECTIONS:
        indexes = db[spec.name].list_indexes()
        on_server = {tuple(ix["key"]): bool(ix.get("unique")) for ix in indexes}
        for index in spec.indexes:
            assert on_server.get(index.fields) == index.unique, (spec.name, index.fields)
    outputs = {tuple(ix["key"]): ix.get("unique", False) for ix in db.outputs.list_indexes()}
    assert outputs[("uuid", "index")] is True

    # the server, not the client, refuses a second document with the same natural key
    doc = relax_slab.original((1, 1, 1), -40.5).to_document()
    db.slabs.insert_one(dict(doc))
    with pytest.raises(DuplicateKeyError):
        db.slabs.insert_one(dict(doc))
    assert store.docs_store._collection.write_concern.document == {"w": 1, "j": True}
    store.close()


def test_a_natural_key_that_gained_a_field_is_rebuilt_and_keeps_the_documents(settings):
    """A database made by an older version (natural key on fewer fields) opens cleanly."""
    from omni_flows.stores import connect_database, ensure_indexes

    db = connect_database(settings)
    spec = next(s for s in COLLECTIONS if s.name == "slabs")
    old_fields = spec.natural_key[:-1]
    db.slabs.drop_index("natural_key")
    db.slabs.create_index([(f, 1) for f in old_fields], unique=True, name="natural_key")
    before = db.slabs.count_documents({})
    ensure_indexes(db)
    keys = {ix["name"]: tuple(ix["key"]) for ix in db.slabs.list_indexes()}
    assert keys["natural_key"] == spec.natural_key
    assert db.slabs.count_documents({}) == before


def test_running_the_same_flow_twice_leaves_one_document_per_result(settings):
    store = job_store(settings)
    flow, jobs = slab_flow()
    run_local(flow, store=store)
    run_local(flow, store=store, resume=False)  # every job again, same uuids
    assert store.count() == 3
    assert store.get_output(jobs[2].uuid) == -40.5

    rebuilt, new_jobs = slab_flow()  # same inputs, new jobs: a new run of the same results
    run_local(rebuilt, store=store)
    assert store.count() == 6  # jobflow's log of outputs keeps both runs
    slabs = list(store.docs_store._collection.database.slabs.find({}, {"_id": 0}))
    assert len(slabs) == 2  # but one document per slab
    by_id = {s["slab_id"]: s for s in slabs}
    assert by_id["mp-30/1,1,1/0.0000"]["energy"] == -40.5
    assert by_id["mp-30/1,0,0/0.0000"]["energy"] == -38.25
    # the newest run's document is the one kept, and it names the job that made it
    assert by_id["mp-30/1,1,1/0.0000"]["provenance"]["jobflow_uuid"] == new_jobs[0].uuid
    store.close()


def test_resume_files_a_result_whose_output_was_stored_but_not_filed(settings):
    """The server dying between a job's output and its filing must not lose the result."""
    store = job_store(settings)
    flow, jobs = slab_flow()
    run_local(flow, store=store)
    db = store.docs_store._collection.database
    # as if the server died right after the first job's output was written
    db.slabs.delete_many({})
    db.outputs.delete_many({"uuid": {"$in": [jobs[1].uuid, jobs[2].uuid]}})
    completed_at = store.query_one({"uuid": jobs[0].uuid})["completed_at"]
    run_local(flow, store=store)  # resumes: the first job is not run again
    assert store.query_one({"uuid": jobs[0].uuid})["completed_at"] == completed_at
    assert store.count() == 3
    energies = {s["miller_index"][2]: s["energy"] for s in db.slabs.find({})}
    assert energies == {1: -40.5, 0: -38.25}
    assert db.slabs.find_one({"energy": -40.5})["provenance"]["jobflow_uuid"] == jobs[0].uuid
    store.close()


def test_blob_larger_than_16_mb_round_trips_through_gridfs(settings):
    store = job_store(settings)
    blob_job = make_blob(17 * MIB)
    run_local(blob_job, store=store)

    stored = store.docs_store.query_one({"uuid": blob_job.uuid})
    assert set(stored["output"]["payload"]) >= {"blob_uuid", "store"}  # a reference, not data
    assert stored["output"]["n_bytes"] == 17 * MIB
    output = store.get_output(blob_job.uuid, load=True)
    assert len(output["payload"]) == 17 * MIB
    assert int(output["payload"][:16], 16) >= 0  # hex, as written
    files = store.docs_store._collection.database["outputs_blobs.files"]
    assert files.find_one({})["length"] > 16 * MIB

    # the same payload inside a document is refused: it had to go to GridFS
    with pytest.raises((DocumentTooLarge, InvalidDocument)):
        store.docs_store._collection.insert_one({"payload": output["payload"]})
    store.close()


WRITER = """
import sys
from datetime import datetime, timezone
from uuid import uuid4
from jobflow.core.schemas import JobStoreDocument
from monty.json import jsanitize
from pymatgen.core import Lattice, Structure
from omni_flows.db_schemas import Provenance, SlabDoc
from omni_flows.settings import Settings
from omni_flows.stores import job_store

writer, n, home, port, database = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:6]
store = job_store(Settings(home=home, db_port=int(port), database=database, mongodb_uri=None))
store.connect()
cu = Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])
prov = Provenance(model_name="m", task="PBE", checkpoint_hash="h")
for i in range(n):
    slab = SlabDoc(provenance=prov, bulk_id=f"w{writer}", bulk_formula="Cu",
                   miller_index=(1, 0, 0), shift=i / 1000, structure=cu,
                   min_slab_size=8.0, min_vacuum_size=15.0, energy=-(writer * 1000 + i))
    output = jsanitize(slab, strict=True, enum_values=True, allow_bson=True)  # as Job.run does
    store.update(JobStoreDocument(uuid=str(uuid4()), index=1, output=output, name=f"w{writer}",
                                  completed_at=datetime.now(timezone.utc).isoformat()))
"""


def test_four_concurrent_writer_processes_lose_nothing(settings):
    n_writers, n_docs = 4, 200
    args = [str(settings.home), str(settings.db_port), settings.database]
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(w), str(n_docs), *args])
        for w in range(n_writers)
    ]
    assert [p.wait(timeout=240) for p in procs] == [0] * n_writers

    store = job_store(settings)
    store.connect()
    db = store.docs_store._collection.database
    assert db.outputs.count_documents({}) == n_writers * n_docs
    assert len(db.outputs.distinct("uuid")) == n_writers * n_docs
    assert db.slabs.count_documents({}) == n_writers * n_docs
    for w in range(n_writers):
        energies = sorted(d["energy"] for d in db.slabs.find({"bulk_id": f"w{w}"}))
        assert energies == sorted(-(w * 1000 + i) for i in range(n_docs))
    store.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "10.255.255.1"], ids=["refused", "unroutable"])
def test_unreachable_database_fails_clearly_within_5_seconds(settings, host, unused_port):
    uri = f"mongodb://{host}:{unused_port}/"
    start = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as err:
        job_store(settings.model_copy(update={"mongodb_uri": uri}))
    assert time.monotonic() - start < 5.0
    assert isinstance(err.value, OmniFlowsError)
    assert uri in str(err.value) and "omni-flows db start" in str(err.value)
