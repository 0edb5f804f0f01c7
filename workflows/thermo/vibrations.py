"""Harmonic vibrations with the MLIP: finite differences of forces, all displacements in
batched graphs.

Only the chosen atoms move (for an adsorbate: its own atoms, the slab held fixed, the
usual approximation of adsorbate free energies). Each atom is displaced by +-delta
along x, y, z (central differences, ASE's ``Vibrations`` scheme and its 0.01 A step);
the 6n displaced structures are evaluated together in batched graphs through
``omni_flows.model.inference.predict`` instead of 6n single calls: for H on a
16-atom Pt(111) slab that is one model call instead of six. The Hessian is
symmetrised and mass-weighted; its eigenvalues give the mode energies hbar*omega.

Imaginary modes are kept in the result (as ASE does, as complex energies) and counted;
what the free energy does with them is decided in :mod:`.thermochemistry`.
"""

from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

from ..structures.geometry import free_mask

# A: ASE's Vibrations default; forces of a 0.05 eV/A relaxed structure stay well above
# float32 noise at this step (checked against ase.vibrations in tests/test_thermochemistry.py)
DEFAULT_DISPLACEMENT = 0.01

# hbar * sqrt(eV / (A^2 amu)) in eV: converts a mass-weighted Hessian eigenvalue to hbar*omega
_HBAR_OMEGA = units._hbar * units.m / np.sqrt(units._e * units._amu)


@dataclass(frozen=True)
class VibrationResult:
    """Modes of the atoms ``indices``: energies hbar*omega in eV (complex: imaginary modes
    have an imaginary part), lowest first, and the Hessian (eV/A^2) they came from."""

    indices: tuple[int, ...]
    energies: np.ndarray
    hessian: np.ndarray
    displacement: float

    @property
    def frequencies(self) -> np.ndarray:
        """Wavenumbers in cm^-1; imaginary modes as negative numbers (the field's habit)."""
        e = self.energies
        return np.where(np.abs(e.imag) > np.abs(e.real), -np.abs(e.imag), e.real) / units.invcm

    @property
    def imaginary_frequencies(self) -> np.ndarray:
        """Magnitudes (cm^-1) of the imaginary modes."""
        f = self.frequencies
        return -f[f < 0]

    @property
    def zpe(self) -> float:
        """Zero-point energy of the real modes, eV."""
        e = self.energies
        return float(0.5 * e.real[np.abs(e.imag) <= np.abs(e.real)].sum())


def displaced_structures(atoms: Atoms, indices, delta: float) -> list[Atoms]:
    """For each index and Cartesian direction: the structure displaced by -delta, then +delta."""
    base = atoms.copy()
    base.calc = None
    base.set_constraint()
    out = []
    for i in indices:
        for axis in range(3):
            for sign in (-1, 1):
                moved = base.copy()
                moved.positions[i, axis] += sign * delta
                out.append(moved)
    return out


def hessian_from_forces(forces: list[np.ndarray], indices, delta: float) -> np.ndarray:
    """The symmetric (3n, 3n) Hessian from the forces of :func:`displaced_structures`."""
    idx = list(indices)
    n = 3 * len(idx)
    hessian = np.empty((n, n))
    for k in range(n):
        minus, plus = forces[2 * k][idx].ravel(), forces[2 * k + 1][idx].ravel()
        hessian[k] = -(plus - minus) / (2 * delta)
    return 0.5 * (hessian + hessian.T)


def mode_energies(hessian: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """hbar*omega (eV, complex) of a Hessian (eV/A^2) for atoms of these masses (amu)."""
    w = np.repeat(np.asarray(masses, float) ** -0.5, 3)
    omega2 = np.linalg.eigvalsh(w[:, None] * hessian * w[None, :])
    return _HBAR_OMEGA * omega2.astype(complex) ** 0.5


def vibrate(atoms: Atoms, calculator, indices=None, delta: float = DEFAULT_DISPLACEMENT,
            max_atoms_per_batch: int | None = None) -> VibrationResult:
    """Harmonic modes of ``indices`` (default: every atom not fixed by FixAtoms).

    ``calculator`` is an :class:`omni_flows.model.OmniCalculator`: its model and task
    evaluate the displaced structures in batched graphs.
    """
    from omni_flows.model.inference import predict

    indices = tuple(np.flatnonzero(free_mask(atoms)).tolist() if indices is None
                    else (int(i) for i in indices))
    if not indices:
        raise ValueError("no atom to displace: every atom is fixed")
    structures = displaced_structures(atoms, indices, delta)
    results = predict(structures, model=calculator.model, task=calculator.task,
                      max_atoms_per_batch=max_atoms_per_batch, stress=False)
    hessian = hessian_from_forces([r["forces"] for r in results], indices, delta)
    energies = mode_energies(hessian, atoms.get_masses()[list(indices)])
    return VibrationResult(indices, energies, hessian, delta)
