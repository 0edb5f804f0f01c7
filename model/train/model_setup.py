"""The network to train: a new one from a config, or a checkpoint to fine-tune.

Fine-tuning can add task adapters (``OmniNet.add_adapters``, zero corrections),
appends tasks with ``OmniNet.append_task`` (copied from a reference task, adapters
included, so the new task starts out predicting exactly what its source predicts,
or zero-initialised) and can freeze every universal parameter.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..config import ModelConfig
from ..errors import CheckpointError
from ..network import OmniNet
from ..pretrained import load_model
from .config import ModelSource, TrainingConfigError
from .statistics import DataStatistics


def build_model(
    source: ModelSource,
    dtype: torch.dtype,
    statistics: Callable[[ModelConfig], DataStatistics] | None,
) -> tuple[OmniNet, DataStatistics | None]:
    """The model, and the statistics applied to it (None when none were)."""
    use_stats = use_statistics(source)
    stats = None
    if source.checkpoint is not None:
        model = load_model(source.checkpoint, dtype=dtype)
    else:
        config = new_model_config(source.config)
        if use_stats and statistics is not None:
            stats = statistics(config)
            config.avg_num_neighbors = [stats.avg_num_neighbors] * config.num_interactions
        model = OmniNet(config).to(dtype)
    if source.adapter_rank:
        try:
            model.add_adapters(source.adapter_rank, source.adapter_layers)
        except CheckpointError as exc:
            raise TrainingConfigError(f"model.adapter_rank: {exc}") from exc
    for entry in source.append_tasks:
        unknown = set(entry) - {"name", "copy_from"}
        if unknown or "name" not in entry:
            raise TrainingConfigError(
                f"model.append_tasks entries need 'name' (and may have 'copy_from'); got {entry}"
            )
        model.append_task(entry["name"], entry.get("copy_from"))
    if stats is not None:  # a fine-tuned model refits its new tasks' shifts on residuals instead
        apply_statistics(model, stats)
    if source.freeze_universal:
        for p in model.parameter_groups()["universal"]:
            p.requires_grad_(False)
    return model.train(), stats


def new_model_config(raw: dict) -> ModelConfig:
    """ModelConfig of a new model; per-interaction lists may be left out (set from the data)."""
    raw = {"avg_num_neighbors": 1.0, "self_connection": "linear", **raw}
    try:
        return ModelConfig.from_dict(raw)
    except Exception as exc:
        raise TrainingConfigError(f"model.config: {exc}") from exc


def use_statistics(source: ModelSource) -> bool:
    return source.use_statistics if source.use_statistics is not None else source.checkpoint is None


@torch.no_grad()
def apply_statistics(model: OmniNet, stats: DataStatistics) -> None:
    """Energy shifts of every task that has energies, and the force scale, from the data:
    each task's own RMS force with ``per_task_scale``, else one over all tasks."""
    for t in range(model.energy_shift.shape[0]):
        if stats.shifts[t].abs().sum() > 0:
            model.energy_shift[t] = stats.shifts[t].to(model.energy_shift.dtype)
    if model.config.per_task_scale:
        model.energy_scale.copy_(stats.task_force_rms[:, None].expand_as(model.energy_scale))
    else:
        model.energy_scale.fill_(stats.force_rms)
