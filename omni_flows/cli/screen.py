"""``omni-flows screen surfaces|mofs``: one Flow for a whole campaign, run, stored and reported.

``--engine fireworks|jobflow-remote`` queues the campaign's Flow on that engine
instead of running it here (``omni-flows status`` follows it; the same command
without ``--engine`` then prints the table from the store, recomputing nothing).

Lists are written as on the issue: ``--bulk Pt Cu --facets 111 100 --adsorbates CO O H``
or ``--cif A.cif B.cif --guests CO2 H2O`` (each option takes every value up to the
next option; repeating it works too).
"""

import logging
import re
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from omni_flows.engines.local import run_local
from omni_flows.model.errors import OmniFlowsError
from omni_flows.report import heatmap, ranked_rows, ranked_table, write_csv
from omni_flows.settings import load_settings
from omni_flows.stores import job_store

app = typer.Typer(help="Screening campaigns: adsorbates on surfaces, guests in MOFs.",
                  no_args_is_help=True)

LIST_OPTIONS = {"--bulk": "bulks", "--facets": "facets", "--adsorbates": "adsorbates"}
MOF_LIST_OPTIONS = {"--cif": "cifs", "--guests": "guests"}


class ScreenInputError(OmniFlowsError, ValueError):
    """Command-line input of a screen that cannot be run."""


def split_lists(
    tokens: list[str], options: dict[str, str] = LIST_OPTIONS, command: str = "surfaces"
) -> dict[str, list[str]]:
    """``['--bulk', 'Pt', 'Cu', '--facets', '111']`` -> ``{'bulks': ['Pt', 'Cu'], ...}``."""
    found: dict[str, list[str]] = {name: [] for name in options.values()}
    current = None
    for token in tokens:
        if token in options:
            current = options[token]
        elif token.startswith("--"):
            raise ScreenInputError(
                f"unknown option {token}; see `omni-flows screen {command} --help`"
            )
        elif current is None:
            raise ScreenInputError(f"{token!r} follows no option: write "
                                   f"{', '.join(options)} before the values")
        else:
            found[current] += [v for v in token.split(",") if v]
    return found


def _watch(store, uuids: list[str], progress: Progress, task, stop: threading.Event) -> None:
    """Advance the bar as job outputs arrive in the store (the local engine has no callback)."""
    from omni_flows.results import jobs_done

    while not stop.wait(1.0):
        try:
            done = jobs_done(store, uuids)
        except Exception:  # a transient read error only delays the bar
            continue
        progress.update(task, completed=done)


def run_with_progress(flow, settings, console: Console) -> None:
    store = job_store(settings)
    store.connect()
    uuids = [job.uuid for job, _ in flow.iterflow()]
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("jobs", total=len(uuids))
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(store, uuids, progress, task, stop),
                                   daemon=True)
        watcher.start()
        try:
            run_local(flow, settings=settings, store=store)
        finally:
            stop.set()
            watcher.join()
        progress.update(task, completed=len(uuids))


# the options both screen commands share: one definition each
MODEL = typer.Option(None, help="MLIP name or checkpoint (default: settings, 7net-mf-0)")
TASK = typer.Option(None, help="task / functional of a multi-task model (default: settings' "
                    "task, PBE; none for a single-task model such as 7net-0)")
DEVICE = typer.Option(None, help="auto, cpu, cuda, cuda:N (default: settings)")
BACKEND = typer.Option("e3nn", help="kernels: e3nn, compile, cueq (same numbers)")
OPTIMIZER = typer.Option("BFGS", help="relaxation optimizer: BFGS or FIRE")
FMAX = typer.Option(0.05, help="eV/A: largest force on a free atom at the end (> 0)")
STEPS = typer.Option(300, help="optimizer step limit of every relaxation (>= 1)")
SEED = typer.Option(0, help="seed of the random placements")
OUT = typer.Option(Path("screen-results"), help="folder of the table and heatmap; files are "
                   "named after the campaign's settings id")
ENGINE = typer.Option("local", help="local: run here; fireworks or jobflow-remote: queue the "
                      "campaign there without running it (follow with `omni-flows status`)")


def check_engine(engine: str):
    """The engine named by ``--engine``, or a user error naming the choices."""
    from omni_flows.engines import Engine

    try:
        return Engine(engine)
    except ValueError:
        choices = ", ".join(e.value for e in Engine)
        raise ScreenInputError(f"--engine must be one of {choices}, not {engine!r}") from None


def submit_campaign(flow, engine, settings, console: Console, command: str) -> None:
    """Queue ``flow`` on ``engine`` (nothing runs here) and say how to follow it."""
    from omni_flows.engines.submit import submit_flow

    console.print(submit_flow(flow, engine, settings))
    console.print(f"once its jobs are done, the same `omni-flows {command}` command without "
                  "--engine prints the table from the database (nothing is computed again)")


def mlip_from_options(model, task, device, backend, optimizer, fmax, steps):
    """The MLIP settings of a screen, checked here (model header, registries, ranges)."""
    from omni_flows.model.header import checkpoint_header
    from omni_flows.workflows.settings import MLIPSettings

    settings = load_settings()
    model = model or settings.model
    if task is None:  # the configured task applies to multi-task models only
        task = settings.task if checkpoint_header(model).tasks else None
    return MLIPSettings(model=model, task=task, device=device or settings.device,
                        backend=backend, optimizer=optimizer, fmax=fmax, steps=steps)


def _file_stem(kind: str, settings_id: str, systems: list[str]) -> str:
    """``surfaces-<settings id>-<systems>``: one campaign's files never overwrite another's."""
    from omni_flows.db_schemas.fingerprint import content_hash

    names = "-".join(re.sub(r"[^A-Za-z0-9]+", "", s) for s in systems)
    if len(names) > 40:
        names = content_hash(systems)[:8]
    return f"{kind}-{settings_id}-{names}"


@contextmanager
def quiet_third_parties():
    """jobflow's "Some jobs are not connected" and FutureWarnings, monty's chdir notice and
    pymatgen's CIF notes say nothing to a user of the screen: keep them out of its output."""
    with warnings.catch_warnings():
        for module in ("jobflow", "monty", "pymatgen", "maggma"):
            warnings.filterwarnings("ignore", module=module)
        warnings.filterwarnings("ignore", message="Some jobs are not connected")
        warnings.filterwarnings("ignore", message=".*contextlib.chdir.*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        logging.getLogger("jobflow").setLevel(logging.WARNING)
        warnings.showwarning = _show_once(warnings.showwarning)
        yield


def _show_once(default):
    """Our own warnings (a slab under the slab rules, ...) as one line each, once."""
    from omni_flows.workflows.slabs import SlabWarning

    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, SlabWarning):
            return default(message, category, filename, lineno, file, line)
        if str(message) not in seen:
            seen.add(str(message))
            Console(stderr=True).print(f"[yellow]note[/]: {message}")

    return show


def run_campaign(flow, settings, console: Console, settings_id: str, resume: str) -> None:
    """Run ``flow`` with a progress bar; Ctrl-C says what was kept and how to resume."""
    try:
        run_with_progress(flow, settings, console)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"screen {settings_id} interrupted; every finished job is stored. Resume with the "
            f"same command: {resume}") from None


@app.command(
    "surfaces",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def surfaces(
    lists: list[str] = typer.Argument(
        None, metavar="--bulk B... --facets HKL... --adsorbates A...",
        help="bulks (element or structure file), facets (111, 1-10, 2,1,1), adsorbates "
        "(built-in names, or FILE:BINDING_INDEX: a molecule from a file is referenced to "
        "itself in the gas phase)",
    ),
    n_random: int | None = typer.Option(
        None, help="random placements per adsorbate and slab, after the distinct "
        "ontop/bridge/hollow sites [default: the Maker's, 2]"),
    max_placements: int | None = typer.Option(None, help="cap on placements per adsorbate "
                                              "and slab (>= 1)"),
    coverage: int = typer.Option(
        1, help="adsorbates per cell, placed as far apart as the cell allows; energies are "
        "per adsorbate and the documents give the coverage in ML too"),
    tilt: float | None = typer.Option(
        None, help="degrees: tip each molecule's axis at random within this cone of the "
        "surface normal; 0: upright [default: 20, AdsorbML's]"),
    layers: int = typer.Option(4, help="slab layers"),
    fixed_layers: int = typer.Option(2, help="bottom layers held fixed (< --layers)"),
    supercell: str | None = typer.Option(None, help="lateral cell, e.g. 2x2 (default: >= 8 A)"),
    terminations: str = typer.Option(
        "first", help="first: one termination per facet (pymatgen's first); all: every "
        "distinct termination (alloys, intermetallics, oxides)"),
    reference: str = typer.Option(
        "gas_molecules", help="gas_molecules: relaxed gas molecules (the adsorbate's own when "
        "it is a stable gas or a file, else H2, H2O, N2, CO combinations such as O = H2O - H2); "
        "oc20_elemental (formerly 'atomic'): OC20's per-element energies from H2, H2O, N2, CO, "
        "not isolated atoms"),
    model: str | None = MODEL,
    task: str | None = TASK,
    device: str | None = DEVICE,
    backend: str = BACKEND,
    optimizer: str = OPTIMIZER,
    fmax: float = FMAX,
    steps: int = STEPS,
    seed: int = SEED,
    out: Path = OUT,
    free_energy: bool = typer.Option(
        False, "--free-energy", help="vibrate each best placement's adsorbate and its gas "
        "references with the MLIP: store zpe, free_energy_correction, adsorption_free_energy"),
    temperature: float = typer.Option(298.15, help="K, of --free-energy (> 0)"),
    pressure: float = typer.Option(1.0, help="bar, gas references of --free-energy (> 0; "
                                   "water at 0.035 bar, the CHE convention)"),
    batch_atoms: int | None = typer.Option(
        None, help="atoms of placements per relaxation job, the placements of several slabs "
        "and adsorbates relaxed together (default 1024; 0: one job per slab and adsorbate; "
        "the results are the same either way)"),
    engine: str = ENGINE,
) -> None:
    """Screen adsorbates on surfaces: build one Flow, run it locally (or queue it on
    --engine), store, rank, plot."""
    from omni_flows.db_schemas import ReferenceScheme
    from omni_flows.workflows.campaign import SurfaceCampaign
    from omni_flows.workflows.placements import PlacementSettings
    from omni_flows.workflows.slabs import SlabSpec

    console = Console()
    engine = check_engine(engine)
    found = split_lists(lists or [])
    if not found["bulks"] or not found["adsorbates"]:
        raise ScreenInputError("give at least one --bulk and one --adsorbates")
    try:
        scheme = ReferenceScheme(reference)
    except ValueError:
        raise ScreenInputError(f"--reference must be gas_molecules or oc20_elemental, not "
                               f"{reference!r}") from None
    cell = None
    if supercell:
        try:
            cell = tuple(int(x) for x in supercell.lower().split("x"))
            assert len(cell) == 2 and min(cell) > 0
        except (ValueError, AssertionError):
            raise ScreenInputError(f"--supercell {supercell!r}: write NxM, e.g. 2x2") from None
    if temperature <= 0 or pressure <= 0:
        raise ScreenInputError(f"--temperature ({temperature} K) and --pressure ({pressure} "
                               "bar) must be positive")
    if terminations not in ("first", "all"):
        raise ScreenInputError(f"--terminations must be first or all, not {terminations!r}")
    from omni_flows.workflows.thermochemistry import FreeEnergySettings

    thermo = FreeEnergySettings(temperature=temperature, pressure=pressure * 1e5) \
        if free_energy else None
    # every input checked here and in make(): nothing runs before
    campaign = SurfaceCampaign(
        bulks=found["bulks"], facets=found["facets"] or ["111"], adsorbates=found["adsorbates"],
        mlip=mlip_from_options(model, task, device, backend, optimizer, fmax, steps),
        slab_spec=SlabSpec(n_layers=layers, n_fixed_layers=fixed_layers, supercell=cell),
        placements=PlacementSettings(
            max_placements=max_placements, seed=seed, coverage=coverage,
            **({} if n_random is None else {"n_random": n_random}),
            **({} if tilt is None else {"tilt": tilt})),
        reference=scheme, free_energy=thermo, all_terminations=terminations == "all",
        **({} if batch_atoms is None else {"batch_atoms": batch_atoms}),
    )
    settings = load_settings()
    start = time.perf_counter()
    with quiet_third_parties():
        flow = campaign.make()
        sid = campaign.settings_id
        n_jobs = sum(1 for _ in flow.iterflow())
        mlip = campaign.mlip
        console.print(f"[bold]{flow.name}[/]: {n_jobs} jobs, settings {sid} (model "
                      f"{mlip.model}{'/' + mlip.task if mlip.task else ''}, fmax {mlip.fmax}, "
                      f"{scheme.value}), database {settings.database}")
        if engine.value != "local":
            submit_campaign(flow, engine, settings, console, "screen surfaces")
            return
        run_campaign(flow, settings, console, sid, "omni-flows screen surfaces "
                     + " ".join(sys.argv[3:] if len(sys.argv) > 3 else []))
        docs = campaign.select(best_documents(settings, sid))
    rows = ranked_rows(docs)
    if not rows:
        raise ScreenInputError(f"no results of settings {sid} in database {settings.database} "
                               "after the run; see `omni-flows query adsorption_best "
                               f"settings_id={sid}`")
    console.print(ranked_table(rows, title=f"best valid placements, settings {sid}"))
    out.mkdir(parents=True, exist_ok=True)
    stem = _file_stem("surfaces", sid, [*found["bulks"], *(found["facets"] or ["111"]),
                                        *found["adsorbates"]])
    csv_path = write_csv(rows, out / f"{stem}.csv")
    png = heatmap(rows, out / f"{stem}.png", title=f"E_ads (eV), {mlip.model}"
                  f"{'/' + mlip.task if mlip.task else ''}, settings {sid}")
    console.print(f"table {csv_path}, heatmap {png} ({time.perf_counter() - start:.0f} s)")


def best_documents(settings, settings_id: str) -> list[dict]:
    """The stored best placements of one settings id."""
    from omni_flows.results import best
    from omni_flows.stores import connect_database

    return best(connect_database(settings), settings_id)


def mof_documents(settings, settings_id: str, frameworks: list[str], guests: list[str]):
    """The stored placement documents of a MOF campaign's settings, frameworks and guests."""
    from omni_flows.results import mof_results
    from omni_flows.stores import connect_database

    return mof_results(connect_database(settings), settings_id, frameworks, guests)


@app.command(
    "mofs",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def mofs(
    lists: list[str] = typer.Argument(
        None, metavar="--cif FILE... --guests G...",
        help="framework CIF files (the file name is the framework id) and guest molecules "
        "(CO2, H2O, N2, CH4, ...)",
    ),
    placements: int = typer.Option(3, help="random guest placements per framework and guest"),
    d3: bool = typer.Option(True, "--d3/--no-d3", help="add D3(BJ) of the task's functional "
                            "(E_ads without D3 is stored as well)"),
    model: str | None = MODEL,
    task: str | None = TASK,
    device: str | None = DEVICE,
    backend: str = BACKEND,
    optimizer: str = OPTIMIZER,
    fmax: float = FMAX,
    steps: int = STEPS,
    seed: int = SEED,
    out: Path = OUT,
    engine: str = ENGINE,
) -> None:
    """Screen guests in MOFs: build one Flow, run it locally (or queue it on --engine),
    store, rank, plot."""
    from omni_flows.report import mof_heatmap, mof_ranked_rows, mof_ranked_table
    from omni_flows.workflows.mof_campaign import MOFCampaign

    console = Console()
    engine = check_engine(engine)
    found = split_lists(lists or [], MOF_LIST_OPTIONS, "mofs")
    if not found["cifs"] or not found["guests"]:
        raise ScreenInputError("give at least one --cif and one --guests")
    if placements < 1:
        raise ScreenInputError(f"--placements must be at least 1, not {placements}")
    campaign = MOFCampaign(
        cifs=found["cifs"], guests=found["guests"], n_placements=placements, dispersion=d3,
        seed=seed, mlip=mlip_from_options(model, task, device, backend, optimizer, fmax, steps),
    )
    settings = load_settings()
    start = time.perf_counter()
    with quiet_third_parties():
        flow = campaign.make()  # every input checked here: nothing has run yet
        sid = campaign.maker().settings_id
        n_jobs = sum(1 for _ in flow.iterflow())
        mlip = campaign.mlip
        console.print(f"[bold]{flow.name}[/]: {n_jobs} jobs, settings {sid} (model "
                      f"{mlip.model}{'/' + mlip.task if mlip.task else ''}, D3 "
                      f"{'on' if d3 else 'off'}), database {settings.database}")
        if engine.value != "local":
            submit_campaign(flow, engine, settings, console, "screen mofs")
            return
        run_campaign(flow, settings, console, sid, "omni-flows screen mofs "
                     + " ".join(sys.argv[3:] if len(sys.argv) > 3 else []))
        names = [Path(c).stem for c in found["cifs"]]
        guests = [g for g in found["guests"]]
        docs = mof_documents(settings, sid, names, guests)
    rows = mof_ranked_rows(docs)
    console.print(mof_ranked_table(rows, title=f"best valid placements, settings {sid}"))
    out.mkdir(parents=True, exist_ok=True)
    stem = _file_stem("mofs", sid, [*names, *guests])
    csv_path = write_csv(rows, out / f"{stem}.csv")
    png = mof_heatmap(rows, out / f"{stem}.png",
                      title=f"E_ads (eV), {mlip.model}{'/' + mlip.task if mlip.task else ''}"
                      + (" + D3" if d3 else "") + f", settings {sid}")
    console.print(f"table {csv_path}, heatmap {png} ({time.perf_counter() - start:.0f} s)")
