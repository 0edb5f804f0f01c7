"""Run a Flow in this process with jobflow's ``run_locally``, resuming where it stopped."""

import copy
from pathlib import Path

from jobflow import Flow, Job, JobStore
from jobflow.core.flow import get_flow
from jobflow.managers.local import run_locally
from pymongo.errors import PyMongoError

from omni_flows.engines import Engine
from omni_flows.engines.campaigns import mark_local_run, record_campaign
from omni_flows.errors import DatabaseUnavailableError, JobsFailedError
from omni_flows.settings import Settings
from omni_flows.stores import job_store, publish_results


def finished_uuids(store: JobStore, uuids: list[str]) -> set[str]:
    """The uuids among ``uuids`` whose output is already in the store."""
    docs = store.query({"uuid": {"$in": list(uuids)}}, properties=["uuid"])
    return {doc["uuid"] for doc in docs}


# job metadata of a job that only serves the jobs taking its output (placement relaxations
# and a pair's adsorption energies, workflows/flows/surface_flow.py)
EXECUTION_ONLY = "execution_only"


def not_needed(flow: Flow, done: set[str]) -> set[str]:
    """Execution-only jobs not done whose every consumer is done or itself not needed: the
    work was done before by other jobs (a screen run again with another batching, or one
    screened before relaxations were keyed without the reference), nothing is left for them."""
    consumers: dict[str, set[str]] = {}
    for job, parents in flow.iterflow():
        for parent in parents:
            consumers.setdefault(parent, set()).add(job.uuid)
    candidates = {job.uuid for job, _ in flow.iterflow()
                  if job.uuid not in done and job.metadata.get(EXECUTION_ONLY)
                  and consumers.get(job.uuid)}
    skipped: set[str] = set()
    while True:  # a chain (relaxation -> energies -> done best): back from the done end
        more = {u for u in candidates - skipped if consumers[u] <= done | skipped}
        if not more:
            return skipped
        skipped |= more


def _unfinished(flow: Flow, done: set[str]) -> Flow:
    """A flow of the jobs not yet done; references to done jobs resolve from the store."""
    todo = [job for job, _ in flow.iterflow() if job.uuid not in done]
    copies = [copy.deepcopy(job) for job in todo]
    hosts = [job.hosts for job in copies]
    for job in copies:  # a job belongs to one flow: detach the copies to regroup them
        job.hosts = []
    rest = Flow(copies, name=flow.name)
    for job, original in zip(copies, hosts):  # outputs keep recording the original flow
        job.hosts = original
    return rest


def run_local(
    flow: Flow | Job | list[Job],
    settings: Settings | None = None,
    store: JobStore | None = None,
    resume: bool = True,
    root_dir: str | Path | None = None,
    raise_immediately: bool = False,
) -> dict:
    """Run ``flow`` here; return jobflow's responses ``{uuid: {index: Response}}``.

    With ``resume`` the jobs whose output is already stored are not run again,
    so a run that was interrupted (a crash, a killed database) continues where
    it stopped; nor are execution-only jobs (:func:`not_needed`) whose consumers are
    all done. Jobs that a finished job added at run time (``Response.addition``
    and friends) are not re-created: use FireWorks or jobflow-remote for
    dynamic flows that must survive interruptions.

    Raises :class:`JobsFailedError` (an ``EngineError`` and a ``CalculationError``)
    naming the jobs that did not finish.
    """
    store = store or job_store(settings)
    store.connect()
    flow = get_flow(flow)
    db = store.docs_store._collection.database
    record_campaign(db, flow, Engine.LOCAL)  # for `omni-flows status`
    uuids = [job.uuid for job, _ in flow.iterflow()]
    to_run, skipped = flow, set()
    if resume:
        done = finished_uuids(store, uuids)
        skipped = not_needed(flow, done)
        if len(done) + len(skipped) == len(uuids):
            return {}
        if done:
            # a run stopped between a job's output and its filing left that result unfiled
            publish_results(store, {"uuid": {"$in": list(done)}}, missing_only=True)
            to_run = _unfinished(flow, done | skipped)
    mark_local_run(db, flow.uuid, finished=False)
    try:
        responses = run_locally(
            to_run,
            store=store,
            log=False,
            root_dir=root_dir,
            allow_external_references=True,
            raise_immediately=raise_immediately,
        )
    finally:
        try:
            mark_local_run(db, flow.uuid, finished=True)
        except PyMongoError:  # the database went away: reported below
            pass
    try:
        missing = set(uuids) - finished_uuids(store, uuids) - skipped
    except PyMongoError as exc:
        raise DatabaseUnavailableError(
            f"the database went away during the run of flow {flow.name!r} "
            f"({type(exc).__name__}); once it is back, run the flow again to resume"
        ) from None
    if missing:
        names = sorted({job.name for job, _ in flow.iterflow() if job.uuid in missing})
        raise JobsFailedError(
            f"{len(missing)} of {len(uuids)} jobs of flow {flow.name!r} did not finish "
            f"({', '.join(names)}); run it again to resume"
        )
    return responses
