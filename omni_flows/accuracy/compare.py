"""Several models on one benchmark (``omni-flows benchmark``): the selection checked and its
defaults filled before any model loads, then per model the metrics, one parity plot of all
and one stored ``BenchmarkRunDoc`` each.

Each benchmark function below returns a :class:`Benchmark`; an option left None takes the
benchmark module's default, and the stored ``parameters`` hold the values that ran.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from omni_flows.db_schemas import BenchmarkEntry, BenchmarkRunDoc
from omni_flows.settings import Settings

from .results import (
    ModelChoice,
    benchmark_doc,
    data_folder,
    parity_plot,
    reliability_plot,
    store_runs,
)

# the folder of the parity plots unless one is given
PLOT_FOLDER = Path("benchmark-results")

Runner = Callable[[str, str | None, str], tuple[dict, list[BenchmarkEntry]]]


@dataclass(frozen=True)
class Benchmark:
    """One benchmark's checked selection; ``run(model, task, device) -> (metrics, entries)``."""

    name: str  # the plot's file stem
    title: str
    dataset: str
    quantity: str
    plotted: str  # the plot's axis
    parameters: dict
    run: Runner = field(repr=False)
    units: str = "eV"


@dataclass
class Comparison:
    """Metrics per model label, the documents to store and the parity plot's path."""

    benchmark: Benchmark
    results: dict[str, dict]
    docs: list[BenchmarkRunDoc]
    plot: Path

    def store(self, settings: Settings) -> str:
        """Upsert the runs; where they went (``database.collection``)."""
        store_runs(self.docs, settings)
        return f"{settings.database}.{BenchmarkRunDoc.collection}"

    def table(self) -> Table:
        """Rows: the numeric metrics; columns: the models."""
        table = Table(title=self.benchmark.title)
        table.add_column("metric")
        for label in self.results:
            table.add_column(label, justify="right")
        for name in self.numeric():
            cells = [self.results[label].get(name) for label in self.results]
            table.add_row(name, *("-" if c is None else f"{c:.3f}" if isinstance(c, float)
                                  else str(c) for c in cells))
        return table

    def numeric(self) -> list[str]:
        first = next(iter(self.results.values()))
        return [k for k, v in first.items() if isinstance(v, (int, float)) or v is None]

    def notes(self) -> list[str]:
        """The metrics that are not numbers (a split, moved sites), one line each."""
        return [f"{label} {key}: {value}" for label, metrics in self.results.items()
                for key, value in metrics.items()
                if not isinstance(value, (int, float)) and value is not None]


def compare(benchmark: Benchmark, models: list[ModelChoice], device: str,
            out: Path | None = None, progress=None) -> Comparison:
    """Run ``benchmark`` for each model (``progress(label)``: a context manager shown while
    it runs), then its parity plot in ``out`` (None: :data:`PLOT_FOLDER`)."""
    from contextlib import nullcontext

    results, series, docs = {}, {}, []
    for model in models:
        label = f"{benchmark.title}: {model.label}"
        with progress(label) if progress else nullcontext():
            metrics, entries = benchmark.run(model.name, model.task, device)
        results[model.label] = metrics
        series[model.label] = entries
        docs.append(benchmark_doc(model, benchmark.dataset, benchmark.quantity, entries,
                                  metrics, benchmark.parameters, units=benchmark.units,
                                  device=device))
    path = Path(out or PLOT_FOLDER) / f"{benchmark.name}_parity-{_run_tag(docs)}.png"
    plot = parity_plot(series, path, benchmark.title, benchmark.plotted, benchmark.units)
    if any(e.sigma is not None for entries in series.values() for e in entries):
        diagram = reliability_plot(series, path.with_name(path.name.replace(
            "_parity-", "_reliability-")), benchmark.title)  # a committee's sigma: calibrated?
        for metrics in results.values():
            metrics["reliability_diagram"] = str(diagram)
    return Comparison(benchmark, results, docs, plot)


def _run_tag(docs) -> str:
    """8 hex of what the plotted runs are (models with their checkpoints, data selection,
    quantity, parameters): another run's plot gets another file, the same run its own."""
    from omni_flows.db_schemas.fingerprint import content_hash

    return content_hash([[d.provenance.model_name, d.provenance.task, d.provenance.checkpoint_hash,
                          d.dataset, d.dataset_hash, d.quantity, d.parameters] for d in docs])[:8]


def xu_kitchin(data: Path | None = None, mode: str | None = None, coverage: float | None = None,
               adsorbates: list[str] | None = None, metals: list[str] | None = None,
               fmax: float | None = None) -> Benchmark:
    """Xu & Kitchin (2014) fcc(111) atomic adsorption energies."""
    from . import xu_kitchin as xk

    mode = mode or xk.DEFAULT_MODE
    coverage = xk.DEFAULT_COVERAGE if coverage is None else coverage
    fmax = xk.DEFAULT_FMAX if fmax is None else fmax
    adsorbates, metals = adsorbates or list(xk.ADSORBATES), metals or list(xk.METALS)
    xk.check_mode(mode)
    xk.coverage_key(coverage)
    data_folder(data, xk.DATASET, ("energies.json", "structures.json"))
    parameters = {"mode": mode, "coverage": coverage, "adsorbates": adsorbates,
                  "metals": metals, "train_metals": list(xk.TRAIN_METALS),
                  "test_metals": list(xk.TEST_METALS), "fmax": fmax if mode == "relaxed" else None}
    return Benchmark(
        "xu_kitchin", f"Xu-Kitchin {mode} {coverage} ML", xk.DATASET,
        f"adsorption_energy ({mode})", "E_ads (model with fitted mu_X)", parameters,
        lambda name, task, device: xk.run_xu_kitchin(
            name, task, data, mode=mode, coverage=coverage, adsorbates=adsorbates,
            metals=metals, device=device, fmax=fmax))


def oc20(data: Path | None = None, stride: int | None = None, limit_frames: int | None = None,
         trajectories: list[str] | None = None) -> Benchmark:
    """OC20 relaxation trajectories (RPBE)."""
    from . import oc20 as oc

    stride = oc.DEFAULT_STRIDE if stride is None else stride
    oc.frame_indices(2, stride, limit_frames)
    data_folder(data, oc.DATASET)
    names = trajectories or None
    parameters = {"stride": stride, "limit_frames": limit_frames, "trajectories": names,
                  "reference_functional": oc.REFERENCE_FUNCTIONAL}
    return Benchmark(
        "oc20", f"OC20 relaxations ({oc.REFERENCE_FUNCTIONAL} reference)", oc.DATASET,
        "relative_energy", "E - E(first frame)", parameters,
        lambda name, task, device: oc.run_oc20(name, task, data, stride=stride,
                                               limit_frames=limit_frames, trajectories=names,
                                               device=device))


def hea(data: Path | None = None, gas: Path | None = None,
        slab_ids: list[int] | None = None) -> Benchmark:
    """Adsorption on alloy slabs (CHEAT layout)."""
    from . import hea as hb

    folder = data_folder(data, hb.DEFAULT_DATA)
    slab_ids = list(slab_ids) if slab_ids else None
    hb.load_sites(folder, slab_ids)  # bad data fail before any model loads
    if not (folder / "refs").is_dir():
        hb.gas_folder(folder, gas)
    reference = "Pt(111)" if (folder / "refs").is_dir() else "gas molecules"
    parameters = {"data": str(folder), "slab_ids": slab_ids, "reference": reference}
    return Benchmark(
        "hea", f"Alloy adsorption ({reference} reference)", hb.DATASET, "adsorption_energy",
        "E_ads", parameters,
        lambda name, task, device: hb.run_hea(name, task, folder, gas_dir=gas,
                                              slab_ids=slab_ids, device=device))


def odac(guests: list[str] | None = None, limit: int | None = None,
         dispersion: bool | None = None, placements: int | None = None) -> Benchmark:
    """ODAC23 promising MOFs (PBE-D3)."""
    from . import odac as od
    parameters = {
        "guests": guests or list(od.GUESTS),
        "limit": od.DEFAULT_LIMIT if limit is None else limit,
        "dispersion": od.DEFAULT_DISPERSION if dispersion is None else dispersion,
        "n_placements": od.DEFAULT_PLACEMENTS if placements is None else placements,
    }
    return Benchmark(
        "odac", "ODAC23 promising MOFs", "odac23_promising", "adsorption_energy", "E_ads",
        parameters,
        lambda name, task, device: od.run_odac(
            name, task, parameters["guests"], parameters["limit"],
            dispersion=parameters["dispersion"], n_placements=parameters["n_placements"],
            device=device))

