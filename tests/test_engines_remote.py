"""jobflow-remote: the generated project loads in jobflow-remote and accepts a flow.

Reference: jobflow-remote's own Project model and ConfigManager, and its queue
collection on the real server.
"""

import jobflow_remote
import pytest
import yaml
from jobflow import Flow, job

from omni_flows.engines.remote import load_project, submit_jobflow_remote, write_project
from omni_flows.errors import EngineError
from omni_flows.settings import ClusterSettings


@job
def square(x: float) -> float:
    return x * x


def test_generated_project_for_a_cluster_loads(settings, tmp_path):
    cluster = ClusterSettings(
        host="login.cluster.example",
        user="alice",
        scheduler="slurm",
        work_dir="/scratch/alice/omni",
        resources={"partition": "gpu", "nodes": 1},
        pre_run="source ~/venvs/omni/bin/activate",
    )
    path = write_project(settings.model_copy(update={"cluster": cluster}), tmp_path)
    project = load_project(path)
    worker = project.workers["cluster"]
    assert (worker.type, worker.host, worker.user) == ("remote", "login.cluster.example", "alice")
    assert (worker.scheduler_type, str(worker.work_dir)) == ("slurm", "/scratch/alice/omni")
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
