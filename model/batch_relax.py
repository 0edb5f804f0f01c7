"""Relax many structures at once: one batched graph per step, an optimizer per structure.

Each structure keeps its own optimizer state (FIRE: velocity, time step,
mixing; BFGS: Hessian), is checked for convergence on its own, and leaves the
batch when converged, so a batch costs what its slowest member costs, not the
sum. Both updates follow ASE's (same parameters and order of operations), so
results match a sequential ``ase.optimize.FIRE`` or ``ase.optimize.BFGS`` run step
for step; the one difference: BFGS skips a Hessian update of non-positive curvature,
on which ASE's BFGS can stall.

The optimizers move ASE "optimizables" (ASE's own interface: ``get_x``, ``set_x``,
``get_gradient``), the atoms themselves or, with ``relax_cell``, a
``FrechetCellFilter`` around them; the batched model call hands each structure its
results through a calculator that only serves them. So constraints (FixAtoms, ...)
and the cell degrees of freedom behave exactly as under ASE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.filters import FrechetCellFilter
from ase.utils.abc import Optimizable

from .defaults import DEFAULT_FMAX, DEFAULT_OPTIMIZER, DEFAULT_STEPS
from .memory_model import evaluate_or_split, relaxation_batch_atoms
from .network import OmniNet

# ase.optimize.FIRE and ase.optimize.BFGS defaults
FIRE = dict(dt=0.1, maxstep=0.2, dtmax=1.0, nmin=5, finc=1.1, fdec=0.5, astart=0.1, fa=0.99)
BFGS = dict(maxstep=0.2, alpha=70.0)


@dataclass
class RelaxResult:
    atoms: Atoms  # relaxed structure (a copy; constraints kept)
    energy: float
    forces: np.ndarray  # constraints applied (zero on fixed atoms)
    converged: bool
    nsteps: int
    trajectory_energies: list[float] = field(default_factory=list)
    stress: np.ndarray | None = None  # eV/A^3, Voigt; with relax_cell


class _BatchedResults(Calculator):
    """Serves what the last batched model call gave for this structure."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def serve(self, result: dict) -> None:
        self.results = {"energy": result["energy"], "free_energy": result["energy"],
                        "forces": result["forces"], **({"stress": result["stress"]}
                                                       if "stress" in result else {})}

    def get_property(self, name, atoms=None, allow_calculation=True):
        return np.copy(self.results[name])  # callers (constraints) modify what they get


@dataclass
class _FireState:
    optimizable: Optimizable
    v: np.ndarray | None = None
    dt: float = FIRE["dt"]
    a: float = FIRE["astart"]
    n_pos: int = 0  # steps since the power was last negative
    nsteps: int = 0

    def step(self, f: np.ndarray) -> None:
        """One ase.optimize.FIRE step along the (flat) force ``f``."""
        p = FIRE
        if self.v is None:
            self.v = np.zeros_like(f)
        else:
            vf = np.vdot(f, self.v)
            if vf > 0.0:
                self.v = (1.0 - self.a) * self.v + self.a * f / np.sqrt(np.vdot(f, f)) * np.sqrt(
                    np.vdot(self.v, self.v))
                if self.n_pos > p["nmin"]:
                    self.dt = min(self.dt * p["finc"], p["dtmax"])
                    self.a *= p["fa"]
                self.n_pos += 1
            else:
                self.v[:] = 0.0
                self.a = p["astart"]
                self.dt *= p["fdec"]
                self.n_pos = 0
        self.v += self.dt * f
        dr = self.dt * self.v
        norm = np.sqrt(np.vdot(dr, dr))
        if norm > p["maxstep"]:
            dr = p["maxstep"] * dr / norm
        self.optimizable.set_x(self.optimizable.get_x() + dr)
        self.nsteps += 1


@dataclass
class _BFGSState:
    optimizable: Optimizable
    hessian: np.ndarray | None = None
    x0: np.ndarray | None = None
    f0: np.ndarray | None = None
    nsteps: int = 0

    def step(self, f: np.ndarray) -> None:
        """One ase.optimize.BFGS step: Hessian update, Newton step on |eigenvalues|,
        the whole step scaled down when a row (atom, cell vector) would move more
        than maxstep."""
        x, g = self.optimizable.get_x(), -f
        if self.hessian is None:
            self.hessian = np.eye(x.size) * BFGS["alpha"]
        else:
            dx = x - self.x0
            dg = g + self.f0  # gradient change
            # ASE updates whenever the atoms moved; we also require positive curvature
            # along the step, without which the update gives the Hessian a huge negative
            # eigenvalue, the steps along it vanish and the relaxation stalls for good
            # (seen on O/Cu(111): |F| 0.9 eV/A for 250 steps). Otherwise as ASE.
            if np.abs(dx).max() >= 1e-7 and dx @ dg > 0:
                hdx = self.hessian @ dx
                self.hessian += np.outer(dg, dg) / (dx @ dg) - np.outer(hdx, hdx) / (dx @ hdx)
        self.x0, self.f0 = x, f.copy()
        omega, vectors = np.linalg.eigh(self.hessian)
        dx = -vectors @ (g @ vectors / np.fabs(omega))
        longest = self.optimizable.gradient_norm(dx)
        if longest >= BFGS["maxstep"]:
            dx *= BFGS["maxstep"] / longest
        self.optimizable.set_x(x + dx)
        self.nsteps += 1


OPTIMIZERS = {"FIRE": _FireState, "BFGS": _BFGSState}


def relax_batch(
    structures: list[Atoms],
    model: OmniNet,
    task: str | None = None,
    fmax: float = DEFAULT_FMAX,
    steps: int = DEFAULT_STEPS,
    max_atoms_per_batch: int | None = None,
    optimizer: str = DEFAULT_OPTIMIZER,
    relax_cell: bool = False,
) -> list[RelaxResult]:
    """Relax every structure to max |F| < ``fmax`` with ASE's ``optimizer`` ("FIRE" or
    "BFGS") run per structure; ``relax_cell`` relaxes the cell too, through ASE's
    ``FrechetCellFilter`` (its cell forces count towards convergence, as in ASE)."""
    model.task_index(task)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"batched relaxation offers {sorted(OPTIMIZERS)}, not {optimizer!r}")
    if relax_cell and (bad := [k for k, a in enumerate(structures)
                               if not a.pbc.all() or a.cell.rank < 3]):
        raise ValueError(f"relax_cell needs a 3D periodic cell; structures {bad} have none")
    if max_atoms_per_batch is None:  # by measured memory on a GPU, 256 on CPU
        max_atoms_per_batch = relaxation_batch_atoms(model, structures)
    atoms = [a.copy() for a in structures]
    served = [_BatchedResults() for _ in atoms]
    for a, calc in zip(atoms, served):
        a.calc = calc
    states = [OPTIMIZERS[optimizer]((FrechetCellFilter(a) if relax_cell else a)
                                    .__ase_optimizable__()) for a in atoms]
    energies: list[list[float]] = [[] for _ in atoms]
    converged: dict[int, bool] = {}
    active = list(range(len(atoms)))
    while active:
        # batches bounded in atoms; every active structure advances one step per pass
        chunk, n = [], 0
        for k in active + [None]:
            if k is None or (chunk and n + len(atoms[k]) > max_atoms_per_batch):
                results = evaluate_or_split(model, [atoms[c] for c in chunk], task, relax_cell)
                for c, r in zip(chunk, results):
                    served[c].serve(r)
                chunk, n = [], 0
            if k is not None:
                chunk.append(k)
                n += len(atoms[k])
        still = []
        for k in active:
            s = states[k]
            energies[k].append(served[k].results["energy"])
            g = s.optimizable.get_gradient()
            done = bool(s.optimizable.converged(g, fmax))
            if done or s.nsteps >= steps:
                converged[k] = done
            else:
                s.step(-g)
                still.append(k)
        active = still
    out = []
    for k, a in enumerate(atoms):
        r, forces = served[k].results, a.get_forces()  # constraints applied, as ASE gives them
        a.calc = None
        out.append(RelaxResult(atoms=a, energy=r["energy"], forces=forces,
                               converged=converged[k], nsteps=states[k].nsteps,
                               trajectory_energies=energies[k], stress=r.get("stress")))
    return out
