"""The network to train: a new one from a config, or a checkpoint to fine-tune.

Fine-tuning appends tasks with ``OmniNet.append_task`` (copied from a reference
task, so the new task starts out predicting exactly what its source predicts,
or zero-initialised) and can freeze every universal parameter.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..config import ModelConfig
from ..network import OmniNet
from ..pretrained import load_model
from .config import ModelSource, TrainingConfigError
from .statistics import DataStatistics


def build_model(source: ModelSource, dtype: torch.dtype,
                statistics: Callable[[ModelConfig], DataStatistics] | None) -> tuple[OmniNet, DataStatistics | None]:
    """The model, and the statistics applied to it (None when none were)."""
    use_stats = source.use_statistics if source.use_statistics is not None else source.checkpoint is None
    stats = None
    if source.checkpoint is not None:
        model = load_model(source.checkpoint, dtype=dtype)
    else:
        try:
            config = ModelConfig.from_dict(dict(source.config))
        except Exception as exc:
            raise TrainingConfigError(f"model.config: {exc}") from exc
        if use_stats and statistics is not None:
            stats = statistics(config)
            config.avg_num_neighbors = [stats.avg_num_neighbors] * config.num_interactions
        model = OmniNet(config).to(dtype)
    for entry in source.append_tasks:
        unknown = set(entry) - {"name", "copy_from"}
        if unknown or "name" not in entry:
            raise TrainingConfigError(f"model.append_tasks entries need 'name' (and may have 'copy_from'); got {entry}")
        model.append_task(entry["name"], entry.get("copy_from"))
    if use_stats and statistics is not None:
        stats = stats or statistics(model.config)
        apply_statistics(model, stats, only_new=source.checkpoint is not None,
                         new_tasks=[e["name"] for e in source.append_tasks])
    if source.freeze_universal:
        for p in model.parameter_groups()["universal"]:
            p.requires_grad_(False)
    return model.train(), stats


@torch.no_grad()
def apply_statistics(model: OmniNet, stats: DataStatistics, only_new: bool, new_tasks: list[str]) -> None:
    """Set energy shifts (and, for a new model, the force scale) from the data.

    A fine-tuned checkpoint keeps its trained rows; only appended tasks get
    shifts fitted to their data.
    """
    rows = range(model.energy_shift.shape[0]) if not only_new else [model.task_index(t) for t in new_tasks]
    for t in rows:
        if t < stats.shifts.shape[0] and stats.shifts[t].abs().sum() > 0:
            model.energy_shift[t] = stats.shifts[t].to(model.energy_shift.dtype)
    if not only_new:
        model.energy_scale.fill_(stats.force_rms)
