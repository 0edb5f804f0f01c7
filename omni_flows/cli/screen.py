"""``omni-flows screen surfaces|mofs``: one Flow for a whole campaign, run, stored and reported.

Lists are written as on the issue: ``--bulk Pt Cu --facets 111 100 --adsorbates CO O H``
or ``--cif A.cif B.cif --guests CO2 H2O`` (each option takes every value up to the
next option; repeating it works too).
"""

import threading
import time
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
    collection = store.docs_store._collection
    while not stop.wait(1.0):
        try:
            done = collection.count_documents({"uuid": {"$in": uuids}})
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


def best_documents(flow, settings) -> list[dict]:
    from omni_flows.stores import connect_database

    uuids = [job.uuid for job, _ in flow.iterflow() if job.name.startswith("best ")]
    db = connect_database(settings)
    return list(db["adsorption_best"].find({"provenance.jobflow_uuid": {"$in": uuids}},
                                           {"_id": 0}))


@app.command(
    "surfaces",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def surfaces(
    lists: list[str] = typer.Argument(
        None, metavar="--bulk B... --facets HKL... --adsorbates A...",
        help="bulks (element or structure file), facets (111, 1-10, 2,1,1), adsorbates "
        "(built-in names or FILE:BINDING_INDEX)",
    ),
    n_random: int = typer.Option(1, help="random placements per adsorbate and slab"),
    max_placements: int | None = typer.Option(None, help="cap on placements per adsorbate"),
    layers: int = typer.Option(4, help="slab layers"),
    fixed_layers: int = typer.Option(2, help="bottom layers held fixed"),
    supercell: str | None = typer.Option(None, help="lateral cell, e.g. 2x2 (default: >= 8 A)"),
    reference: str = typer.Option("gas_molecules", help="gas_molecules or atomic"),
    model: str | None = typer.Option(None, help="MLIP name or checkpoint (default: settings)"),
    task: str | None = typer.Option(None, help="model task / functional (default: settings)"),
    device: str | None = typer.Option(None, help="cpu, cuda, auto (default: settings)"),
    fmax: float = typer.Option(0.05, help="eV/A force criterion"),
    out: Path = typer.Option(Path("screen-results"), help="folder of the table and heatmap"),
) -> None:
    """Screen adsorbates on surfaces: build one Flow, run it locally, store, rank, plot."""
    from omni_flows.db_schemas import ReferenceScheme
    from omni_flows.workflows.campaign import SurfaceCampaign
    from omni_flows.workflows.slabs import SlabSpec
    from omni_flows.workflows.surface_flow import MLIPSettings

    console = Console()
    found = split_lists(lists or [])
    if not found["bulks"] or not found["adsorbates"]:
        raise ScreenInputError("give at least one --bulk and one --adsorbates")
    try:
        scheme = ReferenceScheme(reference)
    except ValueError:
        raise ScreenInputError(f"--reference must be gas_molecules or atomic, not {reference!r}")
    cell = None
    if supercell:
        try:
            cell = tuple(int(x) for x in supercell.lower().split("x"))
            assert len(cell) == 2 and min(cell) > 0
        except (ValueError, AssertionError):
            raise ScreenInputError(f"--supercell {supercell!r}: write NxM, e.g. 2x2") from None
    settings = load_settings()
    campaign = SurfaceCampaign(
        bulks=found["bulks"], facets=found["facets"] or ["111"], adsorbates=found["adsorbates"],
        mlip=MLIPSettings(model=model or settings.model, task=task or settings.task,
                          device=device or settings.device, fmax=fmax),
        slab_spec=SlabSpec(n_layers=layers, n_fixed_layers=fixed_layers, supercell=cell),
        n_random=n_random, max_placements=max_placements, reference=scheme,
    )
    start = time.perf_counter()
    flow = campaign.make()  # every input checked here: nothing has run yet
    n_jobs = sum(1 for _ in flow.iterflow())
    console.print(f"[bold]{flow.name}[/]: {n_jobs} jobs, model {campaign.mlip.model} "
                  f"task {campaign.mlip.task}, database {settings.database}")
    run_with_progress(flow, settings, console)
    rows = ranked_rows(best_documents(flow, settings))
    console.print(ranked_table(rows, title=f"{flow.name}: best valid placements"))
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(rows, out / "screen_surfaces.csv")
    png = heatmap(rows, out / "screen_surfaces.png",
                  title=f"E_ads (eV), {campaign.mlip.model}/{campaign.mlip.task}")
    console.print(f"table {csv_path}, heatmap {png} ({time.perf_counter() - start:.0f} s)")


def mof_documents(flow, settings) -> list[dict]:
    """The stored placement documents of a MOF campaign's Flow."""
    from omni_flows.stores import connect_database

    uuids = [job.uuid for job, _ in flow.iterflow()]
    db = connect_database(settings)
    return list(db["mof_adsorption"].find({"provenance.jobflow_uuid": {"$in": uuids}},
                                          {"_id": 0, "final_structure": 0}))


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
    seed: int = typer.Option(0, help="seed of the guest placements"),
    model: str | None = typer.Option(None, help="MLIP name or checkpoint (default: settings)"),
    task: str | None = typer.Option(None, help="model task / functional (default: settings)"),
    device: str | None = typer.Option(None, help="cpu, cuda, auto (default: settings)"),
    fmax: float = typer.Option(0.05, help="eV/A force criterion"),
    steps: int = typer.Option(300, help="step limit of every relaxation"),
    out: Path = typer.Option(Path("screen-results"), help="folder of the table and heatmap"),
) -> None:
    """Screen guests in MOFs: build one Flow, run it locally, store, rank, plot."""
    from omni_flows.report import mof_heatmap, mof_ranked_rows, mof_ranked_table
    from omni_flows.workflows.mof_campaign import MOFCampaign
    from omni_flows.workflows.surface_flow import MLIPSettings

    console = Console()
    found = split_lists(lists or [], MOF_LIST_OPTIONS, "mofs")
    if not found["cifs"] or not found["guests"]:
        raise ScreenInputError("give at least one --cif and one --guests")
    if placements < 1:
        raise ScreenInputError(f"--placements must be at least 1, not {placements}")
    settings = load_settings()
    campaign = MOFCampaign(
        cifs=found["cifs"], guests=found["guests"], n_placements=placements, dispersion=d3,
        seed=seed, mlip=MLIPSettings(model=model or settings.model, task=task or settings.task,
                                     device=device or settings.device, fmax=fmax, steps=steps),
    )
    start = time.perf_counter()
    flow = campaign.make()  # every input checked here: nothing has run yet
    n_jobs = sum(1 for _ in flow.iterflow())
    console.print(f"[bold]{flow.name}[/]: {n_jobs} jobs, model {campaign.mlip.model} "
                  f"task {campaign.mlip.task}, D3 {'on' if d3 else 'off'}, "
                  f"database {settings.database}")
    run_with_progress(flow, settings, console)
    rows = mof_ranked_rows(mof_documents(flow, settings))
    console.print(mof_ranked_table(rows, title=f"{flow.name}: best valid placements"))
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(rows, out / "screen_mofs.csv")
    png = mof_heatmap(rows, out / "screen_mofs.png",
                      title=f"E_ads (eV), {campaign.mlip.model}/{campaign.mlip.task}"
                      + (" + D3" if d3 else ""))
    console.print(f"table {csv_path}, heatmap {png} ({time.perf_counter() - start:.0f} s)")
