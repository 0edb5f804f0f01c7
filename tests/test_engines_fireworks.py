"""FireWorks end to end on the real server: submit a 4-job flow, run a worker, query the outputs.

Reference: the numbers the diamond-shaped flow computes by hand,
a = 1 + 2 = 3, b = 10 a = 30, c = a + 5 = 8, benchmark of (b, c) against (29, 9).
"""

from jobflow import Flow, job

from omni_flows.db_schemas import BenchmarkEntry, BenchmarkRunDoc, Provenance, build_filter
from omni_flows.engines.fireworks import launchpad, run_worker, submit_fireworks
from omni_flows.stores import connect_database, job_store


@job
def add(a: float, b: float) -> float:
    return a + b


@job
def times_ten(a: float) -> float:
    return 10 * a


@job
def benchmark(b: float, c: float) -> BenchmarkRunDoc:
    """A result document, so that it is filed in the `benchmarks` collection too."""
    entries = [
        BenchmarkEntry(system_id="b", reference=29.0, predicted=b),
        BenchmarkEntry(system_id="c", reference=9.0, predicted=c),
    ]
    return BenchmarkRunDoc.from_entries(
        entries,
        provenance=Provenance(model_name="test-model", task="PBE", checkpoint_hash="c0ffee"),
        dataset="diamond",
        dataset_hash="d1",
        quantity="toy",
    )


def diamond() -> tuple[Flow, list]:
    a = add(1, 2)
    b = times_ten(a.output)
    c = add(a.output, 5)
    d = benchmark(b.output, c.output)
    return Flow([a, b, c, d], name="diamond"), [a, b, c, d]


def test_fireworks_runs_a_four_job_flow_and_its_outputs_are_queryable(settings, tmp_path):
    flow, (a, b, c, d) = diamond()
    fw_ids = submit_fireworks(flow, settings)
    assert len(fw_ids) == 4
    lpad = launchpad(settings)
    assert lpad.db.name == f"{settings.database}_fireworks"  # same server, own database
    assert lpad.get_wf_by_fw_id(fw_ids[0]).state == "READY"

    states = run_worker(settings, launch_dir=tmp_path)
    assert dict(states) == {"COMPLETED": 4}

    store = job_store(settings)
    store.connect()
    assert [store.get_output(j.uuid) for j in (a, b, c)] == [3, 30, 8]
    assert store.count() == 4
    store.close()

    db = connect_database(settings)
    runs = list(db.benchmarks.find(build_filter(["dataset=diamond", "mae<2"]), {"_id": 0}))
    assert len(runs) == 1
    assert (runs[0]["mae"], runs[0]["max_abs_error"], runs[0]["n"]) == (1.0, 1.0, 2)
    assert runs[0]["provenance"]["jobflow_uuid"] == d.uuid
    db.client.close()
