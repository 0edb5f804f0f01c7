"""``omni-flows benchmark``: the MLIP against DFT reference sets, several models side by side.

Models: ``--model NAME[:TASK]``, repeatable (``--model 7net-0 --model 7net-mf-0:PBE``). A
multi-task model named without a task runs with ``--task`` (default: the settings' task,
PBE); a single-task model takes none. Lists as the screen takes them: values after one
option (``--metals Pt Cu``), separated by commas (``--adsorbates O,N,C,H``) or the option
repeated (``--model 7net-0 --model 7net-mf-0:PBE``).

Every run prints a table (metrics x models), writes a parity plot with one series per
model to ``--out`` (``<benchmark>_parity-<run tag>.png``: another run never overwrites
it) and stores one ``BenchmarkRunDoc`` per model in the database
(``--no-store`` to skip). ``--json`` prints one JSON object ``{model: metrics}`` and
nothing else on stdout.
"""

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand

from omni_flows.accuracy.results import (
    BenchmarkInputError,
    ModelChoice,
    benchmark_doc,
    data_folder,
    parity_plot,
    parse_models,
    store_runs,
)
from omni_flows.model.defaults import DEFAULT_FMAX
from omni_flows.settings import load_settings

app = typer.Typer(help="Benchmarks against DFT reference sets.", no_args_is_help=True)

MODEL_OPTION = typer.Option(None, "--model", help="NAME[:TASK]; repeat to compare models "
                            "(default: the settings' model)")
TASK_OPTION = typer.Option(None, help="task of models named without one (default: settings)")
DEVICE_OPTION = typer.Option(None, help="cpu, cuda, auto (default: settings)")
JSON_OPTION = typer.Option(False, "--json", help="print one JSON object of metrics per model")
OUT_OPTION = typer.Option(Path("benchmark-results"), help="folder of the parity plot")
STORE_OPTION = typer.Option(True, "--store/--no-store", help="store the runs in the database")


class ListOptions(TyperCommand):
    """A command whose list options also take several values after one flag, as the
    screen's do: ``--metals Pt Cu`` is read as ``--metals Pt --metals Cu``."""

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


def split_values(values: list[str] | None) -> list[str]:
    """``['O,N', 'C']`` -> ``['O', 'N', 'C']``."""
    return [v for value in values or [] for v in value.split(",") if v]


def metrics_table(title: str, results: dict[str, dict]) -> Table:
    """Rows: the numeric metrics; columns: the models."""
    table = Table(title=title)
    table.add_column("metric")
    for label in results:
        table.add_column(label, justify="right")
    names = [k for k, v in next(iter(results.values())).items()
             if isinstance(v, (int, float)) or v is None]
    for name in names:
        cells = [results[label].get(name) for label in results]
        table.add_row(name, *("-" if c is None else f"{c:.3f}" if isinstance(c, float) else str(c)
                              for c in cells))
    return table


def run_benchmark(
    name: str, title: str, run, models: list[ModelChoice], *, dataset: str, quantity: str,
    plotted: str, parameters: dict, as_json: bool, out: Path, store: bool, settings,
    device: str, units: str = "eV",
) -> dict[str, dict]:
    """``run(model, task) -> (metrics, entries)`` for each model, then table, plot, store."""
    err = Console(stderr=True)
    results, series, docs = {}, {}, []
    for model in models:
        with err.status(f"{title}: {model.label}"):
            metrics, entries = run(model.name, model.task)
        results[model.label] = metrics
        series[model.label] = entries
        docs.append(benchmark_doc(model, dataset, quantity, entries, metrics, parameters,
                                  units=units, device=device))
    png = parity_plot(series, out / f"{name}_parity-{_run_tag(docs)}.png", title, plotted,
                      units)
    if as_json:
        typer.echo(json.dumps(results))
    else:
        console = Console()
        console.print(metrics_table(title, results))
        for label, metrics in results.items():
            for key, value in metrics.items():
                if not isinstance(value, (int, float)) and value is not None:
                    console.print(f"{label} {key}: {value}")
        console.print(f"parity plot: {png}")
    if store:  # after the output: a database problem does not lose the run's numbers
        store_runs(docs, settings)
        err.print(f"stored {len(docs)} run(s) in {settings.database}.{docs[0].collection}")
    return results


def _run_tag(docs) -> str:
    """8 hex of what the plotted runs are (models with their checkpoints, data selection,
    quantity, parameters): another run's plot gets another file, the same run its own."""
    from omni_flows.db_schemas.fingerprint import content_hash

    return content_hash([[d.provenance.model_name, d.provenance.task, d.provenance.checkpoint_hash,
                          d.dataset, d.dataset_hash, d.quantity, d.parameters] for d in docs])[:8]


@app.command("xu-kitchin", cls=ListOptions)
def xu_kitchin(
    data: Path | None = typer.Option(None, help="the xu_kitchin_2014 folder "
                                     "(default: ../shared/data/xu_kitchin_2014)"),
    mode: str = typer.Option("single-point", help="single-point (DFT geometries) or relaxed"),
    coverage: float = typer.Option(0.25, help="ML: 0.25, 0.5, 0.75 or 1.0"),
    adsorbates: list[str] | None = typer.Option(None, help="default: all, H C N O F S Cl Br"),
    metals: list[str] | None = typer.Option(None, help="default: Pt Ag Au Pd Cu"),
    fmax: float = typer.Option(DEFAULT_FMAX, help="eV/A, relaxed mode"),
    model: list[str] | None = MODEL_OPTION,
    task: str | None = TASK_OPTION,
    device: str | None = DEVICE_OPTION,
    as_json: bool = JSON_OPTION,
    out: Path = OUT_OPTION,
    store: bool = STORE_OPTION,
) -> None:
    """Xu & Kitchin (2014) fcc(111) atomic adsorption energies (PBE).

    Site preference (strict and within 0.1 eV), site-difference MAE, metal-trend MAE, and
    absolute MAE after a per-adsorbate reference fitted on Pt Ag Au, tested on Pd Cu.
    """
    from omni_flows.accuracy import xu_kitchin as xk

    settings = load_settings()
    device = device or settings.device
    chosen_ads = split_values(adsorbates) or list(xk.ADSORBATES)
    chosen_metals = split_values(metals) or list(xk.METALS)
    xk.coverage_key(coverage)  # bad input fails before any model loads
    data_folder(data, xk.DATASET, ("energies.json", "structures.json"))
    models = parse_models(model, task, settings)
    parameters = {"mode": mode, "coverage": coverage, "adsorbates": chosen_ads,
                  "metals": chosen_metals, "train_metals": list(xk.TRAIN_METALS),
                  "test_metals": list(xk.TEST_METALS), "fmax": fmax if mode == "relaxed" else None}
    run_benchmark(
        "xu_kitchin", f"Xu-Kitchin {mode} {coverage} ML",
        lambda name, t: xk.run_xu_kitchin(name, t, data, mode=mode, coverage=coverage,
                                          adsorbates=chosen_ads, metals=chosen_metals,
                                          device=device, fmax=fmax),
        models, dataset=xk.DATASET, quantity=f"adsorption_energy ({mode})",
        plotted="E_ads (model with fitted mu_X)",
        parameters=parameters, as_json=as_json, out=out, store=store, settings=settings,
        device=device,
    )


@app.command("oc20", cls=ListOptions)
def oc20(
    data: Path | None = typer.Option(None, help="the oc20_relaxations folder "
                                     "(default: ../shared/data/oc20_relaxations)"),
    stride: int = typer.Option(1, help="every N-th frame (the last always kept)"),
    limit_frames: int | None = typer.Option(None, help="at most N frames per trajectory"),
    trajectories: list[str] | None = typer.Option(None, help="names, e.g. random1000100 "
                                                  "(default: all)"),
    model: list[str] | None = MODEL_OPTION,
    task: str | None = TASK_OPTION,
    device: str | None = DEVICE_OPTION,
    as_json: bool = JSON_OPTION,
    out: Path = OUT_OPTION,
    store: bool = STORE_OPTION,
) -> None:
    """OC20 relaxation trajectories (RPBE).

    Force MAE on free atoms (next to the zero-force baseline), energies relative to each
    trajectory's first frame, relaxation energies. The data are RPBE: absolute energies of
    a PBE model are offset, so they are not compared.
    """
    from omni_flows.accuracy import oc20 as oc

    settings = load_settings()
    device = device or settings.device
    oc.frame_indices(2, stride, limit_frames)  # bad input fails before any model loads
    data_folder(data, oc.DATASET)
    models = parse_models(model, task, settings)
    names = split_values(trajectories) or None
    parameters = {"stride": stride, "limit_frames": limit_frames, "trajectories": names,
                  "reference_functional": oc.REFERENCE_FUNCTIONAL}
    run_benchmark(
        "oc20", f"OC20 relaxations ({oc.REFERENCE_FUNCTIONAL} reference)",
        lambda name, t: oc.run_oc20(name, t, data, stride=stride, limit_frames=limit_frames,
                                    trajectories=names, device=device),
        models, dataset=oc.DATASET, quantity="relative_energy",
        plotted="E - E(first frame)", parameters=parameters,
        as_json=as_json, out=out, store=store, settings=settings, device=device,
    )


@app.command("hea", cls=ListOptions)
def hea(
    data: Path | None = typer.Option(None, help="folder of CHEAT-layout ASE databases, optional "
                                     "refs/ (default: ../shared/data/hea_gpaw_rpbe/hea_example)"),
    gas: Path | None = typer.Option(None, help="gas molecules (h2.traj, h2o.traj, ...) when there "
                                    "is no refs/ folder (default: DATA/gas or DATA/../gas)"),
    slab_id: list[int] | None = typer.Option(None, "--slab-id", help="only these slabIds "
                                             "(repeatable; default: all)"),
    model: list[str] | None = MODEL_OPTION,
    task: str | None = TASK_OPTION,
    device: str | None = DEVICE_OPTION,
    as_json: bool = JSON_OPTION,
    out: Path = OUT_OPTION,
    store: bool = STORE_OPTION,
) -> None:
    """Adsorption on alloy slabs (CHEAT layout: relaxed=1 rows, slabId, ads, site).

    Per adsorbate at the DFT geometries: MAE of adsorption energies relative to Pt(111)
    (refs/ folder) or to gas molecules, mean error, Spearman rho and the number of sites.
    """
    from omni_flows.accuracy import hea as hb

    settings = load_settings()
    device = device or settings.device
    folder = data_folder(data, "hea_gpaw_rpbe/hea_example")
    slab_ids = list(slab_id) if slab_id else None
    hb.load_sites(folder, slab_ids)  # bad data fail before any model loads
    if not (folder / "refs").is_dir():
        hb.gas_folder(folder, gas)
    models = parse_models(model, task, settings)
    parameters = {"data": str(folder), "slab_ids": slab_ids,
                  "reference": "Pt(111)" if (folder / "refs").is_dir() else "gas molecules"}
    run_benchmark(
        "hea", f"Alloy adsorption ({parameters['reference']} reference)",
        lambda name, t: hb.run_hea(name, t, folder, gas_dir=gas, slab_ids=slab_ids,
                                   device=device),
        models, dataset=hb.DATASET, quantity="adsorption_energy", plotted="E_ads",
        parameters=parameters, as_json=as_json, out=out, store=store, settings=settings,
        device=device,
    )


@app.command("odac", cls=ListOptions)
def odac(
    guests: list[str] | None = typer.Option(None, help="CO2, H2O (default: both)"),
    limit: int = typer.Option(10, help="number of MOFs"),
    dispersion: bool = typer.Option(True, "--dispersion/--no-dispersion", help="D3 on"),
    placements: int = typer.Option(1, help="guest placements per MOF"),
    model: list[str] | None = MODEL_OPTION,
    task: str | None = TASK_OPTION,
    device: str | None = DEVICE_OPTION,
    as_json: bool = JSON_OPTION,
    out: Path = OUT_OPTION,
    store: bool = STORE_OPTION,
) -> None:
    """ODAC23 promising MOFs (PBE-D3).

    The MOF flow's E_ads against DFT, and the share of MOFs whose sign and strong/weak
    class match.
    """
    chosen = split_values(guests) or ["CO2", "H2O"]
    try:
        from omni_flows.accuracy.odac import run_odac
    except ImportError as exc:
        raise BenchmarkInputError(f"the odac benchmark is not available here ({exc})") from None
    settings = load_settings()
    device = device or settings.device
    models = parse_models(model, task, settings)
    parameters = {"guests": chosen, "limit": limit, "dispersion": dispersion,
                  "n_placements": placements}
    run_benchmark(
        "odac", "ODAC23 promising MOFs",
        lambda name, t: run_odac(name, t, chosen, limit, dispersion=dispersion,
                                 n_placements=placements, device=device),
        models, dataset="odac23_promising", quantity="adsorption_energy", plotted="E_ads",
        parameters=parameters, as_json=as_json, out=out, store=store, settings=settings,
        device=device,
    )
