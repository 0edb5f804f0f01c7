"""Test structures covering the cases a potential must get right."""

import numpy as np
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111, molecule


def co_on_pt111() -> Atoms:
    """38 atoms: 3x3x4 Pt(111) with CO on top (C down), bottom layers as in a slab calc."""
    slab = fcc111("Pt", (3, 3, 4), vacuum=8.0)
    co = Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]])
    add_adsorbate(slab, co, 1.85, "ontop")
    slab.rattle(0.02, seed=1)
    return slab  # 36 Pt + C + O = 38 atoms


def cu_bulk() -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    atoms.rattle(0.04, seed=2)
    return atoms


def water() -> Atoms:
    atoms = molecule("H2O")  # no cell, no periodicity
    atoms.positions[0] += [0.02, -0.01, 0.03]
    return atoms


def small_cell() -> Atoms:
    """One-atom primitive cell, far smaller than the cutoff: many periodic images."""
    atoms = bulk("Pt", "fcc", a=3.97)
    return atoms


def wire() -> Atoms:
    """Mixed periodicity: a Cu chain periodic along z only, no cell in x and y."""
    atoms = Atoms("Cu3", positions=[[0, 0, 0], [0.1, 0.05, 2.4], [0.0, -0.08, 4.9]],
                  cell=[0, 0, 7.3], pbc=[False, False, True])
    return atoms


def cu_500() -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (5, 5, 5)
    atoms.rattle(0.03, seed=5)
    return atoms  # 500 atoms


def cu_o_slab() -> Atoms:
    slab = fcc111("Cu", (2, 2, 3), vacuum=6.0)
    add_adsorbate(slab, "O", 1.3, "fcc")
    slab.rattle(0.05, seed=3)
    return slab


PARITY_STRUCTURES = {
    "pt111_co": co_on_pt111,
    "cu_bulk": cu_bulk,
    "water": water,
    "small_cell": small_cell,
    "wire": wire,
    "cu_500": cu_500,
}


def random_rotation(seed: int = 0) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q
