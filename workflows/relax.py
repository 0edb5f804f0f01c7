"""Relaxing a list of structures with the MLIP inside a job: batched where the model offers it.

The Makers (:mod:`.relax_maker`) relax one structure per job through atomate2's
``AseRelaxer``: the same ASE optimizer, filter and criterion as here, so the
same energies.

``omni_flows.model.batch_relax.relax_batch`` (one graph for many structures) is
used when it is importable; otherwise each structure is relaxed on its own with
an ASE optimizer (BFGS by default), same force criterion, same fixed atoms.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE
from threadpoolctl import threadpool_limits

# eV/A: the force criterion of OC20 (atomate2's AseRelaxer defaults to a looser 0.1)
DEFAULT_FMAX = 0.05
DEFAULT_STEPS = 300
OPTIMIZERS = {"FIRE": FIRE, "BFGS": BFGS}
# BFGS: on adsorbate/slab relaxations it needs 4x fewer steps than FIRE here (O/Cu(111): 7 vs 29)
DEFAULT_OPTIMIZER = "BFGS"


@dataclass
class RelaxOutcome:
    """A relaxed structure with its energy (eV), forces (eV/A) and whether fmax was reached."""

    atoms: Atoms
    energy: float
    forces: np.ndarray
    converged: bool
    nsteps: int
    initial_energy: float | None = None
    stress: np.ndarray | None = None


@lru_cache(maxsize=4)
def get_calculator(model: str, task: str, device: str = "auto", backend: str = "e3nn"):
    """One calculator per (model, task, device, backend) in a process: loading costs seconds."""
    from omni_flows.model import OmniCalculator

    return OmniCalculator(model, task=task, device=device, backend=backend)


def fixed_indices(atoms: Atoms) -> list[int]:
    """Indices held by FixAtoms constraints."""
    return sorted(
        int(i) for c in atoms.constraints if isinstance(c, FixAtoms) for i in c.get_indices()
    )


def max_free_force(atoms: Atoms, forces: np.ndarray) -> float:
    """Largest force norm on an atom that is not fixed, eV/A."""
    free = np.ones(len(atoms), bool)
    free[fixed_indices(atoms)] = False
    return float(np.linalg.norm(forces[free], axis=1).max()) if free.any() else 0.0


def _batch_relaxer():
    try:
        from omni_flows.model.batch_relax import relax_batch
    except ImportError:
        return None
    return relax_batch


def _relax_one(atoms, calc, fmax, steps, relax_cell, optimizer) -> RelaxOutcome:
    atoms = atoms.copy()
    atoms.calc = calc
    e0 = atoms.get_potential_energy()
    target = FrechetCellFilter(atoms) if relax_cell else atoms
    opt = OPTIMIZERS[optimizer](target, logfile=None)
    nsteps = 0
    if steps > 0:
        opt.run(fmax=fmax, steps=steps)
        nsteps = opt.nsteps
    forces = atoms.get_forces()
    stress = atoms.get_stress() if atoms.cell.rank == 3 and atoms.pbc.all() else None
    energy = float(atoms.get_potential_energy())
    atoms.calc = None
    return RelaxOutcome(atoms, energy, forces, max_free_force(atoms, forces) <= fmax, nsteps, e0,
                        stress)


def optimizer_threads():
    """numpy's BLAS on one thread while an optimizer runs: OpenBLAS threads spin after
    each small Hessian eigh/solve and starve torch's OpenMP threads (measured: model calls
    2.2x slower under ASE's BFGS on 2 CPU cores)."""
    return threadpool_limits(limits=1, user_api="blas")


def relax_structures(
    structures: list[Atoms],
    model: str,
    task: str,
    device: str = "auto",
    fmax: float = DEFAULT_FMAX,
    steps: int = DEFAULT_STEPS,
    relax_cell: bool = False,
    optimizer: str = DEFAULT_OPTIMIZER,
    backend: str = "e3nn",
) -> list[RelaxOutcome]:
    """Relax ``structures`` (FixAtoms honoured); ``steps=0`` is a single point."""
    calc = get_calculator(model, task, device, backend)
    batch = _batch_relaxer()
    with optimizer_threads():
        if batch is not None and steps > 0 and len(structures) > 1:
            results = batch(structures, calc.model, task, fmax=fmax, steps=steps,
                            optimizer=optimizer, relax_cell=relax_cell)
            return [
                RelaxOutcome(r.atoms, float(r.energy), np.asarray(r.forces), bool(r.converged),
                             int(r.nsteps), r.trajectory_energies[0], r.stress)
                for r in results
            ]
        return [_relax_one(a, calc, fmax, steps, relax_cell, optimizer) for a in structures]
