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
start without password authentication (about a second, before the server opens
its own port) that is still closed to everyone else: it speaks only TLS and
requires a client certificate (SecantusDB's ``[tls] require_client_cert``), a
throwaway self-signed one whose key lies in the 0700 folder. A plain
``auth = false`` start on 127.0.0.1 was a way in: any local user could read the
port from /proc/net/tcp and create a user of their own first (issue 28). A data
folder written before this (no users) is upgraded in place the same way; a lost
credential file gets the user a new password. Nothing stored is touched.

Ctrl-C never leaves a server behind: a server is launched and recorded, or
stopped, with SIGINT held back until the step is done (a server left holding
``WiredTiger.lock`` made every later start fail). A stray server over the data
folder is named by ``db start`` and stopped by ``db stop``.

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
import threading
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


def _answers(host: str, port: int, timeout_s: float = 1.0, **tls) -> bool:
    """True if a MongoDB-protocol server answers ``ping`` on host:port (``tls``: pymongo's)."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    ms = int(timeout_s * 1000)
    client = MongoClient(
        host, port, directConnection=True, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
        **tls,
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
    path: Path, host: str, port: int, data_dir: Path, client_cert: Path | None = None
) -> Path:
    """The server's own config file, so that no stray secantusd.toml is picked up.

    Authentication is on, except with ``client_cert``: then the server speaks only
    TLS and admits only clients that present that certificate (the provisioning start).
    """
    tls = (
        "[tls]\n"
        f"cert_file = {json.dumps(str(client_cert))}\n"
        f"key_file = {json.dumps(str(client_cert))}\n"
        f"ca_file = {json.dumps(str(client_cert))}\n"
        "require_client_cert = true\n"
        if client_cert
        else ""
    )
    path.write_text(
        "# written by omni-flows on every `omni-flows db start`; edits are overwritten\n"
        "[server]\n"
        f"host = {json.dumps(host)}\n"
        f"port = {port}\n"
        f"storage_path = {json.dumps(str(data_dir))}\n"
        'log_level = "WARNING"\n'
        f"auth = {'false' if client_cert else 'true'}\n"
        # a plain single server: no oplog to write, no replica-set topology for clients
        "standalone = true\n"
        "[storage]\n"
        # fsync the journal on every commit: a write is acknowledged once durable,
        # whichever client made it (FireWorks' and jobflow-remote's own clients too)
        "sync_on_commit = true\n"
        + tls
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
    _refuse_strays(settings)  # before the port: a stray may hold that too
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
    with _sigint_deferred():  # a server launched is a server recorded: `db stop` finds it
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


def _wait_until_answering(
    settings: Settings,
    proc: subprocess.Popen,
    host: str,
    port: int,
    interrupted: threading.Event | None = None,
    **tls,
):
    """Wait until the server ``proc`` answers; KeyboardInterrupt once ``interrupted`` is set."""
    log_file = settings.db_dir / "server.log"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if interrupted is not None and interrupted.is_set():
            raise KeyboardInterrupt
        if proc.poll() is not None:
            _state_file(settings).unlink(missing_ok=True)
            raise DatabaseServerError(
                f"the database server exited at start (code {proc.returncode}); "
                f"log {log_file}:\n{_log_tail(log_file)}"
            )
        if _answers(host, port, timeout_s=POLL_S * 5, **tls):
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

    The server runs without password authentication for this, on a free port of
    127.0.0.1, but admits only TLS clients with a certificate made for this start,
    readable only by this user (0600 in the 0700 folder), and stops again. Ctrl-C is
    held back from launch to stop, and ends the wait early: never a server left behind.
    """
    from pymongo import MongoClient

    host = "127.0.0.1"
    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    cert = _write_client_certificate(settings.db_dir / "provision.pem", host)
    config = _write_config(settings.db_dir / "provision.toml", host, port, data_dir, cert)
    tls = {"tls": True, "tlsCAFile": str(cert), "tlsCertificateKeyFile": str(cert)}
    with _sigint_deferred() as interrupted:
        proc = _launch(settings, config)
        try:
            _wait_until_answering(settings, proc, host, port, interrupted, **tls)
            password = secrets.token_urlsafe(24)
            client = MongoClient(
                host, port, directConnection=True, serverSelectionTimeoutMS=5000, **tls
            )
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
            cert.unlink(missing_ok=True)


def _write_client_certificate(path: Path, host: str) -> Path:
    """A key and a self-signed certificate for ``host`` in one PEM file (0600), valid an hour.

    The provisioning start uses it as its own certificate, as its only trusted CA and as
    the one client certificate it admits: whoever cannot read this file cannot connect.
    """
    import ipaddress
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "omni-flows provisioning")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        # its own CA: it verifies itself, on both ends of the connection
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path


@contextmanager
def _sigint_deferred():
    """Hold Ctrl-C back for the block; yields an Event that is set if one came.

    The KeyboardInterrupt is raised when the block ends (or earlier by the block
    itself, through the Event). Only the main thread receives signals; elsewhere
    the block runs as it is.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted.is_set():
        raise KeyboardInterrupt


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
    """Stop the local server cleanly (SIGTERM: it checkpoints), SIGKILL if it hangs.

    Stray servers over the same data folder (see :func:`stray_servers`) are stopped too.
    """
    info = server_status(settings)
    with _sigint_deferred():  # a stop is finished, or the SIGKILL escalation never comes
        if info is not None:
            _terminate(info.pid, info.host, info.port)
            _state_file(settings).unlink(missing_ok=True)
        for pid, _ in stray_servers(settings):
            _terminate(pid)
    return info


def stray_servers(settings: Settings) -> list[tuple[int, str]]:
    """(pid, command line) of SecantusDB servers with a config in ``<home>/db`` that
    ``server.json`` does not name: left behind by a start that was killed, they hold
    ``WiredTiger.lock`` and so block every start over the data folder."""
    running = server_status(settings)
    marker = f"--config {settings.db_dir}{os.sep}"
    strays = []
    for pid, command in _processes():
        if "-m secantus" in command and marker in command and pid != os.getpid():
            if running is None or pid != running.pid:
                strays.append((pid, command.strip()))
    return strays


def _processes() -> list[tuple[int, str]]:
    """(pid, command line) of every process this user can see."""
    proc = Path("/proc")
    if proc.is_dir():
        found = []
        for d in proc.iterdir():
            try:
                if d.name.isdigit():
                    command = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    found.append((int(d.name), command))
            except OSError:  # it ended meanwhile
                pass
        return found
    done = subprocess.run(["ps", "-ax", "-o", "pid=,command="], capture_output=True, text=True)
    rows = (line.strip().split(" ", 1) for line in done.stdout.splitlines())
    return [(int(row[0]), row[1]) for row in rows if len(row) == 2 and row[0].isdigit()]


def _refuse_strays(settings: Settings) -> None:
    """A clear error, naming the process, instead of WiredTiger's 'resource busy'."""
    strays = stray_servers(settings)
    if strays:
        pid, command = strays[0]
        raise DatabaseServerError(
            f"process {pid} ({command}) holds the data folder {settings.db_dir / 'data'}; "
            "stop it with `omni-flows db stop`"
        )


def _exited(pid: int) -> bool:
    """True if ``pid`` has exited but its parent (not us) has not reaped it yet (a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or no /proc
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _terminate(pid: int, host: str | None = None, port: int | None = None) -> None:
    """SIGTERM the server ``pid`` and wait until it is gone; SIGKILL if it hangs.

    ``host:port``, if known, is where it listens: still open after a SIGTERM means the
    signal needs sending again (below).
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    nudge_at = time.monotonic() + 1.0
    while pid_alive(pid) and not _exited(pid):
        now = time.monotonic()
        if now > deadline:
            # the journal is on disk: the next start recovers every acknowledged write
            os.kill(pid, signal.SIGKILL)
            deadline = now + STOP_TIMEOUT_S
        elif now > nudge_at and port is not None and _listening(host, port):
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
