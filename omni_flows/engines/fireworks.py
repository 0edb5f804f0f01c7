"""FireWorks: Flows become Workflows on a LaunchPad in the platform's MongoDB server.

The LaunchPad lives in database ``<database>_fireworks`` of the same server as
the results; each Firework carries the platform's JobStore, so a worker
anywhere that reaches the server writes outputs to the same place.
"""

from collections import Counter
from pathlib import Path

from fireworks import FWorker, LaunchPad
from fireworks.core.rocket_launcher import rapidfire
from jobflow import Flow, Job, JobStore
from jobflow.managers.fireworks import flow_to_workflow

from omni_flows.server import ensure_server
from omni_flows.settings import Settings, load_settings
from omni_flows.stores import CLIENT_OPTIONS, check_connection, job_store


def launchpad(settings: Settings | None = None) -> LaunchPad:
    """The LaunchPad of the configured server, initialised on first use."""
    settings = settings or load_settings()
    uri = ensure_server(settings)
    check_connection(uri)
    lpad = LaunchPad(
        host=uri,
        uri_mode=True,
        name=f"{settings.database}_fireworks",
        mongoclient_kwargs=dict(CLIENT_OPTIONS),
        strm_lvl="WARNING",
    )
    if lpad.fw_id_assigner.count_documents({}) == 0:
        # a fresh database: create the id counters and indexes (no workflow to lose)
        lpad.reset("", require_password=False, max_reset_wo_password=0)
    return lpad


def submit_fireworks(
    flow: Flow | Job | list[Job],
    settings: Settings | None = None,
    store: JobStore | None = None,
) -> list[int]:
    """Add ``flow`` to the LaunchPad; return the new Firework ids."""
    settings = settings or load_settings()
    store = store or job_store(settings)
    workflow = flow_to_workflow(flow, store=store)
    id_map = launchpad(settings).add_wf(workflow)
    return sorted(id_map.values())


def run_worker(
    settings: Settings | None = None,
    nlaunches: int = 0,
    launch_dir: str | Path | None = None,
    name: str = "omni-flows",
) -> Counter:
    """Run ready Fireworks (``rapidfire``) until none is left, or ``nlaunches`` of them.

    Returns the count of Fireworks per state afterwards.
    """
    settings = settings or load_settings()
    lpad = launchpad(settings)
    launch_dir = Path(launch_dir or Path(settings.home) / "fireworks")
    launch_dir.mkdir(parents=True, exist_ok=True)
    rapidfire(
        lpad, FWorker(name=name), m_dir=str(launch_dir), nlaunches=nlaunches, strm_lvl="WARNING"
    )
    return fireworks_states(lpad)


def fireworks_states(lpad: LaunchPad) -> Counter:
    """How many Fireworks are in each state (READY, RUNNING, COMPLETED, FIZZLED, ...)."""
    return Counter(doc["state"] for doc in lpad.fireworks.find({}, {"state": 1}))
