"""FireWorks end to end on the real server: submit a 4-job flow, run a worker, query the outputs.

Reference: the numbers the diamond-shaped flow computes by hand,
a = 1 + 2 = 3, b = 10 a = 30, c = a + 5 = 8, benchmark of (b, c) against (29, 9).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobflow import Flow, job

from omni_flows.db_schemas import BenchmarkEntry, BenchmarkRunDoc, Provenance, build_filter
from omni_flows.engines.fireworks import launchpad, run_worker, submit_fireworks, worker_name
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
        provenance=Provenance(model_name="test-model", task="PBE", checkpoint_hash="c0ffee",
                              settings={"model": "test-model", "task": "PBE",
                                        "checkpoint": "c0ffee"}),
        dataset="diamond",
        dataset_hash="d1",
        quantity="toy",
    )


@job
def held_times_ten(a: float, folder: str) -> float:
    """10 a, once the test lets it finish: it marks that it started, then waits."""
    Path(folder, "started").touch()
    while not Path(folder, "release").exists():
        time.sleep(0.1)
    return 10 * a


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


def worker_process(settings, launch_dir: Path) -> subprocess.Popen:
    """`omni-flows worker` in its own process (its own session, killed as a whole)."""
    env = dict(os.environ, OMNI_FLOWS_HOME=str(settings.home),
               OMNI_FLOWS_DB_PORT=str(settings.db_port), OMNI_FLOWS_DATABASE=settings.database)
    env.pop("OMNI_FLOWS_MONGODB_URI", None)
    env.pop("OMNI_FLOWS_CONFIG", None)
    # the worker imports this module's jobs
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                      env.get("PYTHONPATH")]))
    code = "from omni_flows.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "worker", "--launch-dir", str(launch_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def test_fireworks_lost_run_of_a_killed_worker_is_rerun_and_the_flow_completes(
    settings, tmp_path
):
    """A worker SIGKILLed inside a job: nothing of that job is stored, the run is found lost,
    and the next `omni-flows worker` reruns it. Reference: the diamond's hand-computed values."""
    a = add(1, 2)
    b = held_times_ten(a.output, str(tmp_path))
    c = add(a.output, 5)
    d = benchmark(b.output, c.output)
    submit_fireworks(Flow([a, b, c, d], name="held diamond"), settings)
    lpad = launchpad(settings)
    (held,) = lpad.fireworks.find({"name": "held_times_ten"}, {"fw_id": 1})

    first = worker_process(settings, tmp_path / "launches")
    deadline = time.monotonic() + 180
    while not (tmp_path / "started").exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0]
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()

    store = job_store(settings)
    store.connect()
    db = connect_database(settings)
    assert lpad.get_fw_by_id(held["fw_id"]).state == "RUNNING"  # as the killed worker left it
    assert store.query_one({"uuid": b.uuid}) is None and store.query_one({"uuid": d.uuid}) is None
    assert db.benchmarks.count_documents({}) == 0
    time.sleep(1.5)
    _, lost, _ = lpad.detect_lostruns(expiration_secs=1)  # FireWorks' own detection
    assert lost == [held["fw_id"]]
    launch = lpad.launches.find_one({"fw_id": held["fw_id"]}, {"fworker.name": 1})
    assert launch["fworker"]["name"].endswith(f":{first.pid}")
    assert worker_name().rsplit(":", 1)[0] == launch["fworker"]["name"].rsplit(":", 1)[0]

    (tmp_path / "release").touch()
    second = worker_process(settings, tmp_path / "launches")
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output
    assert f"reran lost fireworks: {held['fw_id']}" in output, output
    assert {fw["state"] for fw in lpad.fireworks.find({}, {"state": 1})} == {"COMPLETED"}
    assert len(lpad.get_fw_by_id(held["fw_id"]).archived_launches) == 1  # the lost one

    assert [store.get_output(j.uuid) for j in (a, b, c)] == [3, 30, 8]
    assert store.count() == 4  # one output per job: the rerun replaced nothing, added no copy
    runs = list(db.benchmarks.find({}, {"_id": 0}))
    assert len(runs) == 1 and (runs[0]["mae"], runs[0]["n"]) == (1.0, 2)
    assert runs[0]["provenance"]["jobflow_uuid"] == d.uuid
    store.close()
    db.client.close()
