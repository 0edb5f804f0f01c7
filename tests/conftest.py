"""Database fixtures: a real SecantusDB server in a temporary folder, one database per test."""

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
