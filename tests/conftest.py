"""Database fixtures (a real SecantusDB server in a temporary folder, one database per
test), the session's shared screens, and how the suite runs in parallel.

``python -m pytest -q`` runs on 2 pytest-xdist workers (pyproject's addopts), each with
its own server and home, files whole to one worker (module fixtures run once):

- the workers share the cores: each process (and what it starts) gets
  ``cores // workers`` threads, so 2 workers never oversubscribe 2 cores;
- end-to-end files (marker ``e2e``: a real screen, validation or engine run against the
  database) are handed out first, longest first, so no long file starts last;
- files that read the same session fixture go to one worker (:data:`SAME_WORKER`).

``-n 0`` runs everything in this process, in file order.
"""

import os
import re
import socket
import uuid

import pytest

from omni_flows.server import start_server, stop_server
from omni_flows.settings import Settings


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_settings(home, **fields) -> Settings:
    """Settings of a local server in ``home`` on a free port, whatever the environment says."""
    return Settings(home=home, mongodb_uri=None, db_port=free_port(), **fields)


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def new_local_settings():
    """Factory of settings for a private server (a test that starts, stops or kills one)."""
    return local_settings


@pytest.fixture(scope="session")
def db_server(tmp_path_factory):
    """The session's server, started and stopped through ``omni_flows.server``."""
    settings = local_settings(tmp_path_factory.mktemp("omni-home"))
    start_server(settings)
    yield settings
    stop_server(settings)


@pytest.fixture
def settings(db_server, request) -> Settings:
    """Settings on the session server, with a database of this test's own."""
    name = re.sub(r"\W", "_", request.node.name)[:24]  # + suffixes: within MongoDB's 63
    return db_server.model_copy(update={"database": f"t_{name}_{uuid.uuid4().hex[:6]}"})


def cli_database(db_server: Settings, prefix: str, **extra) -> tuple[Settings, dict]:
    """Settings and CLI environment of a new database on the session server (``prefix`` +
    a random suffix), whatever the caller's environment says; ``extra`` adds variables."""
    database = f"{prefix}_{uuid.uuid4().hex[:6]}"
    env = {"OMNI_FLOWS_HOME": str(db_server.home), "OMNI_FLOWS_DB_PORT": str(db_server.db_port),
           "OMNI_FLOWS_DATABASE": database, "OMNI_FLOWS_MONGODB_URI": None,
           "OMNI_FLOWS_CONFIG": None, **extra}
    return db_server.model_copy(update={"database": database}), env


# --- the session's shared screens: built once, read by several files --------------------

@pytest.fixture(scope="session")
def gpaw_screen(db_server, tmp_path_factory):
    """The tiny Cu(111) + H screen and its GPAW validation (tests/test_gpaw_validation.py),
    read by that file and by tests/test_train_dft.py: (settings, CLI env, validation JSON)."""
    from test_gpaw_validation import screen_and_validate_with_gpaw

    return screen_and_validate_with_gpaw(db_server, tmp_path_factory)


# --- parallel runs (pytest-xdist) -------------------------------------------------------

# the longest files, longest first (seconds alone with OMP_NUM_THREADS=1, measured
# 2026-12-07 on the 2-core machine while others used it: about 3x a quiet run). Handed out
# first, so that no long file starts last; the others follow in file order.
LONGEST_FIRST = [
    "tests/test_process_state.py",  # 544 (16 fresh processes: 460)
    "tests/test_workflows_validation.py",  # 239 (its PySCF cluster test: 303 in a full run)
    "tests/test_bad_input.py",  # 68 (156 in a full run)
    "tests/test_parity_sevenn.py",  # 402
    "tests/test_gpaw_validation.py",  # 275, and test_train_dft.py on the same worker
    "tests/test_db_server.py",  # 282
    "tests/test_engines_remote.py",  # 214
    "tests/test_model_api.py",  # 150
    "tests/test_free_energy_screen.py",  # 148
    "tests/test_workflows_identity.py",  # 99
    "tests/test_che.py",  # 82
    "tests/test_workflows_makers.py",  # 76
    "tests/test_scaleout.py",  # 72
    "tests/test_engines_fireworks.py",  # 72
    "tests/test_db_store.py",  # 68
    "tests/test_legacy_db.py",  # 55
    "tests/test_gpu_suite.py",  # 54
    "tests/test_thermochemistry.py",  # 52
    "tests/test_physics.py",  # 52
]
# files whose tests are handed out one by one (no costly module fixture): a long file
# then runs on both workers
PER_TEST = {
    "tests/test_process_state.py", "tests/test_parity_sevenn.py", "tests/test_db_server.py",
    "tests/test_engines_remote.py", "tests/test_model_api.py", "tests/test_db_store.py",
}
# files that share a session fixture, run by the worker of the file they name
SAME_WORKER = {"tests/test_train_dft.py": "tests/test_gpaw_validation.py"}  # gpaw_screen

# end to end: a real screen, validation or engine run against the database (marker e2e)
END_TO_END_FIXTURES = {"tiny_screen", "free_energy_screen", "coverage_screen", "screens",
                       "two_runs", "pt_screen", "gpaw_screen", "tiny_mof_screen", "legacy",
                       "uncertainty_screen"}
END_TO_END_FILES = {"tests/test_engines_fireworks.py"}
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def pytest_configure(config):
    workers = getattr(config.option, "numprocesses", None)
    if isinstance(workers, int) and workers > 1 and not os.environ.get("PYTEST_XDIST_WORKER"):
        # the controller, before it starts the workers: they and their children inherit it
        # (a thread count set in a worker after torch or numpy loaded would not reach all)
        threads = str(max(1, len(os.sched_getaffinity(0)) // workers))
        for variable in _THREAD_VARIABLES:
            os.environ.setdefault(variable, threads)


def _file(item) -> str:
    return item.nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (_file(item) in END_TO_END_FILES or "end_to_end" in item.name
                or END_TO_END_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.e2e)
    if os.environ.get("PYTEST_XDIST_WORKER"):  # every worker orders alike: longest first
        rank = {path: k for k, path in enumerate(LONGEST_FIRST)}
        order = {path: k for k, path in enumerate(dict.fromkeys(_file(i) for i in items))}
        items.sort(key=lambda item: (rank.get(_file(item), len(rank)), order[_file(item)]))


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, with the files of :data:`PER_TEST` test by test and those of
    :data:`SAME_WORKER` on one worker."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return nodeid if path in PER_TEST else SAME_WORKER.get(path, path)

    return Scheduling(config, log)
