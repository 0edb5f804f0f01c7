"""FireWorks: Flows become Workflows on a LaunchPad in the platform's MongoDB server.

The LaunchPad lives in database ``<database>_fireworks`` of the same server as
the results; each Firework carries the platform's JobStore, so a worker
anywhere that reaches the server writes outputs to the same place.

Lost runs: a worker that dies (killed, node lost) leaves its Firework RUNNING.
A job's output is written in one store update at its end, so a killed job left
nothing behind, and running it again is safe. Each worker names itself
``omni-flows@<host>:<pid>``; a worker starting on a host reruns at once the
runs of that host's dead workers, and anywhere the runs whose worker has not
pinged the LaunchPad for ``expiration_s`` (FireWorks' ``detect_lostruns``).
"""

import logging
import os
import socket
from collections import Counter
from pathlib import Path

from fireworks import FWAction, FWorker, LaunchPad
from fireworks.core.rocket_launcher import rapidfire
from jobflow import Flow, Job, JobStore
from jobflow.core.flow import get_flow
from jobflow.managers.fireworks import flow_to_workflow

from omni_flows.engines import Engine
from omni_flows.engines.campaigns import record_campaign
from omni_flows.processes import pid_alive
from omni_flows.server import ensure_server
from omni_flows.settings import Settings, load_settings
from omni_flows.stores import CLIENT_OPTIONS, check_connection, connect_database, job_store


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
    flow = get_flow(flow)  # one Flow (and uuid) for the LaunchPad and the campaign record
    workflow = flow_to_workflow(flow, store=store)
    id_map = launchpad(settings).add_wf(workflow)
    db = connect_database(settings)
    try:
        record_campaign(db, flow, Engine.FIREWORKS)  # for `omni-flows status`
    finally:
        db.client.close()
    return sorted(id_map.values())


# FireWorks' own default: a live worker pings its RUNNING launches every hour
LOST_RUN_EXPIRATION_S = 4 * 3600
WORKER_PREFIX = "omni-flows@"


def worker_name() -> str:
    """This process as a FireWorker: ``omni-flows@<host>:<pid>``."""
    return f"{WORKER_PREFIX}{socket.gethostname()}:{os.getpid()}"


def _dead_worker_launches(lpad: LaunchPad) -> list[int]:
    """RUNNING launches of omni-flows workers of this host whose process is gone."""
    prefix = f"{WORKER_PREFIX}{socket.gethostname()}:"
    dead = []
    for launch in lpad.launches.find(
        {"state": "RUNNING", "fworker.name": {"$regex": f"^{prefix}"}},
        {"launch_id": 1, "fworker.name": 1},
    ):
        pid = launch["fworker"]["name"][len(prefix):]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            dead.append(launch["launch_id"])
    return dead


def recover_lost_runs(lpad: LaunchPad, expiration_s: float | None = None) -> list[int]:
    """Rerun the lost runs (see the module's doc); return their Firework ids.
    ``expiration_s``: None is :data:`LOST_RUN_EXPIRATION_S`."""
    expiration_s = LOST_RUN_EXPIRATION_S if expiration_s is None else expiration_s
    lost: set[int] = set()
    dead = _dead_worker_launches(lpad)
    if dead:
        _, fw_ids, _ = lpad.detect_lostruns(
            expiration_secs=0, rerun=True, launch_query={"launch_id": {"$in": dead}}
        )
        lost.update(fw_ids)
    _, fw_ids, _ = lpad.detect_lostruns(expiration_secs=expiration_s, rerun=True)
    lost.update(fw_ids)
    return sorted(lost)


def run_worker(
    settings: Settings | None = None,
    nlaunches: int | None = None,
    launch_dir: str | Path | None = None,
    name: str | None = None,
    lost_after_s: float | None = None,
) -> Counter:
    """Rerun lost runs, then run ready Fireworks (``rapidfire``) until none is left.

    ``nlaunches`` > 0 stops after that many (None or 0: all); ``launch_dir`` None is
    <home>/fireworks; ``lost_after_s`` None is :data:`LOST_RUN_EXPIRATION_S`. Returns
    the count of Fireworks per state afterwards.
    """
    settings = settings or load_settings()
    lpad = launchpad(settings)
    recover_lost_runs(lpad, lost_after_s)
    name = name or worker_name()
    launch_dir = Path(launch_dir or Path(settings.home) / "fireworks")
    launch_dir.mkdir(parents=True, exist_ok=True)
    complete_stored(lpad, settings, FWorker(name=name), launch_dir)
    jobflow_log = logging.getLogger("jobflow")
    level, handlers = jobflow_log.level, list(jobflow_log.handlers)
    try:
        rapidfire(lpad, FWorker(name=name), m_dir=str(launch_dir), nlaunches=nlaunches or 0,
                  strm_lvl="WARNING")
    finally:  # jobflow's Firework task sets its logger to the stdout of the moment, per job:
        # the process keeps its own (a closed stdout broke every later jobflow log line)
        jobflow_log.setLevel(level)
        jobflow_log.handlers[:] = handlers
    return fireworks_states(lpad)


def complete_stored(lpad: LaunchPad, settings: Settings, fworker: FWorker,
                    launch_dir: Path) -> list[int]:
    """Complete, without running them, the READY Fireworks whose job output is stored:
    the same job of the same campaign run here or on another engine (a screen's job uuids
    follow from what decides its numbers). Their children become READY and are checked
    in turn. Returns the Firework ids completed so."""
    from omni_flows.db_schemas.indexes import JOB_OUTPUTS

    db = connect_database(settings)
    completed = []
    try:
        while True:
            ready = {fw["spec"]["_tasks"][0]["job"]["uuid"]: fw["fw_id"] for fw in
                     lpad.fireworks.find({"state": "READY", "spec._tasks.job.uuid": {
                         "$exists": True}}, {"fw_id": 1, "spec._tasks.job.uuid": 1})}
            stored = db[JOB_OUTPUTS].distinct("uuid", {"uuid": {"$in": list(ready)}})
            if not stored:
                return completed
            for uuid in stored:  # FireWorks' own path: a launch checked out, then completed
                _, launch_id = lpad.checkout_fw(fworker, str(launch_dir), fw_id=ready[uuid])
                lpad.complete_launch(launch_id, FWAction(), "COMPLETED")
                completed.append(ready[uuid])
    finally:
        db.client.close()


def fireworks_states(lpad: LaunchPad) -> Counter:
    """How many Fireworks are in each state (READY, RUNNING, COMPLETED, FIZZLED, ...)."""
    return Counter(doc["state"] for doc in lpad.fireworks.find({}, {"state": 1}))
