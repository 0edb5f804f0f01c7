"""Losses on per-atom energy, forces and stress, and per-task error metrics.

Every term is a weighted *sum* over the rows that carry a label, divided by the
number of such rows in the whole (all-rank) batch. Dividing by the global count
makes the DDP loss exactly the single-process loss of the same batch.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ..graph import AtomGraph
from .batch import EV_A3_TO_GPA, Labels
from .config import LossConfig

TERMS = ("energy", "force", "stress")


def row_loss(kind: str, diff: torch.Tensor, delta: float) -> torch.Tensor:
    """Loss of each row of ``diff`` (R, C); l2mae is the row's Euclidean norm."""
    if kind == "mse":
        return diff.pow(2).mean(-1)
    if kind == "mae":
        return diff.abs().mean(-1)
    if kind == "huber":
        return F.huber_loss(diff, torch.zeros_like(diff), reduction="none", delta=delta).mean(-1)
    return torch.linalg.vector_norm(diff, dim=-1)  # l2mae


def differences(
    out: dict, graph: AtomGraph, labels: Labels, energy_per_atom: bool = True
) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """term -> (diff rows, their data-set weights, their task index), labelled rows only.
    The energy row is per atom, or the total energy's error with ``energy_per_atom=False``."""
    e = labels.energy_mask
    diff_e = out["energy"] - labels.energy
    if energy_per_atom:
        diff_e = diff_e / labels.num_atoms
    res = {
        "energy": (
            diff_e[e].unsqueeze(-1),
            labels.weights[e, 0],
            labels.task[e],
        )
    }
    f = labels.force_mask
    if "forces" in out:  # not computed for a batch without force labels
        atom_graph = graph.batch[f]
        res["force"] = (
            (out["forces"] - labels.forces)[f],
            labels.weights[atom_graph, 1],
            labels.task[atom_graph],
        )
    s = labels.stress_mask
    if "stress" in out and bool(s.any()):
        diff = (out["stress"] - labels.stress)[s].reshape(-1, 9) * EV_A3_TO_GPA
        res["stress"] = (diff, labels.weights[s, 2], labels.task[s])
    return res


def label_counts(labels: Labels) -> torch.Tensor:
    """Rows carrying each label (energy, force, stress) in this rank's batch."""
    return torch.stack(
        [labels.energy_mask.sum(), labels.force_mask.sum(), labels.stress_mask.sum()]
    ).double()


def data_loss(
    diffs: dict, counts: torch.Tensor, cfg: LossConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """sum_k w_k * sum(rows of k) / count_k(global batch); also each unweighted term."""
    weights = {"energy": cfg.energy_weight, "force": cfg.force_weight, "stress": cfg.stress_weight}
    total, terms = None, {}
    for k, name in enumerate(TERMS):
        if name not in diffs or counts[k] == 0:
            continue
        diff, w, _ = diffs[name]
        term = (row_loss(cfg.kind, diff, cfg.huber_delta) * w).sum() / counts[k].to(diff.dtype)
        terms[name] = term.detach()
        total = weights[name] * term if total is None else total + weights[name] * term
    if total is None:  # nothing labelled on this rank: a zero that still reaches every parameter
        total = sum(d[0].sum() for d in diffs.values()) * 0.0
    return total, terms


class TaskMetrics:
    """Sums of absolute errors per task; ``reduce`` them across ranks, then ``summary``."""

    COLS = ("e_abs", "e_n", "f_abs", "f_n", "s_abs", "s_n")

    def __init__(self, tasks: list[str]) -> None:
        self.tasks = tasks
        self.sums = torch.zeros(len(tasks), len(self.COLS), dtype=torch.float64)

    def add(self, diffs: dict) -> None:
        for col, name in ((0, "energy"), (2, "force"), (4, "stress")):
            if name not in diffs:
                continue
            diff, _, task = diffs[name]
            diff = diff.detach().double().cpu()
            task = task.cpu()
            self.sums[:, col].index_add_(0, task, diff.abs().sum(-1))
            self.sums[:, col + 1].index_add_(
                0, task, torch.full_like(task, diff.shape[-1], dtype=torch.float64)
            )

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for t, name in enumerate(self.tasks):
            s = self.sums[t]
            if s[1] == 0 and s[3] == 0:
                continue
            e, f, st = (float(s[a] / s[a + 1]) if s[a + 1] > 0 else float("nan") for a in (0, 2, 4))
            out[name] = {
                "energy_mae_mev_atom": 1000 * e,
                "force_mae_mev_a": 1000 * f,
                "stress_mae_gpa": st,
            }
        return out
