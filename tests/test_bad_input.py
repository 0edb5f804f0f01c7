"""The bad-input catalogue: every user mistake the CLI refuses, with the message it must give.

Each entry runs the real entry point (``omni_flows.cli.main``, what the ``omni-flows``
script calls) and must exit with code 2, print a message containing its fragment,
and print no traceback. Reference: the CLI's contract (README: "a user's mistake
exits 2 with a message naming the value and what to do").

One line per entry, at the end of this file::

    Bad("model info nope", "is not a known model name"),
    Bad("train {tmp}/c.yaml", "optim.lr", files={"c.yaml": "..."}, env={...}),

``args`` are split like a shell line. ``{tmp}`` is the entry's own folder (also its
working directory), ``{data}`` the shared DFT data folder, ``{uri}`` the session
database server's URI (with its credential); all are filled in args, env and file
texts. ``files`` maps names to a text, or to a function that writes the file at the
path it is given. ``absent`` are fragments that must not appear (default:
``Traceback``). ``when`` is False to skip an entry on this machine (say why in ``why``).

The entries run in one helper process that imports the CLI and torch once and forks
a child per entry: each entry is a fresh process with its own environment, nothing
it changes (settings, allocator) outlives it, and the catalogue costs one import.
"""

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch

from conftest import free_port

DATA = Path(os.environ.get("OMNI_FLOWS_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data"))
HAS_CUDA = torch.cuda.is_available()
HAS_MPS = torch.backends.mps.is_available()
ENTRY_TIMEOUT_S = 120


@dataclass(frozen=True)
class Bad:
    """One bad input: the command line, and a fragment of the message it must print."""

    args: str
    message: str
    env: dict[str, str | None] = field(default_factory=dict)
    files: dict[str, str | Callable[[Path], None]] = field(default_factory=dict)
    absent: tuple[str, ...] = ("Traceback",)
    when: bool = True
    why: str = ""

    @property
    def id(self) -> str:
        return f"{self.args} -> {self.message}"


# runs in the helper process: reads [{argv, env, cwd}] on stdin, prints [{code, out, err}]
_RUNNER = r"""
import importlib, json, os, sys, time, traceback
# imported once, before the forks (imports only: no state a command could change)
for name in ("torch", "omni_flows.model", "omni_flows.stores", "omni_flows.workflows",
             "omni_flows.engines.local", "omni_flows.accuracy.xu_kitchin"):
    importlib.import_module(name)
from omni_flows.cli import main

def run(entry, timeout_s):
    out_path, err_path = entry["cwd"] + "/.stdout", entry["cwd"] + "/.stderr"
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: one CLI run
        code = 1
        try:
            os.chdir(entry["cwd"])
            for key, value in entry["env"].items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            for fd, path in ((1, out_path), (2, err_path)):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = ["omni-flows", *entry["argv"]]
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()  # as the interpreter would, then exit 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            code = "timed out"
            break
        time.sleep(0.02)
    read = lambda p: open(p, errors="replace").read() if os.path.exists(p) else ""
    return {"code": code, "out": read(out_path), "err": read(err_path),
            "seconds": round(time.monotonic() - start, 2)}

entries, timeout_s = json.load(sys.stdin)
print(json.dumps([run(entry, timeout_s) for entry in entries]))
"""


def _fill(text: str, tmp: Path, uri: str = "") -> str:
    return text.replace("{tmp}", str(tmp)).replace("{data}", str(DATA)).replace("{uri}", uri)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, db_server) -> dict[str, dict]:
    """Every runnable entry, run once: {entry id: {code, out, err}}."""
    root = tmp_path_factory.mktemp("bad-input")
    base_env = {
        "OMNI_FLOWS_HOME": str(root / "home"),  # one home: the model cache is shared
        "OMNI_FLOWS_DB_PORT": str(free_port()),  # no local server runs there
        "OMNI_FLOWS_MONGODB_URI": None,
        "OMNI_FLOWS_CONFIG": None,
        "OMNI_FLOWS_DEVICE": None,
        "COLUMNS": "200",
    }
    runnable = [bad for bad in CATALOGUE if bad.when]
    entries = []
    for i, bad in enumerate(runnable):
        tmp = root / f"entry{i}"
        tmp.mkdir()
        for name, content in bad.files.items():
            if callable(content):
                content(tmp / name)
            else:
                (tmp / name).write_text(_fill(content, tmp, db_server.uri))
        env = {**base_env, **{k: None if v is None else _fill(v, tmp, db_server.uri)
                              for k, v in bad.env.items()}}
        argv = [_fill(arg, tmp, db_server.uri) for arg in shlex.split(bad.args)]
        entries.append({"argv": argv, "env": env, "cwd": str(tmp)})
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps([entries, ENTRY_TIMEOUT_S]),
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    slowest = sorted(zip((r["seconds"] for r in results), (b.id for b in runnable)))[-5:]
    print("slowest entries (s):", slowest)
    return {bad.id: result for bad, result in zip(runnable, results)}


def pytest_generate_tests(metafunc):
    """Parametrize over the catalogue, which is defined at the end of the file."""
    if "bad" in metafunc.fixturenames:
        params = [
            pytest.param(bad, id=bad.id, marks=pytest.mark.skipif(not bad.when, reason=bad.why))
            for bad in CATALOGUE
        ]
        metafunc.parametrize("bad", params)


def test_bad_input_exits_2_with_its_message(bad, outcomes):
    result = outcomes[bad.id]
    said = result["err"] + result["out"]
    assert result["code"] == 2, said
    assert bad.message in said
    for fragment in bad.absent:
        assert fragment not in said


def test_catalogue_ids_are_unique():
    ids = [bad.id for bad in CATALOGUE]
    assert len(ids) == len(set(ids))


# --- inputs the entries read -------------------------------------------------


def unsafe_checkpoint(path: Path) -> None:
    """A SevenNet-style .pth whose pickle calls a function when loaded unsafely."""

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo unsafe",))

    torch.save({"config": {}, "model_state_dict": {}, "extra": Payload()}, path)


TRAIN_DATA = "data: {train: [{path: {tmp}/train.extxyz, task: PBE}]}\n"


def train_config(extra: str) -> dict[str, str]:
    """A training configuration with ``extra`` YAML lines (the data file need not exist)."""
    return {"config.yaml": TRAIN_DATA + "model: {checkpoint: 7net-mf-0}\n" + extra}


def dft_train_config(query: str, task: str = "PBE", extra: str = "",
                     collection: str = "dft_calculations") -> dict[str, str]:
    """A fine-tune of 7net-mf-0 on stored DFT single points selected by ``query``."""
    return {"config.yaml": (
        f"data: {{train: [{{source: mongodb, collection: {collection}, filter: {query}, "
        f"task: {task}{extra}}}]}}\nmodel: {{checkpoint: 7net-mf-0}}\n")}


UNREACHABLE = {"OMNI_FLOWS_MONGODB_URI": "mongodb://127.0.0.1:1/"}
NO_CUDA = "this machine has a CUDA GPU"


SCREEN = "screen surfaces --bulk Pt --facets 111 --adsorbates O"


def close_atoms_cif(path: Path) -> None:
    """fcc Pt with a fifth atom 0.01 A from the first (a duplicated site)."""
    from pymatgen.core import Lattice, Structure

    coords = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5], [0.01 / 3.92, 0, 0]]
    Structure(Lattice.cubic(3.92), ["Pt"] * 5, coords).to(filename=str(path))


# a CIF cut off after its first loop header: ASE and pymatgen both fail inside their parsers
TRUNCATED_CIF = "data_x\n_cell_length_a 3.92\nloop_\n_atom_site_label\n"


# --- the catalogue -------------------------------------------------------------------

CATALOGUE = [
    # database
    Bad("db status", "cannot reach MongoDB at mongodb://127.0.0.1:1/", env=UNREACHABLE),
    Bad("db status --json", "is it running", env=UNREACHABLE),
    Bad("query slabs", "cannot reach MongoDB at mongodb://127.0.0.1:1/", env=UNREACHABLE),
    Bad("db publish", "cannot reach MongoDB", env=UNREACHABLE),
    Bad("db start", "a MongoDB URI is configured", env=UNREACHABLE),
    Bad("db schema nope", "no result collection 'nope'"),
    Bad("query slabs 3<a", "cannot read query term '3<a'"),
    # settings (environment, config file)
    Bad("db status", "db_port = 'abc'", env={"OMNI_FLOWS_DB_PORT": "abc"}),
    Bad("db start", "device = 'gpu'", env={"OMNI_FLOWS_DEVICE": "gpu"}),
    Bad("db start", "OMNI_FLOWS_CLUSTER__MAX_JOBS", env={"OMNI_FLOWS_CLUSTER__MAX_JOBS": "x"}),
    Bad("db start", "mongo_uri = 'mongodb://x/': no such setting",
        files={"config.yaml": "mongo_uri: mongodb://x/\n"},
        env={"OMNI_FLOWS_CONFIG": "{tmp}/config.yaml"}),
    # engines
    Bad("submit {tmp}/missing.json", "cannot read flow file"),
    Bad("submit {tmp}/flow.json", "is not a serialized jobflow Flow", files={"flow.json": "{"}),
    # models and checkpoints
    Bad("model info nope", "'nope' is not a known model name"),
    Bad("model info {tmp}/missing.safetensors", "file does not exist"),
    Bad("model info {tmp}/bad.pth", "refers to the Python object 'posix.system'",
        files={"bad.pth": unsafe_checkpoint}, absent=("Traceback", "weights_only", "unsafe\n")),
    # training
    Bad("train {tmp}/missing.yaml", "does not exist"),
    Bad("train {tmp}/config.yaml", "optim.lr", files=train_config("optim: {lr: -0.001}\n")),
    Bad("train {tmp}/config.yaml", "epochs", files=train_config("epochs: 0\n")),
    Bad("train {tmp}/config.yaml", "universal_lr_ratio",
        files=train_config("optim: {universal_lr_ratio: 0}\n")),
    Bad("train {tmp}/config.yaml", "optim.weight_decay",
        files=train_config("optim: {weight_decay: -1}\n")),
    Bad("train {tmp}/config.yaml", "model.adapter_rank -1",
        files={"config.yaml": TRAIN_DATA + "model: {checkpoint: 7net-mf-0, adapter_rank: -1}\n"}),
    Bad("train {tmp}/config.yaml", "model.adapter_layers",
        files={"config.yaml": TRAIN_DATA
               + "model: {checkpoint: 7net-mf-0, adapter_rank: 8, adapter_layers: 3}\n"}),
    Bad("train {tmp}/config.yaml", "device 'cuda'", files=train_config("device: cuda\n"),
        when=not HAS_CUDA, why=NO_CUDA),
    # training on DFT results (dft_calculations): refused before the database is reached
    Bad("train {tmp}/config.yaml", "name its DFT level", env=UNREACHABLE,
        files=dft_train_config("{}")),
    Bad("train {tmp}/config.yaml", "task 'gpaw_pbe' is not a task of 7net-mf-0", env=UNREACHABLE,
        files=dft_train_config("{dft_level: 'GPAW PBE/PW300/k3x3x1'}", task="gpaw_pbe")),
    Bad("train {tmp}/config.yaml", "write 'slab_id|adsorbate'", env=UNREACHABLE,
        files=dft_train_config("{settings_id: abc}", extra=", hold_out: [O]")),
    Bad("train {tmp}/config.yaml", "use them with source: mongodb, collection: dft_calculations",
        files={"config.yaml": "data: {train: [{path: x.traj, task: PBE, hold_out: ['*|O']}]}\n"
               "model: {checkpoint: 7net-mf-0}\n"}),
    Bad("train {tmp}/config.yaml", "collection 'dft_validation' cannot be read for training",
        env=UNREACHABLE, files=dft_train_config("{}", collection="dft_validation")),
    # devices
    Bad("benchmark xu-kitchin --data {data}/xu_kitchin_2014 --device cuda --model 7net-0",
        "no CUDA GPU", when=not HAS_CUDA, why=NO_CUDA),
    Bad("benchmark xu-kitchin --data {data}/xu_kitchin_2014 --device mps --model 7net-0",
        "MPS is not available", when=not HAS_MPS, why="this machine has MPS"),
    Bad("benchmark xu-kitchin --data {data}/xu_kitchin_2014 --device tpu --model 7net-0",
        "unknown device 'tpu'"),
    # --- screen / settings (workflows) ---
    Bad(f"{SCREEN} --max-placements 0", "--max-placements must be at least 1, not 0"),
    Bad(f"{SCREEN} --max-placements -1", "--max-placements must be at least 1, not -1"),
    Bad(f"{SCREEN} --n-random -2", "--n-random must be 0 or more"),
    Bad(f"{SCREEN} --fmax 0", "fmax must be > 0 eV/A, not 0.0"),
    Bad(f"{SCREEN} --steps 0", "steps must be at least 1, not 0"),
    Bad(f"{SCREEN} --layers 2 --fixed-layers 2", "fixes every atom of the slab"),
    Bad(f"{SCREEN} --optimizer LBFGS", "unknown optimizer 'LBFGS': use one of BFGS, FIRE"),
    Bad(f"{SCREEN} --backend fast", "unknown backend 'fast'"),
    Bad(f"{SCREEN} --task XC99", "unknown task 'XC99'; model 7net-mf-0 has tasks"),
    Bad(f"{SCREEN} --model 7net-0 --task PBE", "model 7net-0 is single-task"),
    Bad(f"{SCREEN} --reference atoms", "--reference must be gas_molecules or oc20_elemental"),
    Bad(f"{SCREEN} --device cuda", "no CUDA GPU", when=not HAS_CUDA, why=NO_CUDA),
    Bad(f"{SCREEN} --device gpu", "unknown device 'gpu'"),
    Bad(f"{SCREEN} --terminations some", "--terminations must be first or all"),
    Bad(f"{SCREEN} --tilt 120", "--tilt is a cone half-angle in degrees, 0 to 90"),
    Bad(f"{SCREEN} --coverage 0", "--coverage is adsorbates per cell: a whole number"),
    Bad(f"{SCREEN} --supercell 1x1 --coverage 2", "--coverage 2: the Pt slab's cell holds 1"),
    Bad(f"{SCREEN} --supercell 2by2", "--supercell '2by2': write NxM, e.g. 2x2"),
    Bad(f"{SCREEN} --free-energy --temperature 0", "--temperature (0.0 K) and --pressure"),
    Bad(f"{SCREEN} --uncertainty", "--uncertainty: model 7net-mf-0 has no committee for task "
        "'PBE' (tasks with one: none)"),
    Bad("screen surfaces --bulk {tmp}/Pt.cif --adsorbates O", "Pt.cif not found"),
    Bad("screen surfaces --bulk {tmp}/close.cif --adsorbates O", "atoms 0.01 A apart",
        files={"close.cif": close_atoms_cif}),
    Bad("screen surfaces --bulk Pt --adsorbates {tmp}/NO.xyz:0", "adsorbate file",
        absent=("Traceback",)),
    Bad("screen surfaces --bulk Pt --adsorbates {tmp}/NO.xyz:5", "binding atom index '5'",
        files={"NO.xyz": "2\n\nN 0 0 0\nO 0 0 1.15\n"}),
    Bad("screen mofs --cif {tmp}/x.cif --guests CO2 --fmax -1", "fmax must be > 0"),
    Bad("screen mofs --cif {tmp}/x.cif --guests CO2 --placements 0",
        "--placements must be at least 1, not 0"),
    Bad(f"{SCREEN} --batch-atoms -1", "--batch-atoms must be 0 (one job per slab and adsorbate)"),
    Bad(f"{SCREEN} --engine slurm",
        "--engine must be one of local, fireworks, jobflow-remote, not 'slurm'"),
    Bad("screen mofs --cif {tmp}/x.cif --guests CO2 --engine cloud",
        "--engine must be one of local, fireworks, jobflow-remote, not 'cloud'"),
    Bad("query adsorption_best adsorption_energy<<abc", "< needs a number",
        env=UNREACHABLE),
    # messages that point at the user's file, not at a parser's insides (issue 28)
    Bad("screen surfaces --bulk Pt --adsorbates {tmp}/corrupt.cif:9", "is not a valid CIF file",
        files={"corrupt.cif": TRUNCATED_CIF}),
    Bad("model info {tmp}/fake.pth", "is not a PyTorch checkpoint",
        files={"fake.pth": "not a checkpoint\n"}, absent=("Traceback", "Python object")),
    Bad("screen surfaces --bulk {tmp}/co.xyz --adsorbates O", "without a periodic cell",
        files={"co.xyz": "2\n\nC 0 0 0\nO 0 0 1.13\n"}, absent=("Traceback", "extension")),
    Bad("screen mofs --cif {tmp}/mof.cif --guests CO2", "mof.cif: not a readable CIF",
        files={"mof.cif": TRUNCATED_CIF}, absent=("Traceback", "Warning")),
    Bad("screen surfaces --bulk Pt --adsorbates OOH", "did you mean '*OOH'"),
    # where results are written: checked before any work (issue 28)
    Bad("query adsorption_best --format csv -o {tmp}/missing/x.csv",
        "/missing does not exist; create it", env=UNREACHABLE),
    Bad("db schema --out {tmp}/a-file/schemas", "a-file/schemas: cannot write there",
        files={"a-file": "not a folder"}),
    Bad(f"{SCREEN} --out {{tmp}}/a-file/results", "a-file/results: cannot write there",
        files={"a-file": "not a folder"}),
    Bad("query adsorption_best --limit -1", "--limit must be 0 (all documents) or more, not -1",
        env=UNREACHABLE),
    Bad("query adsorption_best 'adsorbate~('", "Regular expression is invalid",
        env={"OMNI_FLOWS_MONGODB_URI": "{uri}"}),
    Bad("report che --reaction orr --solvation wet", "--solvation 'wet': use none, a preset",
        env=UNREACHABLE),
    Bad("report che --reaction orr --solvation CO=-0.1", "'CO' is not an intermediate of ORR",
        env=UNREACHABLE),
    Bad("report che --reaction orr --solvation OH=abc", "OH='abc' is not a number of eV",
        env=UNREACHABLE),
    Bad("report che --reaction orr --solvation OH=nan", "OH='nan' is not a number of eV",
        env=UNREACHABLE),
    Bad("validate --task NOPE --device cpu", "unknown task 'NOPE'; model 7net-mf-0 has tasks",
        env=UNREACHABLE),
    Bad("validate --dft pyscf --grid-level 10 --device cpu", "grid_level must be 0-9",
        env=UNREACHABLE),
    Bad("validate --dft pyscf --cluster-radius 0 --device cpu",
        "cluster radius must be > 0 A", env=UNREACHABLE),
    Bad("validate --select best --device cpu", "--select 'best': use lowest (lowest E_ads "
        "first) or uncertain (largest sigma first)", env=UNREACHABLE),
    Bad("validate --select uncertain --top 0", "--top must be at least 1, not 0",
        env=UNREACHABLE),
    Bad("validate --dft gpaw --select uncertain --top 2", "--select uncertain --dft gpaw: give "
        "--systems K", env=UNREACHABLE),
]
