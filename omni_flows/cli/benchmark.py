"""``omni-flows benchmark``: the MLIP against DFT reference sets, models side by side: a table
(metrics x models) or ``--json``, a parity plot named by the run, one stored ``BenchmarkRunDoc``
per model (``--no-store``: none). What runs: :mod:`omni_flows.accuracy.compare`."""

import json
from pathlib import Path

import typer
from rich.console import Console
from typer.core import TyperCommand

from omni_flows.accuracy import compare as bench
from omni_flows.accuracy import oc20 as oc
from omni_flows.accuracy import odac as od
from omni_flows.accuracy import xu_kitchin as xk
from omni_flows.accuracy.results import parse_models
from omni_flows.settings import load_settings

app = typer.Typer(help="Benchmarks against DFT reference sets.", no_args_is_help=True)

MODEL = typer.Option(None, "--model", help="NAME[:TASK], repeatable (default: the settings')")
TASK = typer.Option(None, help="task of models named without one (default: the settings')")
DEVICE = typer.Option(None, help="cpu, cuda, auto (default: the settings')")
JSON = typer.Option(False, "--json", help="print one JSON object of metrics per model")
OUT = typer.Option(None, help=f"folder of the parity plot (default: {bench.PLOT_FOLDER})")
STORE = typer.Option(True, "--store/--no-store", help="store the runs in the database")
DATA = "the {} folder (default: in ../shared/data)"


class ListOptions(TyperCommand):
    """List options take several values after one flag: ``--metals Pt Cu``, as the screen's."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        lists = {opt for param in self.params  # typer's own click: no isinstance(click.Option)
                 if param.param_type_name == "option" and param.multiple for opt in param.opts}
        spelled, option = [], None
        for arg in args:
            if arg.startswith("-"):  # the next option (or a negative number) ends a list
                option = arg if arg in lists else None
            elif option is not None and spelled[-1] != option:
                spelled.append(option)
            spelled.append(arg)
        return super().parse_args(ctx, spelled)


def split_values(values: list[str] | None) -> list[str] | None:
    """``['O,N', 'C']`` -> ``['O', 'N', 'C']``; None when none are given."""
    return [v for value in values or [] for v in value.split(",") if v] or None


def run_benchmark(benchmark: bench.Benchmark, models: list[str] | None, task: str | None,
                  device: str | None, as_json: bool, out: Path | None, store: bool) -> None:
    """Every model on ``benchmark``, then the table (or JSON), the plot and the stored runs."""
    settings = load_settings()
    err = Console(stderr=True)
    comparison = bench.compare(benchmark, parse_models(models, task, settings),
                               device or settings.device, out, progress=err.status)
    if as_json:
        typer.echo(json.dumps(comparison.results))
    else:
        for shown in (comparison.table(), *comparison.notes(), f"parity plot: {comparison.plot}"):
            Console().print(shown)
    if store:  # after the output: a database problem does not lose the run's numbers
        err.print(f"stored {len(comparison.docs)} run(s) in {comparison.store(settings)}")


@app.command("xu-kitchin", cls=ListOptions)
def xu_kitchin(
    data: Path = typer.Option(None, help=DATA.format("xu_kitchin_2014")),
    mode: str = typer.Option(None, help=f"{' or '.join(xk.MODES)} (default: {xk.DEFAULT_MODE})"),
    coverage: float = typer.Option(None, help=f"ML: {', '.join(xk.COVERAGES)} "
                                   f"(default: {xk.DEFAULT_COVERAGE})"),
    adsorbates: list[str] = typer.Option(None, help=f"default: all, {' '.join(xk.ADSORBATES)}"),
    metals: list[str] = typer.Option(None, help=f"default: {' '.join(xk.METALS)}"),
    fmax: float = typer.Option(None, help=f"eV/A, relaxed mode (default: {xk.DEFAULT_FMAX})"),
    model: list[str] = MODEL, task: str = TASK, device: str = DEVICE, as_json: bool = JSON,
    out: Path = OUT, store: bool = STORE,
) -> None:
    """Xu & Kitchin (2014) fcc(111) atomic adsorption energies (PBE): site preference, site
    differences, metal trends, absolute MAE (references fitted on Pt Ag Au, tested on Pd Cu)."""
    run_benchmark(bench.xu_kitchin(data, mode, coverage, split_values(adsorbates),
                                   split_values(metals), fmax),
                  model, task, device, as_json, out, store)


@app.command("oc20", cls=ListOptions)
def oc20(
    data: Path = typer.Option(None, help=DATA.format("oc20_relaxations")),
    stride: int = typer.Option(None, help=f"every N-th frame, the last kept (default: "
                               f"{oc.DEFAULT_STRIDE})"),
    limit_frames: int = typer.Option(None, help="at most N frames per trajectory"),
    trajectories: list[str] = typer.Option(None, help="names, e.g. random1000100 (default: all)"),
    model: list[str] = MODEL, task: str = TASK, device: str = DEVICE, as_json: bool = JSON,
    out: Path = OUT, store: bool = STORE,
) -> None:
    """OC20 relaxation trajectories (RPBE): force MAE on free atoms (beside the zero-force
    baseline), energies relative to each first frame, relaxation energies."""
    run_benchmark(bench.oc20(data, stride, limit_frames, split_values(trajectories)),
                  model, task, device, as_json, out, store)


@app.command("hea", cls=ListOptions)
def hea(
    data: Path = typer.Option(None, help="folder of CHEAT-layout ASE databases, optional refs/ "
                              "(default: in ../shared/data)"),
    gas: Path = typer.Option(None, help="gas molecules (h2.traj, ...) without refs/ "
                             "(default: DATA/gas or DATA/../gas)"),
    slab_id: list[int] = typer.Option(None, "--slab-id", help="only these slabIds"),
    model: list[str] = MODEL, task: str = TASK, device: str = DEVICE, as_json: bool = JSON,
    out: Path = OUT, store: bool = STORE,
) -> None:
    """Adsorption on alloy slabs at the DFT geometries: MAE relative to Pt(111) (refs/) or
    to gas molecules, mean error, Spearman rho, number of sites per adsorbate."""
    run_benchmark(bench.hea(data, gas, slab_id), model, task, device, as_json, out, store)


@app.command("odac", cls=ListOptions)
def odac(
    guests: list[str] = typer.Option(None, help=f"{', '.join(od.GUESTS)} (default: all)"),
    limit: int = typer.Option(None, help=f"MOFs, smallest first (default: {od.DEFAULT_LIMIT})"),
    dispersion: bool = typer.Option(None, "--dispersion/--no-dispersion",
                                    help=f"D3 (default: {od.DEFAULT_DISPERSION})"),
    placements: int = typer.Option(None, help=f"per MOF (default: {od.DEFAULT_PLACEMENTS})"),
    model: list[str] = MODEL, task: str = TASK, device: str = DEVICE, as_json: bool = JSON,
    out: Path = OUT, store: bool = STORE,
) -> None:
    """ODAC23 promising MOFs (PBE-D3): the MOF flow's E_ads against DFT, the share of MOFs
    whose sign and strong/weak class match."""
    run_benchmark(bench.odac(split_values(guests), limit, dispersion, placements),
                  model, task, device, as_json, out, store)
