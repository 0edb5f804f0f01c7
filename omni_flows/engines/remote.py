"""jobflow-remote: the project configuration for a user's cluster, generated from Settings.

jobflow-remote's runner (on the user's machine) submits jobs to the cluster's
scheduler over SSH and writes states and outputs to MongoDB; the cluster nodes
never connect to the database. Its queue lives in ``<database>_jobflow_remote``
and its JobStore is the platform's (``outputs`` + ``outputs_blobs``) in the
same server. The project's JobStore files result documents in their own
collections as the runner stores each output (:class:`ResultsMongoStore`), so a
campaign's results are queried exactly as after a local run.

Typical use::

    omni-flows remote-config --write      # ~/.jfremote/omni-flows.yaml, checked
    omni-flows submit flow.json --engine jobflow-remote   # initialises a fresh queue
    jf runner start                       # or start_runner(); `jf runner shutdown` stops it

Do not run `jf admin reset` by hand on a queue next to results: it drops the indexes
of the outputs collection (:func:`initialise_queue` puts them back).

With no cluster configured the worker is jobflow-remote's ``local`` host: the
runner starts each job on this machine through the shell.
"""

import os
import shlex
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from jobflow import Flow, Job, JobStore
from jobflow.core.flow import get_flow
from maggma.stores import GridFSStore, MongoStore
from qtoolkit.io.shell import ShellIO

from omni_flows.db_schemas.indexes import JOB_BLOBS, JOB_OUTPUTS
from omni_flows.engines import Engine
from omni_flows.engines.campaigns import record_campaign
from omni_flows.errors import EngineError
from omni_flows.settings import Settings, load_settings
from omni_flows.server import ensure_server
from omni_flows.stores import CLIENT_OPTIONS, ensure_indexes, publish_results

PROJECT_NAME = "omni-flows"
WORKER_NAME = "cluster"
EXEC_CONFIG_NAME = "omni-flows"
# seconds between the runner's rounds (checkout, submit, check, download, complete) for
# jobs on this machine; a cluster's queue keeps jobflow-remote's default of 30 s
LOCAL_RUNNER_DELAY_S = 1.0


class ResultsMongoStore(MongoStore):
    """The job outputs' MongoStore; outputs that are result documents are also filed.

    jobflow-remote's runner writes each finished job's output with
    ``docs_store.update``: result documents then reach their own collections at
    once, as with the local engine's store.
    """

    def update(self, docs, key=None):
        super().update(docs, key=key)
        docs = docs if isinstance(docs, list) else [docs]
        uuids = [d["uuid"] for d in docs if isinstance(d, dict) and "output" in d]
        if uuids:
            publish_results(JobStore(self), {"uuid": {"$in": uuids}})


class QuotedShellIO(ShellIO):
    """qtoolkit's shell scheduler, the job name quoted in the script it writes.

    Its script echoes the job name unquoted, and names such as ``slab Pt(111)``
    are a shell syntax error there (the job then fails before it starts).
    """

    def sanitize_options(self, options: dict) -> dict:
        options = dict(super().sanitize_options(options))
        if options.get("job_name") is not None:
            options["job_name"] = shlex.quote(str(options["job_name"]))
        return options


def _store_spec(store_type: str, database: str, collection: str, uri: str) -> dict[str, Any]:
    """A maggma store in jobflow's ``type:`` form."""
    return {
        "type": store_type,
        "database": database,
        "collection_name": collection,
        "uri": uri,
        "mongoclient_kwargs": dict(CLIENT_OPTIONS),
    }


def _jobstore_spec(database: str, uri: str) -> dict[str, Any]:
    """The platform's JobStore, serialized: outputs, blobs, results filed on write."""
    options = dict(CLIENT_OPTIONS)
    store = JobStore(
        ResultsMongoStore(database, JOB_OUTPUTS, uri=uri, mongoclient_kwargs=options),
        additional_stores={
            "data": GridFSStore(database, JOB_BLOBS, uri=uri, mongoclient_kwargs=options)
        },
    )
    return store.as_dict()


def project_config(settings: Settings | None = None, name: str | None = None) -> dict[str, Any]:
    """The jobflow-remote project (as a dict) for ``settings.cluster`` and the platform's DB;
    ``name`` None is :data:`PROJECT_NAME`."""
    settings = settings or load_settings()
    name = name or PROJECT_NAME
    cluster = settings.cluster
    uri, db = ensure_server(settings), settings.database
    if cluster.host:
        worker = {
            "type": "remote",
            "host": cluster.host,
            "user": cluster.user,
            "scheduler_type": cluster.scheduler,
            "work_dir": cluster.work_dir,
        }
    else:  # no cluster configured: run the jobs on this machine, through the shell
        worker = {
            "type": "local",
            "scheduler_type": QuotedShellIO().as_dict(),
            "work_dir": str(Path(settings.home) / "jobflow-remote" / "runs"),
        }
    worker["resources"] = dict(cluster.resources) or None
    worker["max_jobs"] = cluster.max_jobs
    config: dict[str, Any] = {
        "name": name,
        "base_dir": str(Path(settings.home) / "jobflow-remote" / name),
        "workers": {WORKER_NAME: {k: v for k, v in worker.items() if v is not None}},
        "queue": {"store": _store_spec("MongoStore", f"{db}_jobflow_remote", "jobs", uri)},
        "jobstore": _jobstore_spec(db, uri),
        # the job's output travels from the worker as msgpack, which keeps datetimes
        # (JSON turns them into strings): stored documents are those of a local run
        "remote_jobstore": {"store": "msgpack"},
    }
    if not cluster.host:
        delays = ("delay_checkout", "delay_check_run_status", "delay_advance_status")
        config["runner"] = dict.fromkeys(delays, LOCAL_RUNNER_DELAY_S)
    if cluster.pre_run:
        config["exec_config"] = {EXEC_CONFIG_NAME: {"pre_run": cluster.pre_run}}
    return config


def projects_folder() -> Path:
    """jobflow-remote's projects folder (``$JFREMOTE_PROJECTS_FOLDER``, ~/.jfremote)."""
    from jobflow_remote import SETTINGS

    return Path(SETTINGS.projects_folder).expanduser()


def write_project(
    settings: Settings | None = None, folder: str | Path | None = None, name: str | None = None
) -> Path:
    """Write ``<folder>/<name>.yaml`` and check that jobflow-remote loads it."""
    folder = Path(folder) if folder else projects_folder()
    name = name or PROJECT_NAME
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.touch(mode=0o600)
    path.chmod(0o600)  # its URIs carry the database credentials where the server has them
    path.write_text(yaml.safe_dump(project_config(settings, name), sort_keys=False))
    load_project(path)
    return path


def load_project(path: str | Path):
    """Load a project file with jobflow-remote's own model; its stores must build."""
    from jobflow_remote.config.base import Project

    try:
        project = Project.model_validate(yaml.safe_load(Path(path).read_text()))
        project.get_jobstore()
        project.get_queue_store()
    except Exception as exc:  # pydantic, yaml and maggma all raise their own types
        raise EngineError(f"jobflow-remote cannot load project {path}: {exc}") from exc
    return project


def job_controller(project: str = PROJECT_NAME):
    """jobflow-remote's JobController of ``project`` (its queue database)."""
    from jobflow_remote.config.base import ConfigError
    from jobflow_remote.config.manager import ConfigManager

    try:
        return ConfigManager().get_project(project).get_job_controller()
    except ConfigError as exc:
        raise EngineError(
            f"jobflow-remote: {exc}. Write the project with `omni-flows remote-config --write`."
        ) from exc


def initialise_queue(project: str = PROJECT_NAME) -> bool:
    """Initialise a fresh queue database (`jf admin reset` once); True if it was fresh.

    A queue that holds jobs or flows is never reset here.
    """
    controller = job_controller(project)
    if controller.auxiliary.count_documents({"next_id": {"$exists": True}}):
        return False
    if controller.jobs.count_documents({}) or controller.flows.count_documents({}):
        raise EngineError(
            f"the jobflow-remote queue of project {project!r} holds jobs but no id counter; "
            "inspect it with `jf job list` and reset it with `jf admin reset` if it can go"
        )
    controller.reset(reset_output=False, max_limit=0)
    # the reset drops every index of the outputs collection and adds its own, not unique,
    # on (uuid, index): put back the platform's (unique: a job's output is stored once)
    outputs = controller.jobstore.docs_store._collection
    outputs.drop_index([("uuid", 1), ("index", -1)])
    ensure_indexes(outputs.database)
    return True


def submit_jobflow_remote(
    flow: Flow | Job | list[Job], project: str = PROJECT_NAME, worker: str = WORKER_NAME
) -> list[str]:
    """Add ``flow`` to the jobflow-remote queue of ``project``; return the job db ids.

    A fresh queue database is initialised first. The runner (``jf runner start``
    or :func:`start_runner`) then runs the jobs on the worker.
    """
    from jobflow_remote import submit_flow
    from jobflow_remote.config.base import ConfigError

    flow = get_flow(flow)  # one Flow (and uuid) for the queue and the campaign record
    initialise_queue(project)
    try:
        exec_config = EXEC_CONFIG_NAME if _has_exec_config(project) else None
        ids = submit_flow(flow, worker=worker, project=project, exec_config=exec_config)
    except ConfigError as exc:
        raise EngineError(
            f"jobflow-remote: {exc}. Write the project with `omni-flows remote-config --write`."
        ) from exc
    outputs = job_controller(project).jobstore.docs_store
    outputs.connect()
    try:  # for `omni-flows status`, beside the results
        record_campaign(outputs._collection.database, flow, Engine.JOBFLOW_REMOTE,
                        project=project)
    finally:
        outputs.close()
    return ids


def _daemon(project: str):
    from jobflow_remote.jobs.daemon import DaemonManager

    return DaemonManager.from_project_name(project)


@contextmanager
def _interpreter_scripts_on_path():
    """``$PATH`` with this interpreter's scripts folder first, for the processes started within.

    jobflow-remote starts ``supervisord`` through the shell, and supervisord starts ``jf``:
    both are installed beside the interpreter, whose folder need not be on ``$PATH``
    (``.venv/bin/omni-flows`` run without activating the environment).
    """
    scripts = str(Path(sys.executable).parent)
    before = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join([scripts, before]) if before else scripts
    try:
        if shutil.which("supervisord") is None or shutil.which("jf") is None:
            raise EngineError(
                f"jobflow-remote's runner needs `supervisord` and `jf`, found neither beside "
                f"{sys.executable} nor on PATH; install them with: pip install jobflow-remote"
            )
        yield
    finally:
        if before is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = before


def start_runner(project: str = PROJECT_NAME) -> None:
    """Start jobflow-remote's runner daemon (``jf runner start --single``, supervisord).

    Its processes find the project through ``$JFREMOTE_PROJECTS_FOLDER`` (or ~/.jfremote),
    and ``supervisord`` and ``jf`` beside the running interpreter first, then on ``$PATH``.
    """
    from jobflow_remote.jobs.daemon import DaemonError

    try:
        with _interpreter_scripts_on_path():
            _daemon(project).start(single=True, raise_on_error=True)
    except DaemonError as exc:
        raise EngineError(f"jobflow-remote runner of {project!r} did not start: {exc}") from exc


def stop_runner(project: str = PROJECT_NAME) -> None:
    """Stop the runner once its current round is over, then supervisord (``jf runner shutdown``).

    Jobs already handed to the worker's scheduler keep running; a runner started
    later picks up their results.
    """
    from jobflow_remote.jobs.daemon import DaemonError, DaemonStatus

    daemon = _daemon(project)
    try:
        if daemon.check_status() != DaemonStatus.SHUT_DOWN:
            daemon.stop(wait=True, raise_on_error=True)
            daemon.shut_down(wait=True, raise_on_error=True)
    except DaemonError as exc:
        raise EngineError(f"jobflow-remote runner of {project!r} did not stop: {exc}") from exc


def _has_exec_config(project: str) -> bool:
    from jobflow_remote.config.manager import ConfigManager

    return EXEC_CONFIG_NAME in ConfigManager().get_project(project).exec_config
