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
import shlex
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from omni_flows.output import check_writable_dir
from omni_flows.engines.local import run_local
from omni_flows.model.defaults import (
    BACKENDS,
    DEFAULT_FMAX,
    DEFAULT_OPTIMIZER,
    DEFAULT_STEPS,
    OPTIMIZERS,
)
from omni_flows.model.errors import OmniFlowsError
from omni_flows.output import print_table
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
BACKEND = typer.Option(None, help=f"kernels: {', '.join(BACKENDS)} (same numbers; default "
                       f"{BACKENDS[0]})")
OPTIMIZER = typer.Option(None, help=f"relaxation optimizer: {' or '.join(OPTIMIZERS)} "
                         f"(default {DEFAULT_OPTIMIZER})")
FMAX = typer.Option(None, help="eV/A: largest force on a free atom at the end (> 0) "
                    f"(default {DEFAULT_FMAX})")
STEPS = typer.Option(None, help="optimizer step limit of every relaxation (>= 1) "
                     f"(default {DEFAULT_STEPS})")
SEED = typer.Option(None, help="seed of the random placements (default 0)")
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
                        **given(backend=backend, optimizer=optimizer, fmax=fmax, steps=steps))


def given(**options) -> dict:
    """The options the user gave: left out, the object's own default decides."""
    return {name: value for name, value in options.items() if value is not None}


def model_label(mlip) -> str:
    return f"{mlip.model}{'/' + mlip.task if mlip.task else ''}"


def run_or_submit(flow, settings_id: str, what: str, engine, settings, console: Console,
                  command: str) -> bool:
    """Say what the screen is, then queue it on ``engine`` (False: nothing to show here)
    or run it here with a progress bar (True)."""
    n_jobs = sum(1 for _ in flow.iterflow())
    console.print(f"[bold]{flow.name}[/]: {n_jobs} jobs, settings {settings_id} ({what}), "
                  f"database {settings.database}")
    if engine.value != "local":
        submit_campaign(flow, engine, settings, console, command)
        return False
    run_campaign(flow, settings, console, settings_id, f"omni-flows {command} "
                 + shlex.join(sys.argv[3:]))  # quoted: zsh would expand *OOH
    return True


def write_table(rows, plot, out: Path, stem: str, title: str, console: Console,
                start: float) -> None:
    """The table as CSV and its heatmap (``plot``), named ``stem`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(rows, out / f"{stem}.csv")
    png = plot(rows, out / f"{stem}.png", title=title)
    console.print(f"table {csv_path}, heatmap {png} ({time.perf_counter() - start:.0f} s)")


def warn_out_of_domain(console: Console, elements: list[str], mlip) -> None:
    """Say which elements the task never saw in training (checkpoints that record it)."""
    from omni_flows.model.header import out_of_domain

    outside = out_of_domain(elements, mlip.model, mlip.task)
    if outside:
        console.print(f"[yellow]warning:[/] outside the training data of {model_label(mlip)}: "
                      f"{', '.join(outside)}; treat their results with care (model card)")


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
    from omni_flows.workflows.structures.slabs import SlabWarning

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
        "ontop/bridge/hollow sites (default 2)"),
    max_placements: int | None = typer.Option(None, help="cap on placements per adsorbate "
                                              "and slab (>= 1)"),
    coverage: int | None = typer.Option(
        None, help="adsorbates per cell, placed as far apart as the cell allows; energies are "
        "per adsorbate and the documents give the coverage in ML too (default 1)"),
    tilt: float | None = typer.Option(
        None, help="degrees: tip each molecule's axis at random within this cone of the "
        "surface normal; 0: upright (default 20, AdsorbML's)"),
    layers: int | None = typer.Option(None, help="slab layers (default 4)"),
    fixed_layers: int | None = typer.Option(None, help="bottom layers held fixed (< --layers) "
                                            "(default 2)"),
    supercell: str | None = typer.Option(None, help="lateral cell, e.g. 2x2 (default: >= 8 A)"),
    terminations: str = typer.Option(
        "first", help="first: one termination per facet (pymatgen's first); all: every "
        "distinct termination (alloys, intermetallics, oxides)"),
    reference: str | None = typer.Option(
        None, help="gas_molecules (default): relaxed gas molecules (the adsorbate's own when "
        "it is a stable gas or a file, else H2, H2O, N2, CO combinations such as O = H2O - H2); "
        "oc20_elemental (formerly 'atomic'): OC20's per-element energies from H2, H2O, N2, CO, "
        "not isolated atoms. Another reference relaxes nothing again"),
    model: str | None = MODEL,
    task: str | None = TASK,
    device: str | None = DEVICE,
    backend: str | None = BACKEND,
    optimizer: str | None = OPTIMIZER,
    fmax: float | None = FMAX,
    steps: int | None = STEPS,
    seed: int | None = SEED,
    out: Path = OUT,
    free_energy: bool = typer.Option(
        False, "--free-energy", help="vibrate each best placement's adsorbate and its gas "
        "references with the MLIP: store zpe, free_energy_correction, adsorption_free_energy"),
    temperature: float | None = typer.Option(None, help="K, of --free-energy (> 0) "
                                             "(default 298.15)"),
    pressure: float | None = typer.Option(None, help="bar, gas references of --free-energy "
                                          "(> 0; water at 0.035 bar, the CHE convention) "
                                          "(default 1)"),
    batch_atoms: int | None = typer.Option(
        None, help="atoms of placements per relaxation job, the placements of several slabs "
        "and adsorbates relaxed together (default 1024; 0: one job per slab and adsorbate; "
        "the results are the same either way)"),
    engine: str = ENGINE,
) -> None:
    """Screen adsorbates on surfaces: build one Flow, run it locally (or queue it on
    --engine), store, rank, plot."""
    from omni_flows.workflows.flows.campaign import SurfaceCampaign
    from omni_flows.workflows.structures.placements import PlacementSettings
    from omni_flows.workflows.structures.slabs import SlabSpec
    from omni_flows.workflows.thermo.thermochemistry import FreeEnergySettings

    console, start, engine = Console(), time.perf_counter(), check_engine(engine)
    check_writable_dir(out, "--out")  # before any compute, not after it
    found = split_lists(lists or [])
    if not found["bulks"] or not found["adsorbates"]:
        raise ScreenInputError("give at least one --bulk and one --adsorbates")
    if terminations not in ("first", "all"):
        raise ScreenInputError(f"--terminations must be first or all, not {terminations!r}")
    bar = None if pressure is None else pressure * 1e5  # Pa
    campaign = SurfaceCampaign(  # every input checked by the objects, before anything runs
        bulks=found["bulks"], facets=found["facets"] or None, adsorbates=found["adsorbates"],
        mlip=mlip_from_options(model, task, device, backend, optimizer, fmax, steps),
        slab_spec=SlabSpec(**given(n_layers=layers, n_fixed_layers=fixed_layers,
                                   supercell=supercell)),
        placements=PlacementSettings(**given(n_random=n_random, max_placements=max_placements,
                                             seed=seed, coverage=coverage, tilt=tilt)),
        free_energy=FreeEnergySettings(**given(temperature=temperature, pressure=bar))
        if free_energy else None,
        all_terminations=terminations == "all",
        **given(reference=reference, batch_atoms=batch_atoms))
    settings, sid, mlip = load_settings(), campaign.settings_id, campaign.mlip
    with quiet_third_parties():
        plan = campaign.plan()
        warn_out_of_domain(console, plan.elements(), mlip)
        what = f"model {model_label(mlip)}, fmax {mlip.fmax}, {campaign.reference.value}"
        if not run_or_submit(campaign.make(plan), sid, what, engine, settings, console,
                             "screen surfaces"):
            return
        rows = ranked_rows(plan.select(best_documents(settings, sid), sid))
    if not rows:
        raise ScreenInputError(f"no results of settings {sid} in database {settings.database} "
                               "after the run; see `omni-flows query adsorption_best "
                               f"settings_id={sid}`")
    print_table(console, ranked_table(rows, title=f"best valid placements, settings {sid}"))
    stem = _file_stem("surfaces", sid, [*found["bulks"], *(found["facets"] or ["111"]),
                                        *found["adsorbates"]])
    write_table(rows, heatmap, out, stem, f"E_ads (eV), {model_label(mlip)}, settings {sid}",
                console, start)


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
    backend: str | None = BACKEND,
    optimizer: str | None = OPTIMIZER,
    fmax: float | None = FMAX,
    steps: int | None = STEPS,
    seed: int | None = SEED,
    out: Path = OUT,
    engine: str = ENGINE,
) -> None:
    """Screen guests in MOFs: build one Flow, run it locally (or queue it on --engine),
    store, rank, plot."""
    from omni_flows.report import mof_heatmap, mof_ranked_rows, mof_ranked_table
    from omni_flows.workflows.flows.mof_campaign import MOFCampaign

    console, start, engine = Console(), time.perf_counter(), check_engine(engine)
    check_writable_dir(out, "--out")  # before any compute, not after it
    found = split_lists(lists or [], MOF_LIST_OPTIONS, "mofs")
    if not found["cifs"] or not found["guests"]:
        raise ScreenInputError("give at least one --cif and one --guests")
    campaign = MOFCampaign(
        cifs=found["cifs"], guests=found["guests"], n_placements=placements, dispersion=d3,
        mlip=mlip_from_options(model, task, device, backend, optimizer, fmax, steps),
        **given(seed=seed),
    )
    settings = load_settings()
    with quiet_third_parties():
        flow = campaign.make()  # every input checked here: nothing has run yet
        sid, mlip = campaign.maker().settings_id, campaign.mlip
        what = f"model {model_label(mlip)}, D3 {'on' if d3 else 'off'}"
        if not run_or_submit(flow, sid, what, engine, settings, console, "screen mofs"):
            return
        names = [Path(c).stem for c in found["cifs"]]
        guests = list(found["guests"])
        docs = mof_documents(settings, sid, names, guests)
    rows = mof_ranked_rows(docs)
    print_table(console, mof_ranked_table(rows, title=f"best valid placements, settings {sid}"))
    write_table(rows, mof_heatmap, out, _file_stem("mofs", sid, [*names, *guests]),
                f"E_ads (eV), {model_label(mlip)}" + (" + D3" if d3 else "")
                + f", settings {sid}", console, start)
