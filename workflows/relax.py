"""The one relaxation engine of the workflows: ``relax_batch`` for 1 to N structures.

Every relaxation of a job (bulk with its cell, clean slab, placements, gas
molecules, MOF complexes) goes through :func:`relax`: one batched graph per
optimizer step (``omni_flows.model.batch_relax``), an ASE optimizer state per
structure (BFGS or FIRE, the registry of ``omni_flows.model.header``), one
convergence rule: the largest force on a free atom (FixAtoms honoured), and with
``relax_cell`` the cell forces of ASE's FrechetCellFilter too, at most ``fmax``.
A structure relaxed alone and in a batch of several gets the same result.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from ase import Atoms
from threadpoolctl import threadpool_limits

from .structures.geometry import free_mask
from .settings import DEFAULT_FMAX, DEFAULT_OPTIMIZER, DEFAULT_STEPS, MLIPSettings

__all__ = ["DEFAULT_FMAX", "DEFAULT_OPTIMIZER", "DEFAULT_STEPS", "RelaxOutcome",
           "get_calculator", "relax", "relax_structures"]


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
    energies: list[float] | None = None  # eV, one per evaluated step


@lru_cache(maxsize=4)
def _calculator(model: str, task: str | None, device: str, backend: str, dtype: str):
    from omni_flows.model import OmniCalculator

    import torch

    return OmniCalculator(model, task=task, device=device, backend=backend,
                          dtype=getattr(torch, dtype))


def get_calculator(settings: MLIPSettings | str, task: str | None = None,
                   device: str = "auto", backend: str = "e3nn"):
    """One calculator per (model, task, resolved device, backend, dtype) in a process:
    loading costs seconds, and "auto" on a CPU machine is the same model as "cpu".
    Takes the settings, or (for scripts) a model name with task, device and backend."""
    from omni_flows.model.inference import resolve_device

    if isinstance(settings, MLIPSettings):
        model, task, device, backend = (settings.model, settings.task, settings.device,
                                        settings.backend)
        dtype = settings.dtype
    else:
        model, dtype = settings, "float32"
    return _calculator(model, task or None, str(resolve_device(device)), backend, dtype)


def max_free_force(atoms: Atoms, forces: np.ndarray) -> float:
    """Largest force norm on an atom that is not fixed, eV/A."""
    free = free_mask(atoms)
    return float(np.linalg.norm(forces[free], axis=1).max()) if free.any() else 0.0


def optimizer_threads():
    """numpy's BLAS on one thread while an optimizer runs: OpenBLAS threads spin after
    each small Hessian eigh/solve and starve torch's OpenMP threads (measured: model calls
    2.2x slower under ASE's BFGS on 2 CPU cores)."""
    return threadpool_limits(limits=1, user_api="blas")


def relax(structures: list[Atoms], settings: MLIPSettings, relax_cell: bool = False,
          single_point: bool = False) -> list[RelaxOutcome]:
    """Relax ``structures`` (FixAtoms honoured) with ``settings``; ``single_point`` only
    evaluates them (energy, forces, stress) and reports whether fmax holds."""
    from omni_flows.model.batch_relax import relax_batch

    calc = get_calculator(settings)
    if single_point:
        return _evaluate(list(structures), calc.model, settings)
    with optimizer_threads():
        results = relax_batch(list(structures), calc.model, settings.task, fmax=settings.fmax,
                              steps=settings.steps,
                              optimizer=settings.optimizer, relax_cell=relax_cell)
    return [
        RelaxOutcome(r.atoms, float(r.energy), np.asarray(r.forces), bool(r.converged),
                     int(r.nsteps), float(r.trajectory_energies[0]), r.stress,
                     [float(e) for e in r.trajectory_energies])
        for r in results
    ]


def _evaluate(structures: list[Atoms], model, settings: MLIPSettings) -> list[RelaxOutcome]:
    """Energy, forces (constraints applied, as ASE gives them) and stress, one batched graph."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from omni_flows.model.inference import predict

    outcomes = []
    for atoms, r in zip(structures, predict(structures, model, settings.task)):
        atoms = atoms.copy()
        atoms.calc = SinglePointCalculator(atoms, energy=r["energy"], forces=r["forces"])
        forces = atoms.get_forces()  # FixAtoms zeroes the fixed atoms' forces
        atoms.calc = None
        outcomes.append(RelaxOutcome(atoms, float(r["energy"]), forces,
                                     max_free_force(atoms, forces) <= settings.fmax, 0,
                                     float(r["energy"]), r.get("stress"), [float(r["energy"])]))
    return outcomes


def relax_structures(
    structures: list[Atoms],
    model: str,
    task: str | None,
    device: str = "auto",
    fmax: float = DEFAULT_FMAX,
    steps: int = DEFAULT_STEPS,
    relax_cell: bool = False,
    optimizer: str = DEFAULT_OPTIMIZER,
    backend: str = "e3nn",
) -> list[RelaxOutcome]:
    """:func:`relax` for scripts that hold loose settings (benchmarks); ``steps=0`` is a
    single point."""
    settings = MLIPSettings(model=model, task=task or None, device=device, fmax=fmax,
                            steps=max(steps, 1), optimizer=optimizer, backend=backend)
    return relax(structures, settings, relax_cell=relax_cell, single_point=steps == 0)
