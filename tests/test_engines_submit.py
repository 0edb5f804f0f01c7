"""submit_flow: a campaign queued on FireWorks or jobflow-remote runs nothing here.

References: the engines' own queues (LaunchPad fireworks, jobflow-remote jobs) and
the outputs collection, which must stay empty until a worker runs the jobs.
"""

import jobflow_remote
import pytest
from jobflow import Flow, job

from omni_flows.engines.fireworks import launchpad
from omni_flows.engines.remote import job_controller, write_project
from omni_flows.engines.status import campaign_status, find_campaigns
from omni_flows.engines.submit import submit_flow
from omni_flows.errors import EngineError
from omni_flows.stores import connect_database


@job
def double(x: float) -> float:
    raise AssertionError("a queued flow ran here")


def two_jobs(name: str) -> Flow:
    first = double(1)
    return Flow([first, double(first.output)], name=name)


@pytest.fixture
def projects_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("JFREMOTE_PROJECTS_FOLDER", str(tmp_path))
    monkeypatch.setattr(jobflow_remote.SETTINGS, "projects_folder", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("engine", ["fireworks", "jobflow-remote"])
def test_submit_flow_queues_without_running(settings, projects_folder, engine):
    flow = two_jobs(f"queued on {engine}")
    message = submit_flow(flow, engine, settings)
    assert flow.uuid in message
    db = connect_database(settings)
    assert db.outputs.count_documents({}) == 0
    (campaign,) = find_campaigns(db, flow.name)
    assert campaign_status(db, campaign, settings).counts == {"waiting": 2}
    if engine == "fireworks":
        states = sorted(fw["state"] for fw in launchpad(settings).fireworks.find({}))
        assert states == ["READY", "WAITING"]
    else:  # the project was written from the settings, as `remote-config --write` does
        assert (projects_folder / "omni-flows.yaml").exists()
        states = sorted(d["state"] for d in job_controller().jobs.find({}))
        assert states == ["READY", "WAITING"]
    db.client.close()


def test_submit_flow_refuses_a_project_of_another_database(settings, projects_folder):
    write_project(settings.model_copy(update={"database": "elsewhere"}))
    with pytest.raises(EngineError, match="files results in database 'elsewhere'"):
        submit_flow(two_jobs("misrouted"), "jobflow-remote", settings)
    with pytest.raises(EngineError, match="runs flows here"):
        submit_flow(two_jobs("local"), "local", settings)
