"""The local database server: SecantusDB over a data folder, in its own process.

SecantusDB speaks the MongoDB wire protocol over WiredTiger, so the platform
talks to it with the same pymongo calls as to a real MongoDB. It is GPL-2.0:
it is never imported here, only started as a separate program
(``python -m secantus``, its ``secantusd-py`` daemon) and spoken to over TCP.

The server requires authentication (SCRAM-SHA-256, SecantusDB's ``auth``):
on the first start a user with a random password is created and its credential
written to ``<home>/db/credentials.json`` (mode 0600, in a 0700 folder); every
client of the platform takes it from ``Settings.uri`` or ``ServerInfo.uri``.
SecantusDB has no localhost exception, so the user is created through a private
start without authentication, on a free port of 127.0.0.1 for about a second,
before the server opens its own port. A data folder written before this
(no users) is upgraded in place the same way; a lost credential file gets the
user a new password. Nothing stored is touched.

Files in ``<home>/db``: ``data/`` (WiredTiger), ``secantusd.toml`` (the
server's config, written on every start), ``credentials.json``, ``server.log``,
``server.json`` (pid, host and port of the running server) and ``start.lock``.
"""

import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from omni_flows.errors import DatabaseServerError
from omni_flows.processes import pid_alive
from omni_flows.settings import Settings, local_uri, redact

# the platform's user on the local server: every privilege (MongoDB's built-in root role)
USERNAME = "omni-flows"
AUTH_SOURCE = "admin"

# WiredTiger replays its journal on a start after a crash; a large one takes a while
START_TIMEOUT_S = 60.0
# a clean stop writes a checkpoint of everything in the cache
STOP_TIMEOUT_S = 30.0
POLL_S = 0.1


@dataclass(frozen=True)
class ServerInfo:
    """A running local server."""

    pid: int
    host: str
    port: int
    data_dir: str
    log_file: str
    started_at: str
    auth: bool = False  # False: started by a version without authentication
    credentials_file: str = field(default="", repr=False)

    @property
    def uri(self) -> str:
        """Its URI, with the credential: what every client (and a user's script) connects to."""
        return local_uri(self.host, self.port, Path(self.credentials_file))

    def as_dict(self) -> dict:
        state = asdict(self)
        del state["credentials_file"]
        return {"uri": self.uri, **state}


def _write_state(settings: Settings, info: ServerInfo) -> None:
    state = asdict(info)
    del state["credentials_file"]  # where it is follows from the home, not from the state
    _state_file(settings).write_text(json.dumps(state, indent=2) + "\n")


def _state_file(settings: Settings) -> Path:
    return settings.db_dir / "server.json"


def _command_line(pid: int) -> str:
    """The command line of process ``pid`` ('' if unknown)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # no /proc (macOS): ask ps
        done = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True)
        return done.stdout.decode(errors="replace")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as the server binds: a closed connection in TIME_WAIT does not block the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """True if a MongoDB-protocol server answers ``ping`` on host:port."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    ms = int(timeout_s * 1000)
    client = MongoClient(
        host, port, directConnection=True, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def _log_tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def server_status(settings: Settings) -> ServerInfo | None:
    """The running local server of ``settings.home``, or None (a stale state file is removed)."""
    state = _state_file(settings)
    try:
        info = ServerInfo(**json.loads(state.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    # after a reboot the pid may belong to another program: check it is our server
    if pid_alive(info.pid) and str(_config_file(settings)) in _command_line(info.pid):
        return replace(info, credentials_file=str(settings.credentials_file))
    state.unlink(missing_ok=True)
    return None


def _config_file(settings: Settings) -> Path:
    return settings.db_dir / "secantusd.toml"


@contextmanager
def _start_lock(settings: Settings):
    """One starter at a time per data folder (several workers may start together)."""
    settings.db_dir.mkdir(parents=True, exist_ok=True)
    settings.db_dir.chmod(0o700)  # the data and the credential: this user's only
    with open(settings.db_dir / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def _write_config(
    path: Path, host: str, port: int, data_dir: Path, auth: bool = True
) -> Path:
    """The server's own config file, so that no stray secantusd.toml is picked up."""
    path.write_text(
        "# written by omni-flows on every `omni-flows db start`; edits are overwritten\n"
        "[server]\n"
        f"host = {json.dumps(host)}\n"
        f"port = {port}\n"
        f"storage_path = {json.dumps(str(data_dir))}\n"
        'log_level = "WARNING"\n'
        f"auth = {'true' if auth else 'false'}\n"
        # a plain single server: no oplog to write, no replica-set topology for clients
        "standalone = true\n"
        "[storage]\n"
        # fsync the journal on every commit: a write is acknowledged once durable,
        # whichever client made it (FireWorks' and jobflow-remote's own clients too)
        "sync_on_commit = true\n"
    )
    return path


def start_server(settings: Settings) -> ServerInfo:
    """Start the local server over ``<home>/db/data`` unless it runs; return it."""
    with _start_lock(settings):
        return _start(settings)


def _start(settings: Settings, provisioned: bool = False) -> ServerInfo:
    running = server_status(settings)
    if running is not None and running.auth:
        return running
    if running is not None:  # started by a version without authentication: restart with it
        stop_server(settings)
    if not settings.uses_local_server:
        raise DatabaseServerError(
            f"a MongoDB URI is configured ({redact(settings.mongodb_uri)}); the local server "
            "is only for when none is. Unset OMNI_FLOWS_MONGODB_URI to use it."
        )
    host, port = settings.db_host, settings.db_port
    if not _port_free(host, port):
        raise DatabaseServerError(
            f"port {port} on {host} is in use by another program; "
            "choose another with OMNI_FLOWS_DB_PORT or stop that program"
        )
    data_dir = settings.db_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.credentials_file.exists():
        _provision_user(settings, data_dir)
        provisioned = True
    config = _write_config(_config_file(settings), host, port, data_dir)
    proc = _launch(settings, config)
    info = ServerInfo(
        pid=proc.pid,
        host=host,
        port=port,
        data_dir=str(data_dir),
        log_file=str(settings.db_dir / "server.log"),
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        auth=True,
        credentials_file=str(settings.credentials_file),
    )
    _write_state(settings, info)
    _wait_until_answering(settings, proc, host, port)
    if not _credential_accepted(info.uri):
        stop_server(settings)
        if provisioned:
            raise DatabaseServerError(
                f"the database server refuses the credential it was just given; "
                f"log {info.log_file}:\n{_log_tail(Path(info.log_file))}"
            )
        # the data folder lacks the user (a folder copied from elsewhere, say): create it
        _provision_user(settings, data_dir)
        return _start(settings, provisioned=True)
    return info


def _launch(settings: Settings, config: Path) -> subprocess.Popen:
    """``python -m secantus --config config``, detached, logging to server.log."""
    env = dict(os.environ, SECANTUS_FORCE_DURABLE="1")  # journal on, whatever the environment
    env.pop("SECANTUS_TEST_FAST_STORAGE", None)
    with open(settings.db_dir / "server.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "secantus", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=settings.db_dir,
            start_new_session=True,  # outlives this process and its Ctrl-C
        )


def _wait_until_answering(settings: Settings, proc: subprocess.Popen, host: str, port: int):
    log_file = settings.db_dir / "server.log"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _state_file(settings).unlink(missing_ok=True)
            raise DatabaseServerError(
                f"the database server exited at start (code {proc.returncode}); "
                f"log {log_file}:\n{_log_tail(log_file)}"
            )
        if _answers(host, port, timeout_s=POLL_S * 5):
            return
        time.sleep(POLL_S)
    _terminate(proc.pid, host, port)
    _state_file(settings).unlink(missing_ok=True)
    raise DatabaseServerError(
        f"the database server did not answer within {START_TIMEOUT_S:.0f} s; "
        f"log {log_file}:\n{_log_tail(log_file)}"
    )


def _credential_accepted(uri: str) -> bool:
    """True if the server at ``uri`` accepts its credential (ping alone needs none)."""
    from pymongo import MongoClient
    from pymongo.errors import OperationFailure

    client = MongoClient(uri, directConnection=True, serverSelectionTimeoutMS=5000)
    try:
        client.admin.command("usersInfo", USERNAME)
        return True
    except OperationFailure:
        return False
    finally:
        client.close()


def _provision_user(settings: Settings, data_dir: Path) -> None:
    """Create the platform's user (or give it a new password), then write the credential.

    The server runs without authentication for this, on a free port of 127.0.0.1
    nobody is told about, and stops again; the data folder is only ours (0700).
    """
    from pymongo import MongoClient

    host = "127.0.0.1"
    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    config = _write_config(settings.db_dir / "provision.toml", host, port, data_dir, auth=False)
    proc = _launch(settings, config)
    try:
        _wait_until_answering(settings, proc, host, port)
        password = secrets.token_urlsafe(24)
        client = MongoClient(host, port, directConnection=True, serverSelectionTimeoutMS=5000)
        try:
            admin = client[AUTH_SOURCE]
            roles = [{"role": "root", "db": AUTH_SOURCE}]
            if admin.command("usersInfo", USERNAME)["users"]:
                admin.command("updateUser", USERNAME, pwd=password, roles=roles)
            else:
                admin.command("createUser", USERNAME, pwd=password, roles=roles,
                              mechanisms=["SCRAM-SHA-256"])
        finally:
            client.close()
        _write_credentials(settings.credentials_file, password)
    finally:
        _terminate(proc.pid, host, port)
        config.unlink(missing_ok=True)


def _write_credentials(path: Path, password: str) -> None:
    """credentials.json, mode 0600 from its creation, replaced atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"username": USERNAME, "password": password, "auth_source": AUTH_SOURCE}, f)
        f.write("\n")
    tmp.replace(path)


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=POLL_S).close()
        return True
    except OSError:
        return False


def stop_server(settings: Settings) -> ServerInfo | None:
    """Stop the local server cleanly (SIGTERM: it checkpoints), SIGKILL if it hangs."""
    info = server_status(settings)
    if info is None:
        return None
    _terminate(info.pid, info.host, info.port)
    _state_file(settings).unlink(missing_ok=True)
    return info


def _terminate(pid: int, host: str, port: int) -> None:
    """SIGTERM the server ``pid`` and wait until it is gone; SIGKILL if it hangs."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    nudge_at = time.monotonic() + 1.0
    while pid_alive(pid):
        now = time.monotonic()
        if now > deadline:
            # the journal is on disk: the next start recovers every acknowledged write
            os.kill(pid, signal.SIGKILL)
            deadline = now + STOP_TIMEOUT_S
        elif now > nudge_at and _listening(host, port):
            # its first act on SIGTERM is to close the port; still open means the signal
            # landed on a thread other than the (blocked) main one, which then never
            # wakes to handle it (a CPython limit): send it again
            os.kill(pid, signal.SIGTERM)
            nudge_at = now + 1.0
        time.sleep(POLL_S)


def ensure_server(settings: Settings) -> str:
    """The URI to use: the configured MongoDB, or the local server, started if needed."""
    if settings.uses_local_server:
        return start_server(settings).uri  # the running one, even if started on another port
    return settings.uri
