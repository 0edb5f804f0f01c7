"""Selective regularization: lambda/2 * ||W_task||^2 on chosen task-specific weights.

Keeping the task-specific corrections small forces the shared (universal) part
to carry one transferable energy surface for all tasks. By default only the
interaction blocks' task weights are penalised; the readout task weights and the
per-task energy shifts (which absorb each functional's reference energies) are free.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import OmniFlowsError
from ..network import OmniNet


def regularized_parameters(model: OmniNet, groups: list[str]) -> dict[str, nn.Parameter]:
    """Task-specific parameters whose name contains one of ``groups``."""
    chosen = {
        n: p for n, p in model.task_specific_parameters().items() if any(g in n for g in groups)
    }
    if groups and not chosen:
        raise OmniFlowsError(
            f"regularization.groups {groups} match no task-specific parameter; they are "
            f"{sorted(model.task_specific_parameters())}"
        )
    return chosen


def selective_l2(
    params: dict[str, nn.Parameter], weight: float, rows: list[int] | None = None
) -> torch.Tensor | None:
    """``weight / 2 * sum ||p||^2`` over the task rows ``rows`` (dim 0 of every task-specific
    parameter; None: all tasks); None when there is nothing to penalise."""
    if weight == 0 or not params:
        return None
    if rows is None:
        return 0.5 * weight * sum(p.pow(2).sum() for p in params.values())
    return 0.5 * weight * sum(p[rows].pow(2).sum() for p in params.values())
