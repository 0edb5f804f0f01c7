"""Campaign status: how many jobs of a Flow are done, running, failed and waiting, on any engine.

Every engine records the Flows it runs or queues in the ``campaigns`` collection
of the results database (``engines.campaigns``: uuid, name, engine, each job with
its parents). The states then come from where each engine keeps them:

- ``local``: a job is done once its output is stored (or every job taking its output
  is); while the run's process
  lives, the jobs whose inputs are all done count as running; once it is over,
  as failed. Jobs with unfinished inputs wait.
- ``fireworks``: the Fireworks' states on the LaunchPad.
- ``jobflow-remote``: the jobs' states in the project's queue.

On every engine, a job whose output is stored counts as done, whoever computed it:
a screen's job uuids follow from what decides its numbers, so the same campaign
queued on two engines, or run here too, shares its jobs and its stored results
(issue 28: both queues showed 0/6 done after a local run had stored all six).

Jobs that a running job added (dynamic flows) count as soon as the engine holds them.
"""

import socket
from collections import Counter
from dataclasses import dataclass, field

from pymongo.database import Database

from omni_flows.db_schemas.indexes import JOB_OUTPUTS
from omni_flows.engines import Engine
from omni_flows.engines.campaigns import CAMPAIGNS
from omni_flows.errors import EngineError
from omni_flows.processes import pid_alive

BUCKETS = ("done", "running", "failed", "waiting")

FIREWORKS_BUCKETS = {
    "COMPLETED": "done",
    "RUNNING": "running",
    "RESERVED": "running",  # handed to a queue, about to run
    "FIZZLED": "failed",
}
JOBFLOW_REMOTE_BUCKETS = {
    "COMPLETED": "done",
    "FAILED": "failed",
    "REMOTE_ERROR": "failed",
    **dict.fromkeys(
        ["CHECKED_OUT", "UPLOADED", "SUBMITTED", "RUNNING", "RUN_FINISHED", "DOWNLOADED",
         "BATCH_SUBMITTED", "BATCH_RUNNING"],
        "running",
    ),
}  # WAITING, READY, PAUSED, STOPPED, USER_STOPPED: waiting


@dataclass
class CampaignStatus:
    uuid: str
    name: str
    engine: str
    counts: Counter = field(default_factory=Counter)
    settings_id: str = ""  # a screen's settings id ('' for other flows)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _local_alive(run: dict | None) -> bool:
    if not run or run.get("finished_at") is not None or run.get("host") != socket.gethostname():
        return False
    return pid_alive(run["pid"])


def _stored(db: Database, uuids: list[str]) -> set[str]:
    """The jobs of ``uuids`` whose output is stored (by any engine's run)."""
    return {d["uuid"] for d in db[JOB_OUTPUTS].find({"uuid": {"$in": uuids}}, {"uuid": 1})}


def _local_buckets(db: Database, campaign: dict) -> dict[str, str]:
    uuids = [job["uuid"] for job in campaign["jobs"]]
    done = _stored(db, uuids)
    ran = campaign.get("run") is not None
    alive = _local_alive(campaign.get("run"))
    children: dict[str, set[str]] = {}
    for job in campaign["jobs"]:
        for parent in job["parents"]:
            children.setdefault(parent, set()).add(job["uuid"])
    # a job whose consumers all ran (or are done so) is done even without its own output:
    # they took their input from an earlier run's jobs (a screen run again with another
    # batching); back along a chain of such jobs from the done end
    mine = set(uuids)
    while True:
        more = {u for u, consumers in children.items()
                if u not in done and u in mine and consumers <= done}
        if not more:
            break
        done |= more
    buckets = {}
    for job in campaign["jobs"]:
        if job["uuid"] in done:
            buckets[job["uuid"]] = "done"
        elif ran and all(parent in done for parent in job["parents"]):
            buckets[job["uuid"]] = "running" if alive else "failed"
        else:
            buckets[job["uuid"]] = "waiting"
    return buckets


def _fireworks_buckets(settings, flow_uuid: str) -> dict[str, str]:
    from omni_flows.engines.fireworks import launchpad

    fireworks = launchpad(settings).fireworks.find(
        {"spec._tasks.job.hosts": flow_uuid}, {"state": 1, "spec._tasks.job.uuid": 1}
    )
    return {fw["spec"]["_tasks"][0]["job"]["uuid"]: FIREWORKS_BUCKETS.get(fw["state"], "waiting")
            for fw in fireworks}


def _jobflow_remote_buckets(project: str, flow_uuid: str) -> dict[str, str]:
    from omni_flows.engines.remote import job_controller

    jobs = job_controller(project).jobs.find({"job.hosts": flow_uuid}, {"uuid": 1, "state": 1})
    buckets: dict[str, str] = {}
    for job in jobs:  # a job run again (index > 1): its latest state counts
        state = JOBFLOW_REMOTE_BUCKETS.get(job["state"], "waiting")
        if buckets.get(job["uuid"]) != "done":
            buckets[job["uuid"]] = state
    return buckets


def find_campaigns(db: Database, campaign: str) -> list[dict]:
    """The recorded campaigns whose flow uuid or name is ``campaign``, newest first."""
    found = list(db[CAMPAIGNS].find({"$or": [{"uuid": campaign}, {"name": campaign}]},
                                    {"_id": 0}).sort("submitted_at", -1))
    if not found:
        known = sorted({d["name"] for d in db[CAMPAIGNS].find({}, {"name": 1})})
        raise EngineError(
            f"no campaign {campaign!r} in database {db.name}: give a flow name or uuid"
            + (f"; recorded: {', '.join(known)}" if known else "")
        )
    return found


def statuses(campaign: str, settings) -> list[CampaignStatus]:
    """The status of every recorded campaign whose flow name or uuid is ``campaign``."""
    from omni_flows.stores import connect_database

    db = connect_database(settings)
    try:
        return [campaign_status(db, c, settings) for c in find_campaigns(db, campaign)]
    finally:
        db.client.close()


def campaign_status(db: Database, campaign: dict, settings=None) -> CampaignStatus:
    """Jobs of a recorded campaign per bucket (done, running, failed, waiting)."""
    engine = Engine(campaign["engine"])
    buckets = {job["uuid"]: "waiting" for job in campaign["jobs"]}  # not (yet) in the engine
    if engine is Engine.LOCAL:
        buckets.update(_local_buckets(db, campaign))
    elif engine is Engine.FIREWORKS:
        buckets.update(_fireworks_buckets(settings, campaign["uuid"]))
    else:
        buckets.update(_jobflow_remote_buckets(campaign["project"], campaign["uuid"]))
    buckets.update(dict.fromkeys(_stored(db, list(buckets)), "done"))
    return CampaignStatus(campaign["uuid"], campaign["name"], engine.value,
                          Counter(buckets.values()), campaign.get("settings_id", ""))


def other_records(db: Database, flow_uuid: str, job_uuids: list[str]) -> list[dict]:
    """Campaigns recorded under another flow uuid that share jobs with this one (the same
    screen queued or run elsewhere): {uuid, name, engine}, newest first."""
    return list(db[CAMPAIGNS].find(
        {"uuid": {"$ne": flow_uuid}, "jobs.uuid": {"$in": job_uuids}},
        {"_id": 0, "uuid": 1, "name": 1, "engine": 1},
    ).sort("submitted_at", -1))
