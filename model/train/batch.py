"""Many cached structures -> one batched :class:`AtomGraph` plus its labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UnknownElementError
from ..graph import AtomGraph

EV_A3_TO_GPA = 160.21766208  # 1 eV/A^3 in GPa


@dataclass
class Item:
    """One structure of the training mix: data set ``source``, frame ``index``."""

    source: int
    index: int


@dataclass
class Labels:
    """Reference values of a batch; the masks say which labels exist (and count)."""

    energy: torch.Tensor  # (B,) eV
    energy_mask: torch.Tensor  # (B,) bool
    forces: torch.Tensor  # (N, 3) eV/A
    force_mask: torch.Tensor  # (N,) bool: labelled and free
    stress: torch.Tensor  # (B, 3, 3) eV/A^3, ASE sign
    stress_mask: torch.Tensor  # (B,) bool
    num_atoms: torch.Tensor  # (B,)
    weights: torch.Tensor  # (B, 3) energy/force/stress weight of each structure's data set
    task: torch.Tensor  # (B,)

    def to(self, device=None, dtype=None) -> Labels:
        def move(t):
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return Labels(**{k: move(v) for k, v in self.__dict__.items()})


def species_lookup(species: list[str]) -> np.ndarray:
    """Atomic number -> index in the model's species list (-1: unknown)."""
    from ase.data import atomic_numbers

    table = np.full(119, -1, dtype=np.int64)
    for k, s in enumerate(species):
        table[atomic_numbers[s]] = k
    return table


def collate(
    frames: list[dict],
    tasks: list[int],
    weights: list[tuple[float, float, float]],
    lookup: np.ndarray,
    free_atoms_only: bool,
    dtype: torch.dtype,
) -> tuple[AtomGraph, Labels]:
    species = lookup[np.concatenate([f["numbers"] for f in frames]).astype(np.int64)]
    if (species < 0).any():
        from ase.data import chemical_symbols

        bad = sorted({chemical_symbols[z] for f in frames for z in f["numbers"] if lookup[z] < 0})
        raise UnknownElementError(
            f"training data hold element(s) {bad} that the model does not know"
        )
    natoms = np.array([len(f["numbers"]) for f in frames])
    offsets = np.concatenate([[0], np.cumsum(natoms)[:-1]])
    edges = np.concatenate([f["edges"].astype(np.int64) + o for f, o in zip(frames, offsets)]).T
    forces = np.concatenate([f["forces"] for f in frames])
    force_mask = np.isfinite(forces).all(1)
    if free_atoms_only:
        force_mask &= np.concatenate([f["free"] for f in frames])
    # a data set with force_weight 0 is energy-only: its forces are not labels at all, so a
    # batch of such structures needs no second-order backward pass
    force_mask &= np.repeat(np.array([w[1] != 0 for w in weights]), natoms)
    energy = np.array([float(f["energy"]) for f in frames])
    stress = np.stack([f["stress"] for f in frames])
    floats = {"dtype": dtype}
    graph = AtomGraph(
        positions=torch.tensor(np.concatenate([f["positions"] for f in frames]), **floats),
        species=torch.from_numpy(species),
        cell=torch.tensor(np.stack([f["cell"] for f in frames]), **floats),
        edge_index=torch.from_numpy(np.ascontiguousarray(edges)),
        cell_shifts=torch.tensor(np.concatenate([f["shifts"] for f in frames]), **floats),
        batch=torch.from_numpy(np.repeat(np.arange(len(frames)), natoms)),
        task=torch.tensor(tasks, dtype=torch.long),
        volume=torch.tensor(np.array([float(f["volume"]) for f in frames]), **floats),
    )
    labels = Labels(
        energy=torch.tensor(np.nan_to_num(energy), **floats),
        energy_mask=torch.from_numpy(np.isfinite(energy)),
        forces=torch.tensor(np.nan_to_num(forces), **floats),
        force_mask=torch.from_numpy(force_mask),
        stress=torch.tensor(np.nan_to_num(stress), **floats),
        stress_mask=torch.from_numpy(
            np.isfinite(stress).all((1, 2)) & np.array([w[2] != 0 for w in weights])
        ),
        num_atoms=torch.from_numpy(natoms),
        weights=torch.tensor(weights, **floats),
        task=torch.tensor(tasks, dtype=torch.long),
    )
    return graph, labels
