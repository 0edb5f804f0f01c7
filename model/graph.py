"""Atomic structures as graphs: vesin neighbour lists, validation, batching.

Validation happens here, before any tensor work: unknown elements, NaN or
infinite positions, periodic directions without a cell, overlapping atoms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from vesin import NeighborList

from .errors import InvalidStructureError, UnknownElementError

MIN_DISTANCE = 0.1  # Angstrom; closer atoms are a broken structure, not physics


@dataclass
class AtomGraph:
    """One or several structures as one graph.

    ``edge_index[0]`` is the centre atom i, ``edge_index[1]`` the neighbour j; the
    edge vector is r_j - r_i + shift @ cell. Messages flow from j to i.
    """

    positions: torch.Tensor  # (N, 3)
    species: torch.Tensor  # (N,) index into the model's species list
    cell: torch.Tensor  # (B, 3, 3)
    edge_index: torch.Tensor  # (2, E)
    cell_shifts: torch.Tensor  # (E, 3) integer multiples of the cell vectors
    batch: torch.Tensor  # (N,) graph of each atom
    task: torch.Tensor  # (B,) task index of each graph
    volume: torch.Tensor  # (B,) 0 for structures without a cell

    @property
    def num_graphs(self) -> int:
        return self.cell.shape[0]

    @property
    def num_atoms_total(self) -> int:
        return self.positions.shape[0]

    def edge_vectors(self) -> torch.Tensor:
        i, j = self.edge_index
        shift = torch.einsum("ea,eab->eb", self.cell_shifts, self.cell[self.batch[i]])
        return self.positions[j] - self.positions[i] + shift

    def to(self, device=None, dtype=None) -> "AtomGraph":
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return AtomGraph(**{k: move(v) for k, v in self.__dict__.items()})


def check_structure(atoms: Atoms, species: list[str]) -> None:
    """Raise a clear error for anything the model cannot evaluate."""
    pos = atoms.get_positions()
    if len(atoms) == 0:
        raise InvalidStructureError("the structure has no atoms")
    bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
    if bad.size:
        raise InvalidStructureError(
            f"{atoms.get_chemical_formula()}: positions of atoms {bad[:10].tolist()} are NaN or "
            "infinite; fix the structure (a diverged relaxation?) before evaluating it"
        )
    known = set(species)
    unknown = sorted(set(atoms.get_chemical_symbols()) - known)
    if unknown:
        raise UnknownElementError(
            f"element(s) {unknown} in {atoms.get_chemical_formula()} are not known to this model; "
            f"it knows {len(species)} elements: {' '.join(species)}"
        )
    pbc = np.asarray(atoms.pbc, dtype=bool)
    lengths = atoms.cell.lengths()
    if (pbc & (lengths < 1e-8)).any():
        raise InvalidStructureError(
            f"{atoms.get_chemical_formula()} is periodic along axes {np.flatnonzero(pbc).tolist()} "
            "but has no cell vector there; set atoms.cell or atoms.pbc = False"
        )
    if pbc.all() and abs(atoms.cell.volume) < 1e-8:
        raise InvalidStructureError(f"{atoms.get_chemical_formula()}: the periodic cell has zero volume")


def _box_for_vesin(atoms: Atoms) -> np.ndarray:
    """vesin wants a non-degenerate box: missing (non-periodic) cell vectors become
    orthogonal vectors spanning the atoms; no images are ever made along them."""
    missing = atoms.cell.lengths() < 1e-8
    box = atoms.cell.complete().array.copy()
    extent = np.ptp(atoms.get_positions(), axis=0).max() + 1.0
    box[missing] *= extent
    return box


def neighbor_list(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list (i, j, integer cell shifts S, distances) within ``cutoff``."""
    pbc = [bool(p) for p in atoms.pbc]
    pos = atoms.get_positions()
    if not any(pbc):
        box, periodic = np.zeros((3, 3)), False
    else:
        box, periodic = _box_for_vesin(atoms), pbc
    calc = NeighborList(cutoff=cutoff, full_list=True)
    i, j, shifts, d = calc.compute(pos, box, periodic, quantities="ijSd")
    return i.astype(np.int64), j.astype(np.int64), shifts.astype(np.int64), d


def build_graph(
    structures: list[Atoms],
    species: list[str],
    cutoff: float,
    tasks: list[int] | int = 0,
    dtype: torch.dtype = torch.float32,
) -> AtomGraph:
    """Validate and batch ``structures`` into one :class:`AtomGraph`."""
    index = {s: k for k, s in enumerate(species)}
    if isinstance(tasks, int):
        tasks = [tasks] * len(structures)
    pos, spec, cells, edges, shifts, batch, volumes = [], [], [], [], [], [], []
    offset = 0
    for g, atoms in enumerate(structures):
        check_structure(atoms, species)
        i, j, s, d = neighbor_list(atoms, cutoff)
        order = np.argsort(i, kind="stable")  # edges grouped by centre (neighbour slots)
        i, j, s, d = i[order], j[order], s[order], d[order]
        close = d < MIN_DISTANCE
        if close.any():
            a, b = int(i[close][0]), int(j[close][0])
            raise InvalidStructureError(
                f"{atoms.get_chemical_formula()}: atoms {a} and {b} are {d[close][0]:.3f} A apart "
                f"(closer than {MIN_DISTANCE} A); remove duplicated or overlapping atoms"
            )
        pos.append(atoms.get_positions())
        spec.append([index[x] for x in atoms.get_chemical_symbols()])
        has_cell = abs(atoms.cell.volume) > 1e-8
        cells.append(np.array(atoms.cell.array) if any(atoms.pbc) or has_cell else np.zeros((3, 3)))
        volumes.append(abs(atoms.cell.volume) if has_cell else 0.0)
        edges.append(np.stack([i, j]) + offset)
        shifts.append(s)
        batch.append(np.full(len(atoms), g))
        offset += len(atoms)
    return AtomGraph(
        positions=torch.tensor(np.concatenate(pos), dtype=dtype),
        species=torch.tensor(np.concatenate(spec), dtype=torch.long),
        cell=torch.tensor(np.stack(cells), dtype=dtype),
        edge_index=torch.tensor(np.concatenate(edges, axis=1), dtype=torch.long),
        cell_shifts=torch.tensor(np.concatenate(shifts), dtype=dtype),
        batch=torch.tensor(np.concatenate(batch), dtype=torch.long),
        task=torch.tensor(tasks, dtype=torch.long),
        volume=torch.tensor(volumes, dtype=dtype),
    )
