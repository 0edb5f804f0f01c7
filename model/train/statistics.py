"""Data statistics for a model trained from scratch, identical on every rank.

Each rank accumulates sums over its share of the training structures; the sums
are added across ranks before anything is solved, so every rank ends with the
same numbers as a single process reading all of the data.

- per-element energy shifts of each task: least squares E ~ sum_e n_e * shift_e
  (normal equations; elements absent from a task get 0),
- force scale: RMS of the force components (eV/A), over all data and per task
  (a model with ``per_task_scale`` takes each task's own; a task without
  forces takes the overall one),
- average number of neighbours within the cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import distributed as dist
from .graph_cache import GraphStore


@dataclass
class DataStatistics:
    shifts: torch.Tensor  # (num_tasks, num_species) eV
    force_rms: float  # eV/A, all training data
    task_force_rms: torch.Tensor  # (num_tasks,) eV/A; force_rms for tasks without forces
    avg_num_neighbors: float


def compute_statistics(
    stores: list[GraphStore], tasks: list[int], num_tasks: int, lookup: np.ndarray, num_species: int
) -> DataStatistics:
    s = num_species
    xtx = torch.zeros(num_tasks, s, s, dtype=torch.float64)
    xty = torch.zeros(num_tasks, s, dtype=torch.float64)
    sums = torch.zeros(2, dtype=torch.float64)  # edges, atoms
    force_sums = torch.zeros(num_tasks, 2, dtype=torch.float64)  # sum f^2, force components
    rank, world = dist.rank(), dist.world_size()
    for store, task in zip(stores, tasks):
        for k in range(rank, len(store), world):  # this rank's share
            frame = store[k]
            counts = np.bincount(lookup[frame["numbers"].astype(np.int64)], minlength=s).astype(
                np.float64
            )
            sums[0] += len(frame["edges"])
            sums[1] += len(frame["numbers"])
            if np.isfinite(frame["energy"]):
                x = torch.from_numpy(counts)
                xtx[task] += torch.outer(x, x)
                xty[task] += x * float(frame["energy"])
            f = frame["forces"][np.isfinite(frame["forces"]).all(1)]
            force_sums[task, 0] += float((f**2).sum())
            force_sums[task, 1] += f.size
    for t in (xtx, xty, sums, force_sums):
        dist.all_sum(t)
    shifts = torch.stack([torch.linalg.pinv(xtx[t]) @ xty[t] for t in range(num_tasks)])
    total = force_sums.sum(0)
    force_rms = float((total[0] / total[1]).sqrt()) if total[1] > 0 else 1.0
    task_rms = (force_sums[:, 0] / force_sums[:, 1].clamp(min=1)).sqrt()
    task_rms = torch.where(force_sums[:, 1] > 0, task_rms, torch.full_like(task_rms, force_rms))
    return DataStatistics(shifts, force_rms, task_rms, float(sums[0] / max(float(sums[1]), 1.0)))


def residual_shifts(
    energies: list[tuple[np.ndarray, float, float]], num_species: int
) -> torch.Tensor:
    """Per-element shifts fitted to ``E_ref - E_model``, for a task appended to a trained model.

    ``energies``: this rank's (species counts, reference energy, model energy) triples;
    the normal equations are summed over ranks before solving.
    """
    xtx = torch.zeros(num_species, num_species, dtype=torch.float64)
    xty = torch.zeros(num_species, dtype=torch.float64)
    for counts, ref, pred in energies:
        x = torch.from_numpy(counts.astype(np.float64))
        xtx += torch.outer(x, x)
        xty += x * (ref - pred)
    dist.all_sum(xtx)
    dist.all_sum(xty)
    return torch.linalg.pinv(xtx) @ xty
