"""jobflow-remote: the project configuration for a user's cluster, generated from Settings.

jobflow-remote's runner (on the user's machine) submits jobs to the cluster's
scheduler over SSH and writes states and outputs to MongoDB; the cluster nodes
never connect to the database. Its queue lives in ``<database>_jobflow_remote``
and its JobStore is the platform's (``outputs`` + ``outputs_blobs``) in the
same server. jobflow-remote builds its own plain JobStore, so result documents
reach their collections with ``omni-flows db publish``.

Typical use::

    omni-flows remote-config --write      # ~/.jfremote/omni-flows.yaml, checked
    jf admin reset                        # once: initialise the queue database
    omni-flows submit flow.json --engine jobflow-remote
    jf runner start
"""

from pathlib import Path
from typing import Any

import yaml
from jobflow import Flow, Job

from omni_flows.db_schemas.indexes import JOB_BLOBS, JOB_OUTPUTS
from omni_flows.errors import EngineError
from omni_flows.settings import Settings, load_settings
from omni_flows.stores import CLIENT_OPTIONS

PROJECT_NAME = "omni-flows"
WORKER_NAME = "cluster"
EXEC_CONFIG_NAME = "omni-flows"


def _store_spec(store_type: str, database: str, collection: str, uri: str) -> dict[str, Any]:
    """A maggma store in jobflow's ``type:`` form."""
    return {
        "type": store_type,
        "database": database,
        "collection_name": collection,
        "uri": uri,
        "mongoclient_kwargs": dict(CLIENT_OPTIONS),
    }


def project_config(settings: Settings | None = None, name: str = PROJECT_NAME) -> dict[str, Any]:
    """The jobflow-remote project (as a dict) for ``settings.cluster`` and the platform's DB."""
    settings = settings or load_settings()
    cluster = settings.cluster
    uri, db = settings.uri, settings.database
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
            "scheduler_type": "shell",
            "work_dir": str(Path(settings.home) / "jobflow-remote" / "runs"),
        }
    worker["resources"] = dict(cluster.resources) or None
    worker["max_jobs"] = cluster.max_jobs
    config: dict[str, Any] = {
        "name": name,
        "base_dir": str(Path(settings.home) / "jobflow-remote" / name),
        "workers": {WORKER_NAME: {k: v for k, v in worker.items() if v is not None}},
        "queue": {"store": _store_spec("MongoStore", f"{db}_jobflow_remote", "jobs", uri)},
        "jobstore": {
            "docs_store": _store_spec("MongoStore", db, JOB_OUTPUTS, uri),
            "additional_stores": {"data": _store_spec("GridFSStore", db, JOB_BLOBS, uri)},
        },
    }
    if cluster.pre_run:
        config["exec_config"] = {EXEC_CONFIG_NAME: {"pre_run": cluster.pre_run}}
    return config


def projects_folder() -> Path:
    """jobflow-remote's projects folder (``$JFREMOTE_PROJECTS_FOLDER``, ~/.jfremote)."""
    from jobflow_remote import SETTINGS

    return Path(SETTINGS.projects_folder).expanduser()


def write_project(
    settings: Settings | None = None, folder: str | Path | None = None, name: str = PROJECT_NAME
) -> Path:
    """Write ``<folder>/<name>.yaml`` and check that jobflow-remote loads it."""
    folder = Path(folder) if folder else projects_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
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


def submit_jobflow_remote(
    flow: Flow | Job | list[Job], project: str = PROJECT_NAME, worker: str = WORKER_NAME
) -> list[str]:
    """Add ``flow`` to the jobflow-remote queue of ``project``; return the job db ids.

    The runner (``jf runner start``) then submits the jobs to the cluster.
    """
    from jobflow_remote import submit_flow
    from jobflow_remote.config.base import ConfigError

    try:
        exec_config = EXEC_CONFIG_NAME if _has_exec_config(project) else None
        return submit_flow(flow, worker=worker, project=project, exec_config=exec_config)
    except ConfigError as exc:
        raise EngineError(
            f"jobflow-remote: {exc}. Write the project with `omni-flows remote-config --write` "
            "and initialise its queue once with `jf admin reset`."
        ) from exc


def _has_exec_config(project: str) -> bool:
    from jobflow_remote.config.manager import ConfigManager

    return EXEC_CONFIG_NAME in ConfigManager().get_project(project).exec_config
