"""The campaigns collection: every engine records the Flows it runs or queues there.

Written by the engines (local, fireworks, remote) and read by ``engines.status``; it
imports no engine, so that the engines and the status reader import it, not each other.
"""

import os
import socket
from datetime import datetime, timezone

from jobflow import Flow, Job
from jobflow.core.flow import get_flow
from pymongo.database import Database

from omni_flows.engines import Engine

CAMPAIGNS = "campaigns"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def record_campaign(db: Database, flow: Flow | Job | list[Job], engine: Engine, **extra) -> str:
    """Record that ``flow`` runs on ``engine`` (its jobs and their parents); return its uuid."""
    flow = get_flow(flow)
    jobs = [{"uuid": job.uuid, "name": job.name, "parents": list(parents)}
            for job, parents in flow.iterflow()]
    if flow.metadata.get("settings_id"):  # a screen's: status shows it beside the name
        extra = {"settings_id": flow.metadata["settings_id"], **extra}
    db[CAMPAIGNS].update_one(
        {"uuid": flow.uuid},
        {"$set": {"name": flow.name, "engine": Engine(engine).value, "jobs": jobs, **extra},
         "$setOnInsert": {"submitted_at": _now()}},
        upsert=True,
    )
    return flow.uuid


def mark_local_run(db: Database, flow_uuid: str, finished: bool) -> None:
    """The local run of a campaign started (in this process) or is over."""
    if finished:
        db[CAMPAIGNS].update_one({"uuid": flow_uuid}, {"$set": {"run.finished_at": _now()}})
    else:
        run = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": _now(),
               "finished_at": None}
        db[CAMPAIGNS].update_one({"uuid": flow_uuid}, {"$set": {"run": run}})
