"""The committee's cheap alternative: how far a structure's atoms lie from the training data
in the model's own feature space.

Each atom's final node features (the scalars after the last interaction, which the readout
turns into its energy) are standardised with the training atoms' mean and deviation; an
atom's distance is the Euclidean distance to its nearest training atom, and a structure's
score is its largest atom distance. The maximum, not the mean: an adsorbate is 1-3 atoms of
a 40-50-atom slab, and a mean over atoms would dilute them 1:20. One forward pass per
structure and no extra training; the score is in feature units, not eV, so it ranks
structures and needs a fitted map to become a sigma (benchmarks/train_committee.py compares
its Spearman with |error| to the committee's).
"""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms

from .graph import build_graph
from .memory_model import plan_batches
from .network import OmniNet


def atom_features(model: OmniNet, structures: list[Atoms], task: str | None,
                  max_atoms: int | None = None) -> list[np.ndarray]:
    """The final node features of every atom, one (atoms, features) array per structure."""
    task_idx = model.task_index(task)
    param = next(model.parameters())
    captured = []
    hook = model.interactions[-1].register_forward_hook(
        lambda module, inputs, output: captured.append(output["0e"][:, 0, :]))
    out: list[np.ndarray] = [None] * len(structures)
    try:
        for batch in plan_batches(model, structures, max_atoms):
            group = [structures[i] for i in batch]
            graph = build_graph(group, model.config.species, model.config.cutoff, task_idx,
                                dtype=param.dtype).to(param.device)
            captured.clear()
            with torch.no_grad():
                model(graph, compute_forces=False)
            x = captured[0].double().cpu().numpy()
            ends = np.cumsum([len(a) for a in group])
            for i, part in zip(batch, np.split(x, ends[:-1])):
                out[i] = part
    finally:
        hook.remove()
    return out


class LatentDistance:
    """``LatentDistance(model, task, training_structures).score(structures)``: per structure,
    the largest standardised feature distance of one of its atoms to the nearest training atom."""

    def __init__(self, model: OmniNet, task: str | None, training: list[Atoms]) -> None:
        self.model, self.task = model, task
        bank = np.concatenate(atom_features(model, training, task))
        self.mean, self.std = bank.mean(0), bank.std(0) + 1e-8
        self.bank = (bank - self.mean) / self.std
        self.bank_sq = (self.bank ** 2).sum(1)

    def atom_distances(self, features: np.ndarray) -> np.ndarray:
        z = (features - self.mean) / self.std
        d2 = (z ** 2).sum(1)[:, None] - 2 * z @ self.bank.T + self.bank_sq[None, :]
        return np.sqrt(np.clip(d2.min(1), 0.0, None))

    def score(self, structures: list[Atoms]) -> np.ndarray:
        return np.array([self.atom_distances(f).max()
                         for f in atom_features(self.model, structures, self.task)])
