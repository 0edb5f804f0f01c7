"""The command line: ``db start|status|stop|schema``, ``query``, ``submit``, ``worker``.

References: the operating system and a ``ping`` for the server commands; the
values stored by the test itself for the queries; the CLI's contract that a
user error is one line on stderr with exit code 2.
"""

import csv
import io
import json
import signal
import subprocess
import sys
import time

import pytest
from jobflow import Flow, JobStore, job
from pymongo import MongoClient
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.db_schemas import Anomaly, AnomalyKind, Provenance, SlabDoc
from omni_flows.db_schemas.schema import json_schemas
from omni_flows.errors import InvalidFlowError, UnknownCollectionError
from omni_flows.processes import pid_alive
from omni_flows.engines.local import run_local
from omni_flows.stores import check_connection, connect_database, job_store

runner = CliRunner()


def cli_env(settings) -> dict:
    """The environment that points the CLI at ``settings``' server and database."""
    return {
        "OMNI_FLOWS_HOME": str(settings.home),
        "OMNI_FLOWS_DB_PORT": str(settings.db_port),
        "OMNI_FLOWS_DATABASE": settings.database,
        "OMNI_FLOWS_MONGODB_URI": None,  # unset: the user's own must not leak in
        "OMNI_FLOWS_CONFIG": None,
        "COLUMNS": "200",  # rich tables as wide as a wide terminal
    }


def invoke(args: list[str], settings, ok: bool = True):
    result = runner.invoke(app, args, env=cli_env(settings))
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


@job
def double(x: float) -> float:
    return 2 * x


@job
def relax_slab(hkl: tuple[int, int, int], energy: float, reconstructed: bool = False) -> SlabDoc:
    doc = SlabDoc.model_validate(slab(hkl, energy))
    if reconstructed:
        doc.anomalies = [Anomaly(kind=AnomalyKind.SURFACE_CHANGE, detail="top layer moved 0.9 A")]
    return doc


def slab(hkl, energy) -> dict:
    return SlabDoc(
        provenance=Provenance(model_name="test-model", task="PBE", checkpoint_hash="c0ffee"),
        bulk_id="mp-30",
        bulk_formula="Cu",
        miller_index=hkl,
        shift=0.0,
        structure=Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]]),
        min_slab_size=8.0,
        min_vacuum_size=15.0,
        energy=energy,
        surface_energy=0.08 if hkl == (1, 1, 1) else 0.09,
    ).to_document()


def test_db_start_status_stop(tmp_path, new_local_settings):
    settings = new_local_settings(tmp_path)
    assert json.loads(invoke(["db", "status", "--json"], settings).stdout)["running"] is False
    started = invoke(["db", "start"], settings).stdout
    assert "running at mongodb://omni-flows:***@127.0.0.1:" in started  # no password shown

    status = json.loads(invoke(["db", "status", "--json"], settings).stdout)
    password = json.loads(settings.credentials_file.read_text())["password"]
    assert status["uri"] == (
        f"mongodb://omni-flows:{password}@127.0.0.1:{settings.db_port}/?authSource=admin"
    )
    assert status["running"] and status["auth"] and pid_alive(status["pid"])
    check_connection(status["uri"])  # it answers
    client = MongoClient(status["uri"])  # a user's own script, plain pymongo
    client.mine.notes.insert_one({"note": "from my script"})
    assert client.mine.notes.find_one({})["note"] == "from my script"
    client.close()
    assert password not in invoke(["db", "status"], settings).stdout  # the table hides it

    assert "stopped" in invoke(["db", "stop"], settings).stdout
    assert not pid_alive(status["pid"])
    assert json.loads(invoke(["db", "status", "--json"], settings).stdout)["pid"] is None


def test_db_schema_exports_every_collection(settings, tmp_path):
    out = invoke(["db", "schema", "--out", str(tmp_path)], settings).stdout
    files = sorted(p.name for p in tmp_path.glob("*.schema.json"))
    assert files == sorted(f"{name}.schema.json" for name in json_schemas())
    assert "adsorption_best.schema.json" in files
    assert all(str(tmp_path) in line for line in out.split())
    slabs = json.loads(invoke(["db", "schema", "slabs"], settings).stdout)
    assert slabs["title"] == "SlabDoc" and slabs["x-natural-key"][0] == "slab_id"
    result = invoke(["db", "schema", "nope"], settings, ok=False)
    assert isinstance(result.exception, UnknownCollectionError)


def test_query_prints_table_csv_and_json(settings, tmp_path):
    db = connect_database(settings)
    db.slabs.insert_many([slab((1, 1, 1), -40.5), slab((1, 0, 0), -38.25)])
    db.client.close()

    text = invoke(["query", "slabs", "energy<-39", "--format", "csv"], settings).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["slab_id"], float(r["energy"])) for r in rows] == [("mp-30/1,1,1/0.0000", -40.5)]
    assert rows[0]["miller_index"] == "[1, 1, 1]"
    assert "settings_id" in rows[0]  # the summary shows which settings made a result

    args = ["query", "slabs", "--filter", '{"miller_index": [1, 0, 0]}', "--format", "json"]
    docs = json.loads(invoke(args, settings).stdout)
    assert len(docs) == 1 and docs[0]["energy"] == -38.25 and docs[0]["structure"]["lattice"]

    table = invoke(["query", "slabs", "model=test-model", "--sort", "-energy"], settings).stdout
    assert "slabs: 2 documents" in table
    assert table.index("mp-30/1,0,0") < table.index("mp-30/1,1,1")  # -38.25 before -40.5

    out = tmp_path / "surface.csv"
    columns = ["--fields", "slab_id,surface_energy", "--sort", "surface_energy"]
    invoke(["query", "slabs", *columns, "--format", "csv", "-o", str(out)], settings)
    assert out.read_text().splitlines() == [
        "slab_id,surface_energy",
        "\"mp-30/1,1,1/0.0000\",0.08",
        "\"mp-30/1,0,0/0.0000\",0.09",
    ]
    result = invoke(["query", "nope"], settings, ok=False)
    assert isinstance(result.exception, UnknownCollectionError)


def test_query_at_80_columns_keeps_ids_and_numbers_whole(settings):
    """Reference: the stored values themselves. At 80 columns a settings id split over two
    lines, or an energy cut to '-40.…', cannot be copied back (issue 28)."""
    db = connect_database(settings)
    docs = [slab((1, 1, 1), -40.5), slab((1, 0, 0), -38.25)]
    db.slabs.insert_many(docs)
    db.client.close()
    result = runner.invoke(app, ["query", "slabs"], env={**cli_env(settings), "COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in result.stdout
    for doc in docs:
        for whole in (doc["slab_id"], doc["settings_id"], f"{doc['energy']:.4f}",
                      ",".join(map(str, doc["miller_index"]))):
            assert any(whole in line for line in lines), whole


def _leaves(settings: dict, prefix: str = "provenance.settings") -> dict[str, str]:
    """{name: dotted path} of every leaf of a provenance.settings dict."""
    found = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            found.update(_leaves(value, f"{prefix}.{key}"))
        else:
            found[key] = f"{prefix}.{key}"
    return found


def test_every_setting_of_a_screen_has_its_query_name():
    """Reference: the settings the screens themselves store (surface with free energies,
    MOF): each leaf is reachable by its own name (issue 28: tilt was not)."""
    from omni_flows.db_schemas.query import FIELD_ALIASES, FIELD_CHOICES
    from omni_flows.workflows.flows.mof_flow import MOFAdsorptionMaker
    from omni_flows.workflows.flows.surface_flow import SurfaceAdsorptionMaker
    from omni_flows.workflows.thermo.thermochemistry import FreeEnergySettings

    surface = SurfaceAdsorptionMaker(adsorbates=["O"])
    stored = [surface.settings, {"mlip": surface.mlip.identity(),
                                 "free_energy": FreeEnergySettings().key()},
              MOFAdsorptionMaker().settings]
    for settings in stored:
        for name, path in _leaves(settings).items():
            if name in ("model", "task", "checkpoint", "optimizer", "reference"):
                continue  # top-level provenance fields of the same value
            assert path in FIELD_CHOICES.get(name, (FIELD_ALIASES.get(name),)), (name, path)


def test_tilt_0_finds_results_made_before_tilt_was_stored(settings):
    """Reference: the documents inserted here. Results of upright starts keep the settings
    id they had before tilts existed by leaving tilt out; `tilt=0` must still find them."""
    db = connect_database(settings)
    base = slab((1, 1, 1), -40.5)
    old = {**base, "slab_id": "old", "provenance": {**base["provenance"], "settings": {
        "placements": {"seed": 0}}}}
    new = {**base, "slab_id": "tilted", "provenance": {**base["provenance"], "settings": {
        "placements": {"seed": 0, "tilt": 20.0}}}}
    mof = {**base, "slab_id": "mof", "provenance": {**base["provenance"], "settings": {
        "seed": 3}}}
    db.slabs.insert_many([old, new, mof])
    db.client.close()

    def ids(*terms):
        out = invoke(["query", "slabs", *terms, "--fields", "slab_id", "--format", "json"],
                     settings).stdout
        return sorted(d["slab_id"] for d in json.loads(out))

    assert ids("tilt=0") == ["mof", "old"]  # neither stored a tilt: both were upright
    assert ids("tilt=20") == ["tilted"] and ids("tilt!=0") == ["tilted"]
    assert ids("seed=3") == ["mof"] and ids("seed=0") == ["old", "tilted"]


def test_benchmark_lists_are_written_as_the_screen_writes_them(monkeypatch):
    """Reference: the screen's own list reader (split_lists) on the same words: values after
    one option, commas, or the option repeated all give the same list (issue 28)."""
    import omni_flows.cli.benchmark as benchmark
    from omni_flows.accuracy.results import parse_models
    from omni_flows.cli.screen import split_lists
    from omni_flows.settings import load_settings

    seen = {}
    monkeypatch.setattr(benchmark, "run_benchmark", lambda bench, models, task, *rest:
                        seen.update(bench.parameters, models=[
                            m.label for m in parse_models(models, task, load_settings())]))
    screen_style = split_lists(["--bulk", "Pt", "Cu", "--adsorbates", "O,N", "H"])
    for words in (["--metals", "Pt", "Cu", "--adsorbates", "O,N", "H"],
                  ["--metals", "Pt,Cu", "--adsorbates", "O", "--adsorbates", "N,H"]):
        result = runner.invoke(app, ["benchmark", "xu-kitchin", *words, "--model", "7net-0",
                                     "7net-mf-0:PBE", "--coverage", "0.25", "--no-store"])
        assert result.exit_code == 0, result.output
        assert seen["metals"] == screen_style["bulks"] == ["Pt", "Cu"]
        assert seen["adsorbates"] == screen_style["adsorbates"] == ["O", "N", "H"]
        assert seen["models"] == ["7net-0", "7net-mf-0/PBE"]


def test_remote_config_hides_the_database_password(settings):
    """Reference: the credential file the server wrote; `db status` hides it the same way."""
    password = json.loads(settings.credentials_file.read_text())["password"]
    result = invoke(["remote-config"], settings)
    assert password not in result.output
    assert "mongodb://omni-flows:***@" in result.stdout


def test_the_resume_hint_is_a_command_a_shell_reads_back(settings, monkeypatch):
    """Reference: shlex, the shell's own word splitting. An unquoted *OOH in the hint
    was expanded by zsh (issue 28)."""
    import shlex

    from rich.console import Console

    from omni_flows import screening as screen
    from omni_flows.engines import Engine

    words = ["--bulk", "Pt", "--adsorbates", "*OOH", "O"]
    monkeypatch.setattr(sys, "argv", ["omni-flows", "screen", "surfaces", *words])

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(screen, "run_with_progress", interrupted)
    with pytest.raises(KeyboardInterrupt) as hint:
        screen.run_or_submit(Flow([double(1)]), "s", "", Engine.LOCAL, settings,
                             Console(), "screen surfaces")
    command = str(hint.value).split("same command: ")[1]
    assert shlex.split(command) == ["omni-flows", "screen", "surfaces", *words]


def test_user_error_is_one_line_and_exit_code_2():
    code = "import sys; from omni_flows.cli import main; sys.argv[0] = 'omni-flows'; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "query", "slabs", "3<a"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot read query term '3<a'")
    assert "Traceback" not in done.stderr


def test_submit_runs_locally_or_on_fireworks_with_a_worker(settings, tmp_path):
    first = double(1.5)
    flow_file = tmp_path / "flow.json"
    flow_file.write_text(Flow([first, double(first.output)]).to_json())
    assert "ran 2 jobs locally" in invoke(["submit", str(flow_file)], settings).stdout
    assert "ran 0 jobs locally" in invoke(["submit", str(flow_file)], settings).stdout  # resumed

    first = double(10)
    flow_file.write_text(Flow([first, double(first.output)]).to_json())
    submitted = invoke(["submit", str(flow_file), "-e", "fireworks"], settings).stdout
    assert "added 2 fireworks" in submitted
    worker = invoke(["worker", "--launch-dir", str(tmp_path)], settings).stdout
    assert "COMPLETED" in worker and "│ 2 " in worker

    args = ["query", "outputs", "name=double", "--format", "json", "--sort", "output"]
    outputs = json.loads(invoke(args, settings).stdout)
    assert [d["output"] for d in outputs] == [3.0, 6.0, 20.0, 40.0]

    (tmp_path / "bad.json").write_text('{"not": "a flow"}')
    result = invoke(["submit", str(tmp_path / "bad.json")], settings, ok=False)
    assert isinstance(result.exception, InvalidFlowError)
    assert "not a jobflow Flow" in str(result.exception)


def test_db_publish_files_results_written_by_a_plain_jobflow_store(settings):
    ours = job_store(settings)
    plain = JobStore(ours.docs_store, ours.additional_stores)  # as jobflow-remote builds it
    jobs = [relax_slab((1, 1, 1), -40.5), relax_slab((1, 0, 0), -38.25, reconstructed=True)]
    run_local(Flow(jobs), store=plain)
    db = connect_database(settings)
    assert db.outputs.count_documents({}) == 2 and db.slabs.count_documents({}) == 0

    assert "2 result documents filed" in invoke(["db", "publish"], settings).stdout
    assert sorted(d["energy"] for d in db.slabs.find({})) == [-40.5, -38.25]
    invoke(["db", "publish"], settings)  # again: updates, no copies
    assert db.slabs.count_documents({}) == 2

    args = ["query", "slabs", "anomalies.kind=surface_change", "--format", "json"]
    (flagged,) = json.loads(invoke(args, settings).stdout)
    assert flagged["slab_id"] == "mp-30/1,0,0/0.0000" and flagged["valid"] is False
    assert flagged["anomalies"] == [{"kind": "surface_change", "detail": "top layer moved 0.9 A"}]
    db.client.close()


COMMAND = """
import sys, time
import typer
from omni_flows.cli import run
from omni_flows.errors import EngineError

app = typer.Typer()

@app.command()
def act(what: str):
    if what == "wait":
        print("ready", flush=True)
        time.sleep(60)
    if what == "resume":
        try:
            print("ready", flush=True)
            time.sleep(60)
        except KeyboardInterrupt:
            raise KeyboardInterrupt("run the same command again to resume") from None
    if what == "bug":
        raise ValueError("a bug")
    if what == "mistake":
        raise EngineError("no such engine 'x'; use local")

run(app)
"""


def _command(what: str, interrupt: bool = False) -> subprocess.CompletedProcess:
    # SIGINT as in a terminal: a shell's background job (nohup ... &) starts with it ignored,
    # and Python then keeps ignoring it
    proc = subprocess.Popen([sys.executable, "-c", COMMAND, what], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if interrupt:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_ctrl_c_says_so_and_exits_130_a_bug_keeps_its_traceback():
    """Reference: the shell's convention, 128 + SIGINT (2) = 130; click's usage errors exit 2."""
    done = _command("wait", interrupt=True)
    assert done.returncode == 130 and done.stderr == "interrupted (Ctrl-C)\n"
    done = _command("resume", interrupt=True)
    assert done.returncode == 130
    assert done.stderr == "interrupted (Ctrl-C): run the same command again to resume\n"
    done = _command("mistake")
    assert done.returncode == 2 and done.stderr == "error: no such engine 'x'; use local\n"
    done = _command("bug")
    assert done.returncode == 1 and "Traceback" in done.stderr and "ValueError: a bug" in done.stderr


def test_ctrl_c_while_the_command_loads_is_not_a_traceback():
    """Reference: the shell's 128 + SIGINT. The CLI's modules take seconds to load (torch):
    a Ctrl-C then printed a traceback (issue 28)."""
    code = ("import sys; sys.argv[0] = 'omni-flows'; print('ready', flush=True); "
            "from omni_flows.cli import main; main()")
    proc = subprocess.Popen([sys.executable, "-c", code, "status", "x"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline() == "ready\n"
    time.sleep(0.2)  # past the first lines of omni_flows/__init__.py; the CLI loads for seconds
    proc.send_signal(signal.SIGINT)  # while `from omni_flows.cli import main` runs
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "interrupted (Ctrl-C)\n"
