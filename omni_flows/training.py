"""A training run from its YAML file: the configuration read and checked before anything
is computed, the data sets of the MongoDB store exported (``omni_flows.training_data``),
and the loss curve of a finished run (``omni-flows train``, docs/training.md)."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

# torch is imported on use, so that `omni-flows --help` stays fast


def load_config(path: Path):
    """The training configuration of ``path``, checked before anything is computed."""
    from omni_flows.model.errors import DeviceUnavailableError
    from omni_flows.model.inference import resolve_device
    from omni_flows.model.train.config import TrainConfig, TrainingConfigError

    if not path.is_file():
        raise TrainingConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise TrainingConfigError(f"{path} is not valid YAML: {exc}") from exc
    cfg = TrainConfig.from_dict(raw)
    problems = [f"{name} = {value!r}: {rule}" for name, value, rule in _out_of_range(cfg)]
    if problems:
        raise TrainingConfigError(f"{path}: " + "; ".join(problems) + " (see docs/training.md)")
    try:  # a device this machine lacks: refused before any data is read
        resolve_device(cfg.device)
    except DeviceUnavailableError as exc:
        raise TrainingConfigError(f"{path}: {exc}") from None
    return cfg


def _number(value, low: float, high: float = float("inf"), low_open: bool = False,
            high_open: bool = False) -> bool:
    """``value`` is a real number in the interval (bounds open or closed as asked)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return False
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    return above and below


# numeric fields TrainConfig does not range-check yet (model/train/config.py, issue 15):
# (field, test, what it must be)
_RANGES = [
    ("optim.lr", lambda v: _number(v, 0, low_open=True, high_open=True),
     "the learning rate must be a number above 0, e.g. 1e-3"),
    ("optim.weight_decay", lambda v: _number(v, 0, high_open=True), "must be 0 or more"),
    ("optim.warmup_fraction", lambda v: _number(v, 0, 1, high_open=True),
     "must be in [0, 1)"),
    ("optim.min_lr_ratio", lambda v: _number(v, 0, 1), "must be in [0, 1]"),
    ("optim.grad_clip", lambda v: v is None or _number(v, 0, low_open=True, high_open=True),
     "must be above 0, or null for no clipping"),
    ("optim.ema_decay", lambda v: v is None or _number(v, 0, 1, high_open=True),
     "must be in [0, 1), or null for no EMA"),
    ("regularization.weight", lambda v: _number(v, 0, high_open=True), "must be 0 or more"),
    ("loss.huber_delta", lambda v: _number(v, 0, low_open=True, high_open=True),
     "must be above 0"),
    ("loss.energy_weight", lambda v: _number(v, 0, high_open=True), "must be 0 or more"),
    ("loss.force_weight", lambda v: _number(v, 0, high_open=True), "must be 0 or more"),
    ("loss.stress_weight", lambda v: _number(v, 0, high_open=True), "must be 0 or more"),
    ("max_steps", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)
                                          and v >= 1), "must be a whole number, 1 or more"),
    ("checkpoint_every", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
     "must be a whole number of epochs, 1 or more"),
]


def _out_of_range(cfg):
    """(field, value, rule) of every numeric setting outside its range."""
    for name, valid, rule in _RANGES:
        value = cfg
        for part in name.split("."):
            value = getattr(value, part)
        if not valid(value):
            yield name, value, rule


def check_tasks(cfg) -> None:
    """Every data set names a task of the model (appended ones included), before data is read."""
    from omni_flows.model.train.config import TrainingConfigError
    from omni_flows.model.train.trainer import model_tasks

    tasks = model_tasks(cfg)
    model = cfg.model.checkpoint or "the new model"
    for spec in cfg.data.train + cfg.data.valid + cfg.data.dbs:
        if spec.task not in tasks:
            where = spec.path or f"of {spec.collection} {spec.filter}"
            raise TrainingConfigError(
                f"data set {where}: task {spec.task!r} is not a task of {model} "
                f"(tasks: {tasks}); name one of them, or add it as a new task with "
                f"model: {{append_tasks: [{{name: {spec.task}, copy_from: PBE}}]}}"
            )


def plot_loss_curve(folder: Path) -> Path | None:
    """loss_curve.png: training loss per step (log scale) and validation force MAE per epoch."""
    steps_file = folder / "steps.csv"
    if not steps_file.exists():
        return None
    from matplotlib.figure import Figure  # no pyplot: the process's backend is left alone

    with open(steps_file, newline="") as f:
        rows = list(csv.DictReader(f))
    fig = Figure(figsize=(10, 4))
    ax = fig.subplots(1, 2)
    ax[0].semilogy([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], lw=1)
    ax[0].set(xlabel="step", ylabel="training loss", title="loss")
    epochs_file = folder / "log.csv"
    if epochs_file.exists():
        with open(epochs_file, newline="") as f:
            epochs = list(csv.DictReader(f))
        for key in epochs[0] if epochs else {}:
            if key.endswith("force_mae_mev_a"):
                values = [float(r[key]) if r[key] else float("nan") for r in epochs]
                ax[1].plot(
                    [int(r["epoch"]) for r in epochs],
                    values,
                    marker="o",
                    label=key.replace("_force_mae_mev_a", ""),
                )
        ax[1].set(xlabel="epoch", ylabel="force MAE (meV/A)", title="per-task force MAE")
        if ax[1].get_legend_handles_labels()[0]:
            ax[1].legend(fontsize=8)
    fig.tight_layout()
    out = folder / "loss_curve.png"
    fig.savefig(out, dpi=120)
    return out


def prepare(path: Path, resume: Path | None = None, max_steps: int | None = None, settings=None):
    """The checked configuration of ``path`` with ``resume`` and ``max_steps`` applied (None:
    the file's), its MongoDB data sets exported to files; every check before any data is read."""
    from omni_flows.model.train.config import TrainingConfigError
    from omni_flows.training_data import (
        check_mongodb_datasets,
        export_mongodb_datasets,
        uses_mongodb,
    )

    cfg = load_config(path)
    if max_steps is not None and max_steps < 1:
        raise TrainingConfigError(f"--max-steps {max_steps}: give 1 or more")
    check_mongodb_datasets(cfg)  # collections and filters, before the database is reached
    check_tasks(cfg)
    if uses_mongodb(cfg):
        from omni_flows.stores import connect_database

        cfg = export_mongodb_datasets(cfg, connect_database(settings))
    if resume is not None:
        cfg.resume = str(resume)
    if max_steps is not None:
        cfg.max_steps = max_steps
    return cfg
