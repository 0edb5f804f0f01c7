"""The local server's life cycle, its authentication, and what survives when it is killed.

References: the operating system (is the pid alive, file modes), the server answering
``ping`` and refusing clients without the credential (MongoDB's error codes), the
ids a writer printed only after the server acknowledged them, and the energies the
chained jobs below compute by hand (-1, -2, ..., -N eV).
"""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jobflow import Flow, job
from pymatgen.core import Lattice, Structure
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from omni_flows.db_schemas import Provenance, SlabDoc
from omni_flows.engines.local import run_local
from omni_flows.engines.flow_file import load_flow
from omni_flows.errors import DatabaseServerError, user_error_message
from omni_flows.processes import pid_alive
from omni_flows.server import server_status, start_server, stop_server
from omni_flows.stores import job_store, mongo_client

N_STEPS = 12


@job
def step(i: int, previous: SlabDoc | None) -> SlabDoc:
    """One slow link of a chain: energy = previous energy - 1 eV."""
    time.sleep(0.3)  # slow enough for the server to be killed mid-chain
    return SlabDoc(
        provenance=Provenance(model_name="test-model", task="PBE", checkpoint_hash="c0ffee"),
        bulk_id="chain",
        bulk_formula="Cu",
        miller_index=(1, 0, 0),
        shift=i / 100,
        structure=Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]]),
        min_slab_size=8.0,
        min_vacuum_size=15.0,
        energy=(previous.energy if previous else 0.0) - 1.0,
    )


def chain_flow() -> Flow:
    jobs = [step(0, None)]
    for i in range(1, N_STEPS):
        jobs.append(step(i, jobs[-1].output))
    return Flow(jobs, name="chain")


def test_server_starts_once_keeps_data_and_stops(tmp_path, new_local_settings):
    settings = new_local_settings(tmp_path)
    assert server_status(settings) is None
    info = start_server(settings)
    try:
        assert start_server(settings).pid == info.pid  # already running: the same server
        assert pid_alive(info.pid) and info.uri == settings.uri
        client = mongo_client(info.uri)
        client.omni.kept.insert_one({"_id": 1, "energy": -1.25})
        client.close()
        other = new_local_settings(tmp_path / "other").model_copy(
            update={"db_port": settings.db_port}
        )
        with pytest.raises(DatabaseServerError, match="in use"):  # its port is taken
            start_server(other)
    finally:
        assert stop_server(settings).pid == info.pid
    assert server_status(settings) is None and not pid_alive(info.pid)
    assert stop_server(settings) is None

    info = start_server(settings)  # the data folder is reopened intact
    client = mongo_client(info.uri)
    assert client.omni.kept.find_one({"_id": 1})["energy"] == -1.25
    client.close()
    stop_server(settings)


STARTER = """
import sys
from omni_flows.server import start_server
from omni_flows.settings import Settings
print(start_server(Settings(home=sys.argv[1], db_port=int(sys.argv[2]), mongodb_uri=None)).pid)
"""


def test_concurrent_starts_share_one_server_and_a_stale_state_is_dropped(
    tmp_path, new_local_settings
):
    settings = new_local_settings(tmp_path)
    args = [sys.executable, "-c", STARTER, str(settings.home), str(settings.db_port)]
    starters = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    pids = {int(p.communicate(timeout=120)[0]) for p in starters}
    info = server_status(settings)
    assert pids == {info.pid}  # one server, whoever started it
    stop_server(settings)

    # a state file whose pid now belongs to another program (as after a reboot)
    state = settings.db_dir / "server.json"
    state.write_text(json.dumps(dataclasses.asdict(info) | {"pid": os.getpid()}))
    assert server_status(settings) is None and not state.exists()


WRITER = """
import sys
from omni_flows.stores import mongo_client
coll = mongo_client(sys.argv[1]).omni.acked
i = 0
try:
    while True:
        coll.insert_one({"_id": i})
        print(i, flush=True)  # only after the server acknowledged it
        i += 1
except Exception:
    pass
"""

RUNNER = """
import sys
from omni_flows.engines.flow_file import load_flow
from omni_flows.engines.local import run_local
from omni_flows.settings import Settings
settings = Settings(home=sys.argv[2], db_port=int(sys.argv[3]), mongodb_uri=None)
run_local(load_flow(sys.argv[1]), settings)
"""


def test_sigkilled_server_keeps_acknowledged_writes_and_the_flow_resumes(
    tmp_path, new_local_settings
):
    settings = new_local_settings(tmp_path / "home")
    info = start_server(settings)
    flow_file = tmp_path / "chain.json"
    flow_file.write_text(chain_flow().to_json())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), *sys.path]))
    args = [str(flow_file), str(settings.home), str(settings.db_port)]
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, *args],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, info.uri], stdout=subprocess.PIPE, text=True
    )

    client = mongo_client(info.uri)
    outputs = client[settings.database].outputs
    while outputs.count_documents({}) < 4:  # a third of the chain is done
        assert runner.poll() is None, runner.stderr.read()
        time.sleep(0.05)
    before = {d["uuid"]: d["completed_at"] for d in outputs.find({})}
    os.kill(info.pid, signal.SIGKILL)
    with pytest.raises(PyMongoError) as lost:  # a command whose database dies says so
        outputs.find_one({"uuid": "none"})
    assert "lost the connection to MongoDB" in user_error_message(lost.value)
    client.close()

    acked = [int(line) for line in writer.communicate(timeout=60)[0].split()]
    assert runner.wait(timeout=60) != 0  # the run was interrupted
    assert "run the flow again to resume" in runner.stderr.read()
    assert 4 <= len(before) < N_STEPS and len(acked) > 0

    info = start_server(settings)  # WiredTiger replays its journal
    client = mongo_client(info.uri)
    assert client.omni.acked.count_documents({"_id": {"$in": acked}}) == len(acked)
    db = client[settings.database]
    found = db.outputs.find({"uuid": {"$in": list(before)}})
    survived = {d["uuid"]: d["completed_at"] for d in found}
    assert survived == before

    flow = load_flow(flow_file)  # the same flow, the same job uuids
    run_local(flow, settings)
    uuids = [j.uuid for j in flow.jobs]
    assert db.outputs.count_documents({}) == N_STEPS
    assert sorted(db.outputs.distinct("uuid")) == sorted(uuids)
    for uuid, completed_at in before.items():  # finished jobs were not run again
        assert db.outputs.find_one({"uuid": uuid})["completed_at"] == completed_at
    energies = [d["energy"] for d in db.slabs.find({}).sort("shift", 1)]
    assert energies == [-float(i + 1) for i in range(N_STEPS)]
    store = job_store(settings)
    store.connect()
    assert store.get_output(uuids[-1])["energy"] == -float(N_STEPS)
    store.close()
    client.close()
    stop_server(settings)


def test_server_requires_the_credential_it_wrote_and_plain_pymongo_uses_it(db_server):
    """Reference: the server's own answer (MongoDB codes 13 Unauthorized, 18 AuthenticationFailed)."""
    settings = db_server
    cred = settings.credentials_file
    assert cred.stat().st_mode & 0o777 == 0o600 and settings.db_dir.stat().st_mode & 0o777 == 0o700
    assert json.loads(cred.read_text())["password"] in settings.uri  # every client gets it

    client = MongoClient(settings.uri)  # what a user's script does with `db status --json`
    client.t_auth.docs.insert_one({"_id": 1})
    assert client.t_auth.docs.count_documents({}) == 1
    client.close()

    anonymous = MongoClient(settings.db_host, settings.db_port, serverSelectionTimeoutMS=5000)
    anonymous.admin.command("ping")  # the handshake is open: it is the server that refuses
    with pytest.raises(OperationFailure) as refused:
        anonymous.t_auth.docs.find_one({})
    assert refused.value.code == 13
    with pytest.raises(OperationFailure) as refused:
        anonymous.t_auth.docs.insert_one({"_id": 2})
    assert refused.value.code == 13
    anonymous.close()

    wrong = settings.uri.replace(json.loads(cred.read_text())["password"], "guessed")
    with pytest.raises(OperationFailure) as refused:
        MongoClient(wrong, serverSelectionTimeoutMS=5000).t_auth.docs.find_one({})
    assert refused.value.code == 18
    assert "MongoDB refused the credentials" in user_error_message(refused.value)  # exit 2


def _start_as_before_authentication(settings) -> subprocess.Popen:
    """The server as the code before authentication started it: same files, no auth, no user."""
    db_dir = settings.db_dir
    (db_dir / "data").mkdir(parents=True)
    config = db_dir / "secantusd.toml"
    config.write_text(
        "[server]\n"
        f'host = "{settings.db_host}"\nport = {settings.db_port}\n'
        f'storage_path = "{db_dir / "data"}"\nlog_level = "WARNING"\nstandalone = true\n'
        "[storage]\nsync_on_commit = true\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "secantus", "--config", str(config)], cwd=db_dir,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env=dict(os.environ, SECANTUS_FORCE_DURABLE="1"),
    )
    (db_dir / "server.json").write_text(json.dumps({  # the state file of that version
        "pid": proc.pid, "host": settings.db_host, "port": settings.db_port,
        "data_dir": str(db_dir / "data"), "log_file": str(db_dir / "server.log"),
        "started_at": "2026-11-30T00:00:00+00:00",
    }))
    deadline = time.monotonic() + 60
    while True:
        try:
            MongoClient(settings.db_host, settings.db_port,
                        serverSelectionTimeoutMS=500).admin.command("ping")
            return proc
        except PyMongoError:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)


@pytest.mark.parametrize("old_server", ["stopped", "still running"])
def test_a_data_folder_without_users_is_upgraded_without_loss(
    tmp_path, new_local_settings, old_server
):
    settings = new_local_settings(tmp_path)
    proc = _start_as_before_authentication(settings)
    old = MongoClient(settings.db_host, settings.db_port)  # no credential was needed
    old[settings.database].slabs.insert_many([{"_id": i, "energy": -1.0 - i} for i in range(5)])
    old.close()
    if old_server == "stopped":
        proc.terminate()
        proc.wait(timeout=60)
    assert not settings.credentials_file.exists()

    info = start_server(settings)  # the new way: a user is created, authentication on
    try:
        assert info.auth and info.pid != proc.pid and proc.wait(timeout=60) is not None
        client = MongoClient(info.uri)
        energies = [d["energy"] for d in client[settings.database].slabs.find().sort("_id")]
        assert energies == [-1.0, -2.0, -3.0, -4.0, -5.0]
        client.close()
        anonymous = MongoClient(settings.db_host, settings.db_port, serverSelectionTimeoutMS=5000)
        with pytest.raises(OperationFailure):
            anonymous[settings.database].slabs.find_one({})
        anonymous.close()
    finally:
        stop_server(settings)

    # a lost credential file: the same user gets a new password, the data stays
    settings.credentials_file.unlink()
    info = start_server(settings)
    try:
        assert MongoClient(info.uri)[settings.database].slabs.count_documents({}) == 5
    finally:
        stop_server(settings)


# -- issue 28: no unauthenticated window at the first start, no server left behind by Ctrl-C


def _cli(settings, *args: str, **popen) -> subprocess.Popen:
    """``omni-flows *args`` as its own process, on ``settings``' home and port."""
    env = dict(os.environ, OMNI_FLOWS_HOME=str(settings.home),
               OMNI_FLOWS_DB_PORT=str(settings.db_port))
    env.pop("OMNI_FLOWS_MONGODB_URI", None)
    env.pop("OMNI_FLOWS_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-c", "from omni_flows.cli import main; main()", *args], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen,
    )


def _secantus_pids(home: Path) -> set[int]:
    """SecantusDB processes whose command line names ``home`` (what a local user can see)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and "-m secantus" in command and str(home) in command:
            pids.add(int(entry.name))
    return pids


def _listening_ports(pids: set[int]) -> set[int]:
    """TCP ports in LISTEN state (/proc/net/tcp state 0A) whose socket belongs to ``pids``."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[len("socket:["):-1])
        except OSError:
            continue
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:
            ports.add(int(fields[1].split(":")[1], 16))
    return ports


def _create_intruder(port: int) -> str:
    """What a local attacker tries: createUser over plain TCP, then over TLS without a
    certificate. 'ACCEPTED' if either works, else the refusals."""
    outcomes = []
    for tls in ({}, {"tls": True, "tlsAllowInvalidCertificates": True}):
        client = MongoClient("127.0.0.1", port, directConnection=True,
                             serverSelectionTimeoutMS=400, **tls)
        try:
            client.admin.command("createUser", "intruder", pwd="x",
                                 roles=[{"role": "root", "db": "admin"}])
            return "ACCEPTED"
        except PyMongoError as exc:
            outcomes.append(type(exc).__name__)
        finally:
            client.close()
    return " ".join(outcomes)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc")
def test_a_watcher_racing_the_first_start_cannot_create_a_user(tmp_path, new_local_settings):
    """Reference: issue 28's attack. A local process watches for every port the server
    processes open and sends createUser there at once; the old provisioning start
    (``auth = false`` on 127.0.0.1) accepted it. Every try must be refused, and the
    server must hold no user but the platform's."""
    import threading

    settings = new_local_settings(tmp_path)
    tries: dict[int, str] = {}  # port -> outcome
    open_when_tried: set[int] = set()
    done = threading.Event()

    def watch():
        while not done.is_set():
            for port in _listening_ports(_secantus_pids(tmp_path)) - set(tries):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    open_when_tried.add(port)
                except OSError:
                    pass
                tries[port] = _create_intruder(port)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.2)  # the watcher runs before the start, as an attacker's would
    start = _cli(settings, "db", "start")
    try:
        assert start.wait(timeout=120) == 0, start.stderr.read()
        deadline = time.monotonic() + 5  # the watcher tries the final port too
        while settings.db_port not in tries and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        done.set()
        watcher.join(timeout=10)
    try:
        # it raced both: the private provisioning port (open when tried) and the server's own
        assert settings.db_port in tries and len(open_when_tried - {settings.db_port}) >= 1
        assert "ACCEPTED" not in tries.values(), tries
        users = MongoClient(settings.uri).admin.command("usersInfo")["users"]
        assert [u["user"] for u in users] == ["omni-flows"]
        assert not list(settings.db_dir.glob("provision*"))  # its key does not outlive it
    finally:
        stop_server(settings)


def _wait_for(condition, timeout_s: float = 60.0, what: str = ""):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc")
def test_ctrl_c_during_the_first_start_leaves_no_server(tmp_path, new_local_settings):
    """Reference: the operating system's process table. Ctrl-C while the private
    provisioning server runs ends the command (exit 130, the shell's 128 + SIGINT) and
    leaves no process over the data folder; a second start then works."""
    settings = new_local_settings(tmp_path)
    start = _cli(settings, "db", "start")
    _wait_for(lambda: _secantus_pids(tmp_path), what="the provisioning server")
    provisioning = _secantus_pids(tmp_path)
    start.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert start.wait(timeout=60) == 130, start.stderr.read()
    assert not any(pid_alive(pid) for pid in provisioning)
    assert _secantus_pids(tmp_path) == set() and not list(settings.db_dir.glob("provision*"))
    info = start_server(settings)
    try:
        assert MongoClient(info.uri).admin.command("usersInfo")["users"]
    finally:
        stop_server(settings)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc")
def test_db_start_names_a_stray_server_and_db_stop_stops_it(tmp_path, new_local_settings):
    """Reference: issue 28's orphan, a SecantusDB over the data folder that server.json
    does not name (it holds WiredTiger.lock). ``db start`` exits 2 naming its pid,
    ``db stop`` ends it, and then ``db start`` works. The stray runs without
    authentication, so it is also the control of the watcher above: its createUser
    probe does get through where nothing stops it."""
    settings = new_local_settings(tmp_path)
    stray = _start_as_before_authentication(settings)
    (settings.db_dir / "server.json").unlink()  # as a killed start leaves it
    try:
        assert _create_intruder(settings.db_port) == "ACCEPTED"  # the probe works
        started = _cli(settings, "db", "start")
        out, err = started.communicate(timeout=120)
        assert started.returncode == 2 and "Traceback" not in err, err
        assert err.count("\n") == 1 and f"process {stray.pid} " in err
        assert "omni-flows db stop" in err
        from typer.testing import CliRunner

        from omni_flows.cli import app

        env = {"OMNI_FLOWS_HOME": str(settings.home), "OMNI_FLOWS_DB_PORT": str(settings.db_port),
               "OMNI_FLOWS_MONGODB_URI": None, "OMNI_FLOWS_CONFIG": None}
        stopped = CliRunner().invoke(app, ["db", "stop"], env=env)  # in this process: faster
        assert stopped.exit_code == 0, stopped.output
        assert f"stray database process {stray.pid}" in stopped.stdout
        assert stray.wait(timeout=5) is not None
    finally:
        if stray.poll() is None:
            stray.kill()
    start_server(settings)
    stop_server(settings)
