"""Hand a Flow to a distributed engine without running anything here."""

from jobflow import Flow, Job
from jobflow.core.flow import get_flow

from omni_flows.engines import Engine
from omni_flows.errors import EngineError
from omni_flows.settings import Settings, load_settings


def _remote_project(settings: Settings) -> str:
    """The jobflow-remote project of ``settings``: written if missing, checked if there."""
    from omni_flows.engines.remote import PROJECT_NAME, load_project, projects_folder, write_project

    path = projects_folder() / f"{PROJECT_NAME}.yaml"
    if not path.exists():
        write_project(settings)
        return PROJECT_NAME
    database = load_project(path).get_jobstore().docs_store.database
    if database != settings.database:
        raise EngineError(
            f"jobflow-remote project {path} files results in database {database!r}, the "
            f"settings name {settings.database!r}; rewrite it with "
            "`omni-flows remote-config --write` or set OMNI_FLOWS_DATABASE"
        )
    return PROJECT_NAME


def submit_flow(
    flow: Flow | Job | list[Job], engine: Engine | str, settings: Settings | None = None
) -> str:
    """Queue ``flow`` on FireWorks or jobflow-remote; return what to tell the user.

    Nothing runs here: ``omni-flows worker`` (FireWorks) or the jobflow-remote
    runner executes the jobs, ``omni-flows status <flow name>`` follows them.
    """
    engine = Engine(engine)
    settings = settings or load_settings()
    flow = get_flow(flow)
    warning = _recorded_elsewhere(flow, settings)
    if engine is Engine.FIREWORKS:
        from omni_flows.engines.fireworks import submit_fireworks

        ids = submit_fireworks(flow, settings)
        return warning + (
            f"added {len(ids)} fireworks ({ids[0]}-{ids[-1]}) for {flow.name!r}; run them "
            f"with `omni-flows worker`, follow with `omni-flows status {flow.uuid}`")
    if engine is Engine.JOBFLOW_REMOTE:
        from omni_flows.engines.remote import submit_jobflow_remote

        ids = submit_jobflow_remote(flow, project=_remote_project(settings))
        return warning + (
            f"queued {len(ids)} jobs in jobflow-remote for {flow.name!r}; start its runner "
            f"with `jf runner start`, follow with `omni-flows status {flow.uuid}`")
    raise EngineError(f"engine {engine.value!r} runs flows here; submit_flow only queues them")


def _recorded_elsewhere(flow: Flow, settings: Settings) -> str:
    """A warning line if this flow's jobs are queued (or were run) as another campaign."""
    from omni_flows.engines.status import other_records
    from omni_flows.stores import connect_database

    db = connect_database(settings)
    try:
        others = other_records(db, flow.uuid, [job.uuid for job, _ in flow.iterflow()])
    finally:
        db.client.close()
    if not others:
        return ""
    where = ", ".join(f"{o['engine']} (flow {o['uuid']})" for o in others)
    return (f"warning: the jobs of {flow.name!r} are also recorded as {where}; each engine's "
            "worker computes its own queue, so remove the queue you do not want. "
            "`omni-flows status` counts a job done once any of them stored it.\n")
