"""What every benchmark shares: its data folder, the models it compares, the parity plot
and the stored run document."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omni_flows.db_schemas import BenchmarkEntry, BenchmarkRunDoc
from omni_flows.model.errors import OmniFlowsError
from omni_flows.settings import Settings

# an editable install or a checkout: the shared data sits next to the repository
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data"
# the task name of a single-task model in stored documents (as the trainer names it)
SINGLE_TASK = "default"


class BenchmarkDataError(OmniFlowsError, FileNotFoundError):
    """A reference data folder that is missing or lacks the files a benchmark reads."""


class BenchmarkInputError(OmniFlowsError, ValueError):
    """Benchmark options that cannot be run (an empty selection, a bad value)."""


def data_folder(path: Path | None, name: str, required: tuple[str, ...] = ()) -> Path:
    """``path``, or ``<shared data>/<name>`` when None; checked to exist and hold ``required``."""
    folder = Path(path).expanduser() if path is not None else DEFAULT_DATA_ROOT / name
    missing = [f for f in required if not (folder / f).is_file()]
    if not folder.is_dir() or missing:
        what = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
        raise BenchmarkDataError(
            f"data folder {folder} {what}: pass the {name} folder with --data DIR "
            "(see ../shared/data/README.md)"
        )
    return folder


@dataclass(frozen=True)
class ModelChoice:
    """A model to benchmark and its task (None for a single-task model)."""

    name: str
    task: str | None

    @property
    def label(self) -> str:
        return self.name if self.task is None else f"{self.name}/{self.task}"


def parse_models(specs: list[str] | None, task: str | None, settings: Settings) -> list[ModelChoice]:
    """``NAME[:TASK]`` strings -> models. A multi-task model named without a task runs with
    ``task`` (default: the settings' task); a single-task model takes none. No spec: the
    settings' model."""
    from omni_flows.model.pretrained import load_model

    choices = []
    for spec in specs or [settings.model]:
        name, sep, explicit = spec.rpartition(":")
        if not sep or not name or any(c in explicit for c in "/\\."):  # a path, no task
            name, explicit = spec, ""
        if explicit:
            choices.append(ModelChoice(name, explicit))  # a wrong task fails at load, clearly
            continue
        has_tasks = bool(load_model(name).config.tasks)  # unknown name: ModelNotFoundError
        choices.append(ModelChoice(name, (task or settings.task) if has_tasks else None))
    if task is not None and all(c.task is None for c in choices):
        from omni_flows.model.errors import UnknownTaskError

        raise UnknownTaskError(
            f"--task {task}: {', '.join(c.name for c in choices)} single-task; leave out --task"
        )
    return choices


def entries_hash(entries: list[BenchmarkEntry]) -> str:
    """sha256 of the reference values a run compared against (its selection of the data)."""
    pairs = sorted((e.system_id, round(e.reference, 8)) for e in entries)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def benchmark_doc(
    model: ModelChoice,
    dataset: str,
    quantity: str,
    entries: list[BenchmarkEntry],
    metrics: dict[str, Any],
    parameters: dict[str, Any],
    units: str = "eV",
    device: str = "auto",
) -> BenchmarkRunDoc:
    """The stored document of one model's run; keyed by dataset, selection, quantity, model."""
    from omni_flows.db_schemas import Provenance
    from omni_flows.workflows.relax import get_calculator

    calc = get_calculator(model.name, model.task, device)  # the runner's, cached
    task = model.task or SINGLE_TASK
    # what decides the numbers (the device does not): the settings id is made of them
    settings = {"model": model.name, "task": task, "checkpoint": calc.checkpoint_hash,
                "parameters": parameters}
    provenance = Provenance(model_name=model.name, task=task,
                            checkpoint_hash=calc.checkpoint_hash, settings=settings)
    return BenchmarkRunDoc.from_entries(
        entries, provenance=provenance, dataset=dataset, dataset_hash=entries_hash(entries),
        quantity=quantity, units=units, metrics=metrics, parameters=parameters,
    )


def store_runs(docs: list[BenchmarkRunDoc], settings: Settings) -> int:
    """Upsert the runs on their natural key (a re-run replaces its document)."""
    from omni_flows.stores import connect_database

    from omni_flows.db_schemas.query import field_value

    collection = connect_database(settings)[BenchmarkRunDoc.collection]
    for doc in docs:
        stored = doc.to_document()
        key = {path: field_value(stored, path) for path in BenchmarkRunDoc.natural_key()}
        collection.replace_one(key, stored, upsert=True)
    return len(docs)


def parity_plot(
    series: dict[str, list[BenchmarkEntry]], path: Path, title: str, quantity: str,
    units: str = "eV",
) -> Path:
    """DFT (x) against model (y) ``quantity``, one series per model, with the y = x line."""
    from matplotlib.figure import Figure  # no pyplot: the process's backend is left alone

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    values = []
    for label, entries in series.items():
        x = [e.reference for e in entries]
        y = [e.predicted for e in entries]
        mae = sum(abs(b - a) for a, b in zip(x, y)) / len(x)
        ax.scatter(x, y, s=12, alpha=0.7, label=f"{label} (MAE {mae:.3f} {units}, n={len(x)})")
        values += x + y
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(f"DFT {quantity} ({units})")
    ax.set_ylabel(f"model {quantity} ({units})")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path


def reliability_plot(series: dict[str, list[BenchmarkEntry]], path: Path, title: str) -> Path:
    """Observed share of |error| <= z sigma against the share a Gaussian expects, one curve
    per model and group (adsorbate), for the entries with a committee sigma; the diagonal is
    a calibrated sigma, below it sigma is too small."""
    from matplotlib.figure import Figure

    from omni_flows.model.committee import reliability

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="calibrated")
    for label, entries in series.items():
        groups: dict[str, list[BenchmarkEntry]] = {}
        for e in entries:
            if e.sigma is not None:
                groups.setdefault(e.group or "all", []).append(e)
        for group, members in sorted(groups.items()):
            expected, observed = reliability([e.predicted - e.reference for e in members],
                                             [e.sigma for e in members])
            ax.plot(expected, observed, marker="o", ms=3,
                    label=f"{label} {group} (n={len(members)})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("expected share within z sigma (Gaussian)")
    ax.set_ylabel("observed share of |error| <= z sigma")
    ax.set_title(f"{title}: reliability")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path
