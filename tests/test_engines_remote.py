"""jobflow-remote: the generated project loads, accepts a flow, and its runner runs a screen.

References: jobflow-remote's own Project model and ConfigManager, its queue
collection on the real server, and the local engine's results of the same Flow.
"""

import json
import os
import shutil
import subprocess
import time

import jobflow_remote
import pytest
import yaml
from jobflow import Flow, job
from jobflow_remote.jobs.daemon import DaemonManager, DaemonStatus
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.engines.flow_file import load_flow
from omni_flows.engines.local import run_local
from omni_flows.engines.remote import (
    PROJECT_NAME,
    WORKER_NAME,
    initialise_queue,
    job_controller,
    load_project,
    start_runner,
    stop_runner,
    submit_jobflow_remote,
    write_project,
)
from omni_flows.engines.status import campaign_status, find_campaigns
from omni_flows.errors import EngineError
from omni_flows.settings import ClusterSettings
from omni_flows.stores import connect_database

cli = CliRunner()


@job
def square(x: float) -> float:
    return x * x


@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
def test_generated_project_for_a_cluster_loads(settings, tmp_path, scheduler):
    cluster = ClusterSettings(
        host="login.cluster.example",
        user="alice",
        scheduler=scheduler,
        work_dir="/scratch/alice/omni",
        resources={"partition": "gpu", "nodes": 1},
        pre_run="source ~/venvs/omni/bin/activate",
    )
    path = write_project(settings.model_copy(update={"cluster": cluster}), tmp_path)
    project = load_project(path)
    worker = project.workers["cluster"]
    assert (worker.type, worker.host, worker.user) == ("remote", "login.cluster.example", "alice")
    assert (worker.scheduler_type, str(worker.work_dir)) == (scheduler, "/scratch/alice/omni")
    assert worker.resources == {"partition": "gpu", "nodes": 1}
    assert project.exec_config["omni-flows"].pre_run == "source ~/venvs/omni/bin/activate"
    jobstore = project.get_jobstore()
    assert (jobstore.docs_store.database, jobstore.docs_store.collection_name) == (
        settings.database,
        "outputs",
    )
    assert jobstore.additional_stores["data"].collection_name == "outputs_blobs"
    assert project.get_queue_store().database == f"{settings.database}_jobflow_remote"

    broken = yaml.safe_load(path.read_text())
    broken["workers"]["cluster"]["type"] = "teleport"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(EngineError, match="jobflow-remote cannot load project"):
        load_project(path)


@pytest.mark.parametrize("host, scheduler", [(None, "shell"), ("login", "slurm"), ("login", "pbs")])
def test_submission_scripts_are_valid_shell_for_the_flows_job_names(
    settings, tmp_path, host, scheduler
):
    """Reference: bash's own parser (`bash -n`) on the script each scheduler would get."""
    cluster = ClusterSettings(host=host, scheduler=scheduler, work_dir="/scratch/runs")
    project = load_project(write_project(settings.model_copy(update={"cluster": cluster}),
                                         tmp_path))
    scheduler_io = project.workers[WORKER_NAME].get_scheduler_io()
    for name in ("slab Pt(111)", "placements H/Pt(111)", "gas H2(g)", "bulk Pt-37f4a0e3"):
        options = {"job_name": name.replace(" ", "_"), "qout_path": "out", "qerr_path": "err"}
        script = scheduler_io.get_submission_script("true", options)
        checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert checked.returncode == 0, f"{name}: {checked.stderr}\n{script}"


def test_local_project_accepts_a_flow_into_its_queue(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(jobflow_remote.SETTINGS, "projects_folder", str(tmp_path))
    write_project(settings, name="omni-test")
    project = load_project(tmp_path / "omni-test.yaml")
    assert project.workers["cluster"].type == "local"  # no cluster configured
    controller = project.get_job_controller()
    assert controller.reset(reset_output=False, max_limit=0)  # `jf admin reset`

    first = square(3)
    ids = submit_jobflow_remote(Flow([first, square(first.output)]), project="omni-test")
    assert len(ids) == 2
    states = {d["uuid"]: d["state"] for d in controller.jobs.find({})}
    assert states[first.uuid] == "READY" and sorted(states.values()) == ["READY", "WAITING"]


def test_runner_finds_supervisord_and_jf_beside_the_interpreter_off_path(
    settings, projects_folder, monkeypatch
):
    """`.venv/bin/omni-flows` without an activated environment: PATH lacks the interpreter's
    folder, where supervisord and jf are installed. The runner still starts and stops."""
    write_project(settings, folder=projects_folder)
    initialise_queue(PROJECT_NAME)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert shutil.which("supervisord") is None and shutil.which("jf") is None  # off PATH
    daemon = DaemonManager.from_project_name(PROJECT_NAME)
    start_runner(PROJECT_NAME)
    try:
        deadline = time.monotonic() + 60
        while daemon.check_status() != DaemonStatus.RUNNING and time.monotonic() < deadline:
            time.sleep(0.5)
        assert daemon.check_status() == DaemonStatus.RUNNING  # supervisord ran jf
        assert os.environ["PATH"] == "/usr/bin:/bin"  # this process's PATH is left as it was
    finally:
        stop_runner(PROJECT_NAME)
    assert daemon.check_status() == DaemonStatus.SHUT_DOWN


# --- end to end: a local worker and its runner execute a surface screen ------------------

def tiny_surface_flow():
    """The smallest surface screen: Pt(111) 2x2, 3 layers, H, one placement (6 jobs)."""
    from omni_flows.workflows.flows.campaign import SurfaceCampaign
    from omni_flows.workflows.structures.placements import PlacementSettings
    from omni_flows.workflows.settings import MLIPSettings
    from omni_flows.workflows.structures.slabs import SlabSpec

    campaign = SurfaceCampaign(
        bulks=["Pt"], facets=["111"], adsorbates=["H"], mlip=MLIPSettings(device="cpu"),
        slab_spec=SlabSpec(n_layers=3, n_fixed_layers=1, supercell=(2, 2)),
        placements=PlacementSettings(n_random=0, max_placements=1),
    )
    return campaign.make()


def cli_env(settings) -> dict:
    return {"OMNI_FLOWS_HOME": str(settings.home), "OMNI_FLOWS_DB_PORT": str(settings.db_port),
            "OMNI_FLOWS_DATABASE": settings.database, "OMNI_FLOWS_MONGODB_URI": None,
            "OMNI_FLOWS_CONFIG": None}


@pytest.fixture
def projects_folder(tmp_path, monkeypatch):
    """jobflow-remote's projects folder for this process and the runner it starts."""
    folder = tmp_path / "jfremote"
    monkeypatch.setenv("JFREMOTE_PROJECTS_FOLDER", str(folder))
    monkeypatch.setattr(jobflow_remote.SETTINGS, "projects_folder", str(folder))
    return folder


def wait_for_jobs(controller, n_jobs: int, timeout_s: float) -> dict[str, str]:
    """Job states once every job is COMPLETED, or one failed, or the time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = {d["uuid"]: d["state"] for d in controller.jobs.find({}, {"uuid": 1, "state": 1})}
        done = len(states) == n_jobs and set(states.values()) == {"COMPLETED"}
        failed = {"FAILED", "REMOTE_ERROR"} & set(states.values())
        if done or failed or time.monotonic() > deadline:
            return states
        time.sleep(1.0)


def stored_results(settings) -> dict[str, list[dict]]:
    """`omni-flows query COLLECTION --format json` of each result collection."""
    env = cli_env(settings)
    found = {}
    for collection in ("adsorption_best", "adsorption_placements", "slabs", "calculations"):
        result = cli.invoke(app, ["query", collection, "--format", "json", "--limit", "0"],
                            env=env)
        assert result.exit_code == 0, result.output
        docs = json.loads(result.stdout)
        for doc in docs:  # when it was made differs, and where its trajectory is, not what
            doc.pop("last_updated", None)
            assert list(doc["provenance"].pop("created_at")) == ["$date"]  # a date, as stored
            if "trajectory" in doc:
                doc["trajectory"].pop("blob_uuid", None)
        found[collection] = sorted(docs, key=lambda d: json.dumps(d, sort_keys=True))
    return found


def test_jobflow_remote_end_to_end_surface_screen_runs_on_a_local_worker(
    settings, projects_folder, tmp_path
):
    """Reference: the same Flow (same job uuids) run by the local engine in another database."""
    env = cli_env(settings)
    result = cli.invoke(app, ["remote-config", "--write", "--folder", str(projects_folder)],
                        env=env)
    assert result.exit_code == 0, result.output
    flow_file = tmp_path / "screen.json"
    flow_file.write_text(tiny_surface_flow().to_json())
    n_jobs = sum(1 for _ in load_flow(flow_file).iterflow())

    result = cli.invoke(app, ["submit", str(flow_file), "--engine", "jobflow-remote"], env=env)
    assert result.exit_code == 0, result.output
    assert f"queued {n_jobs} jobs" in result.output
    controller = job_controller(PROJECT_NAME)
    assert controller.project.workers[WORKER_NAME].type == "local"
    db = connect_database(settings)
    name = load_flow(flow_file).name
    (campaign,) = find_campaigns(db, name)
    assert campaign_status(db, campaign, settings).counts == {"waiting": n_jobs}

    local = settings.model_copy(update={"database": f"{settings.database[:40]}_loc"})
    start_runner(PROJECT_NAME)
    try:
        run_local(load_flow(flow_file), settings=local)  # the reference, while the runner works
        states = wait_for_jobs(controller, n_jobs, timeout_s=300)
    finally:
        stop_runner(PROJECT_NAME)
    daemon = DaemonManager.from_project_name(PROJECT_NAME)
    assert daemon.check_status() == DaemonStatus.SHUT_DOWN  # stopped cleanly, nothing left
    problems = {d["job"]["name"]: (d["state"], d.get("error"), d["remote"])
                for d in controller.jobs.find({"state": {"$ne": "COMPLETED"}})}
    assert list(states.values()) == ["COMPLETED"] * n_jobs, problems
    (campaign,) = find_campaigns(db, name)
    assert campaign_status(db, campaign, settings).counts == {"done": n_jobs}

    remote_results, local_results = stored_results(settings), stored_results(local)
    assert [len(remote_results[c]) for c in remote_results] == [1, 1, 1, 2]
    assert remote_results == local_results
    best = remote_results["adsorption_best"][0]
    assert (best["adsorbate"], best["miller_index"]) == ("H", [1, 1, 1])
    assert -0.8 < best["adsorption_energy"] < 0.0  # H/Pt(111) vs 1/2 H2: PBE about -0.4 eV
