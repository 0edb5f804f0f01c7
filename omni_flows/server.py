"""The local database server: SecantusDB over a data folder, in its own process.

SecantusDB speaks the MongoDB wire protocol over WiredTiger, so the platform
talks to it with the same pymongo calls as to a real MongoDB. It is GPL-2.0:
it is never imported here, only started as a separate program
(``python -m secantus``, its ``secantusd-py`` daemon) and spoken to over TCP.

Files in ``<home>/db``: ``data/`` (WiredTiger), ``secantusd.toml`` (the
server's config, written on every start), ``server.log``, ``server.json``
(pid, host and port of the running server) and ``start.lock``.
"""

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from omni_flows.errors import DatabaseServerError
from omni_flows.settings import Settings

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

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    def as_dict(self) -> dict:
        return {"uri": self.uri, **asdict(self)}


def _state_file(settings: Settings) -> Path:
    return settings.db_dir / "server.json"


def _pid_alive(pid: int) -> bool:
    """True if process ``pid`` runs (a zombie child of ours counts as dead, and is reaped)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:  # not our child: ask the kernel
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds the pid
        return False
    return True


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
    if _pid_alive(info.pid) and str(_config_file(settings)) in _command_line(info.pid):
        return info
    state.unlink(missing_ok=True)
    return None


def _config_file(settings: Settings) -> Path:
    return settings.db_dir / "secantusd.toml"


@contextmanager
def _start_lock(settings: Settings):
    """One starter at a time per data folder (several workers may start together)."""
    settings.db_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.db_dir / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def _write_config(settings: Settings, data_dir: Path) -> Path:
    """The server's own config file, so that no stray secantusd.toml is picked up."""
    path = _config_file(settings)
    path.write_text(
        "# written by omni-flows on every `omni-flows db start`; edits are overwritten\n"
        "[server]\n"
        f"host = {json.dumps(settings.db_host)}\n"
        f"port = {settings.db_port}\n"
        f"storage_path = {json.dumps(str(data_dir))}\n"
        'log_level = "WARNING"\n'
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


def _start(settings: Settings) -> ServerInfo:
    running = server_status(settings)
    if running is not None:
        return running
    if not settings.uses_local_server:
        raise DatabaseServerError(
            f"a MongoDB URI is configured ({settings.mongodb_uri}); the local server is "
            "only for when none is. Unset OMNI_FLOWS_MONGODB_URI to use it."
        )
    host, port = settings.db_host, settings.db_port
    if not _port_free(host, port):
        raise DatabaseServerError(
            f"port {port} on {host} is in use by another program; "
            "choose another with OMNI_FLOWS_DB_PORT or stop that program"
        )
    data_dir = settings.db_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = _write_config(settings, data_dir)
    log_file = settings.db_dir / "server.log"
    env = dict(os.environ, SECANTUS_FORCE_DURABLE="1")  # journal on, whatever the environment
    env.pop("SECANTUS_TEST_FAST_STORAGE", None)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "secantus", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=settings.db_dir,
            start_new_session=True,  # outlives this process and its Ctrl-C
        )
    info = ServerInfo(
        pid=proc.pid,
        host=host,
        port=port,
        data_dir=str(data_dir),
        log_file=str(log_file),
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    _state_file(settings).write_text(json.dumps(asdict(info), indent=2) + "\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _state_file(settings).unlink(missing_ok=True)
            raise DatabaseServerError(
                f"the database server exited at start (code {proc.returncode}); "
                f"log {log_file}:\n{_log_tail(log_file)}"
            )
        if _answers(host, port, timeout_s=POLL_S * 5):
            return info
        time.sleep(POLL_S)
    stop_server(settings)
    raise DatabaseServerError(
        f"the database server did not answer within {START_TIMEOUT_S:.0f} s; "
        f"log {log_file}:\n{_log_tail(log_file)}"
    )


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
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    nudge_at = time.monotonic() + 1.0
    while _pid_alive(info.pid):
        now = time.monotonic()
        if now > deadline:
            # the journal is on disk: the next start recovers every acknowledged write
            os.kill(info.pid, signal.SIGKILL)
            deadline = now + STOP_TIMEOUT_S
        elif now > nudge_at and _listening(info.host, info.port):
            # its first act on SIGTERM is to close the port; still open means the signal
            # landed on a thread other than the (blocked) main one, which then never
            # wakes to handle it (a CPython limit): send it again
            os.kill(info.pid, signal.SIGTERM)
            nudge_at = now + 1.0
        time.sleep(POLL_S)
    _state_file(settings).unlink(missing_ok=True)
    return info


def ensure_server(settings: Settings) -> str:
    """The URI to use: the configured MongoDB, or the local server, started if needed."""
    if settings.uses_local_server:
        return start_server(settings).uri  # the running one, even if started on another port
    return settings.uri
