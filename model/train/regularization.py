"""Selective regularization: lambda/2 * ||W_task||^2 on chosen task-specific weights.

Keeping the task-specific corrections small forces the shared (universal) part
to carry one transferable energy surface for all tasks. By default only the
interaction blocks' task weights and task adapters are penalised; the readout task
weights and the per-task energy shifts (which absorb each functional's reference
energies) are free.

An adapter is penalised through the correction it makes, ||A_t B_t||^2, the
analogue of a task weight's ||w_t||^2: zero for a fresh adapter (B = 0), whatever
its random A, so the penalty neither starts large nor pulls on A alone (with Adam,
a pull on A alone would move it by about lr per step while B is still zero).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import OmniFlowsError
from ..network import OmniNet


DOWN, UP = ".adapter_down.", ".adapter_up."  # an adapter's factors A and B (see linear.py)


def regularized_parameters(model: OmniNet, groups: list[str]) -> dict[str, nn.Parameter]:
    """Task-specific parameters whose name contains one of ``groups``; an adapter's two
    factors are chosen together."""
    params = model.task_specific_parameters()
    chosen = {n: p for n, p in params.items() if any(g in n for g in groups)}
    for n in list(chosen):
        for a, b in ((DOWN, UP), (UP, DOWN)):
            if a in n:
                chosen[n.replace(a, b)] = params[n.replace(a, b)]
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
    parameter; None: all tasks), with ``A_t B_t`` for an adapter's factors; None when there
    is nothing to penalise."""
    if weight == 0 or not params:
        return None
    total = 0.0
    for name, p in params.items():
        if DOWN in name:
            continue  # enters with its B
        if UP in name:
            p = torch.matmul(params[name.replace(UP, DOWN)], p)
        total = total + (p if rows is None else p[rows]).pow(2).sum()
    return 0.5 * weight * total
