"""GPAW single points of slabs and gas molecules, each in its own process.

GPAW is GPL-3: this module never imports it. It builds the GPAW parameters
from a :class:`GPAWSettings`, writes the atoms and parameters to a JSON file and
runs ``gpaw_worker.py`` (next to this file) as a script with this Python; the
worker writes energy, forces, magnetic moments, and the GPAW, PAW-setup and
libxc versions back as JSON.

Settings, the same for every term of an adsorption energy:

- ``xc``: PBE, RPBE or r2SCAN (libxc ``MGGA_X_R2SCAN+MGGA_C_R2SCAN``, PBE setups);
- plane waves, ``ecut`` 450 eV by default;
- k-points: a Monkhorst-Pack grid from a density (``kpt_density`` points per
  A^-1, the reciprocal vectors counted with their 2 pi: N_i = ceil(density |b_i|)),
  one k-point along the surface normal of a slab, Gamma only for a molecule in
  its box; or an explicit ``kpts`` grid for slabs;
- Fermi-Dirac smearing of ``smearing`` eV (0.1); the energy reported is GPAW's
  energy extrapolated to zero width;
- slabs: a dipole layer in the vacuum (GPAW ``poissonsolver={'dipolelayer': 'xy'}``)
  with ``dipole=True``, so that a slab with an adsorbate on one side is not
  coupled to its periodic images; the clean slab gets the same correction;
- spin (``spin="auto"``): polarised when the electron count is odd, when the
  system holds Fe, Co or Ni, for O2 and for isolated atoms with a ground-state
  moment; otherwise spin-paired. ``"polarized"`` and ``"paired"`` force it.

:data:`QUICK` are cheap settings for smoke tests and examples (PW 250 eV,
density 2.0, 8 A boxes): their numbers are not converged and are not for
reporting.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path

import numpy as np
from ase import Atoms
from monty.json import MSONable
from ase.data import atomic_numbers, ground_state_magnetic_moments
from pymatgen.core import Molecule, Structure

from ..errors import CalculationError, WorkflowInputError
from ..structures.geometry import to_atoms

WORKER = Path(__file__).with_name("gpaw_worker.py")
INSTALL_STEPS = ("apt-get update && apt-get install -y libxc-dev libopenblas-dev && "
                 "CC=g++ pip install gpaw   (or: CC=g++ pip install -e \".[dft]\")")
XC = {"PBE": "PBE", "RPBE": "RPBE", "r2SCAN": "MGGA_X_R2SCAN+MGGA_C_R2SCAN"}
SPIN_MODES = ("auto", "polarized", "paired")
SLAB, MOLECULE = "slab", "molecule"
# initial moments (mu_B) of the magnetic 3d metals, about their bulk values
MAGNETIC_METALS = {"Fe": 2.5, "Co": 1.7, "Ni": 0.7}
TRIPLET_MOLECULES = {"O2"}
# A of vacuum kept at least between a molecule and its periodic images
MIN_MOLECULE_VACUUM = 5.0


class GPAWMissingError(WorkflowInputError, ImportError):
    """GPAW is not installed in this Python."""


class GPAWRunError(CalculationError):
    """A GPAW single point failed (SCF not converged, bad geometry, crash)."""


def gpaw_versions() -> dict[str, str]:
    """Installed gpaw and gpaw-data versions (package metadata: nothing is imported)."""
    found = {}
    for name in ("gpaw", "gpaw-data"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def require_gpaw() -> dict[str, str]:
    """The GPAW versions; :class:`GPAWMissingError` with the install steps if it is missing."""
    if find_spec("gpaw") is None or "gpaw" not in gpaw_versions():
        raise GPAWMissingError(f"GPAW is not installed in {sys.executable}; install it with: "
                               f"{INSTALL_STEPS}")
    return gpaw_versions()


@dataclass(frozen=True)
class GPAWSettings(MSONable):
    """Everything that decides a GPAW number (``threads`` and ``timeout`` do not).

    Checked when made and frozen after: made once at the edge, passed whole."""

    xc: str = "PBE"
    ecut: float = 450.0  # eV, plane-wave cutoff
    kpt_density: float = 4.0  # k-points per A^-1 (2 pi included); 3x3 fcc(111) cells get 4x4x1
    kpts: tuple[int, int, int] | None = None  # explicit slab grid; overrides kpt_density
    smearing: float = 0.1  # eV, Fermi-Dirac width
    dipole: bool = True  # dipole layer in the vacuum of every slab
    spin: str = "auto"
    box: float = 12.0  # A, edge of the cubic box of gas molecules
    convergence: dict = field(default_factory=dict)  # GPAW's convergence criteria; {}: defaults
    maxiter: int = 333
    threads: int = 1  # OMP/BLAS threads of the worker process (not part of the identity)
    timeout: float | None = None  # s per single point (not part of the identity)

    def __post_init__(self):
        if self.xc not in XC:
            raise WorkflowInputError(f"xc must be one of {', '.join(XC)}, not {self.xc!r}")
        if self.spin not in SPIN_MODES:
            raise WorkflowInputError(f"spin must be one of {', '.join(SPIN_MODES)}, "
                                     f"not {self.spin!r}")
        if self.ecut <= 0 or self.kpt_density <= 0 or self.smearing < 0 or self.box <= 0:
            raise WorkflowInputError("ecut, kpt_density and box must be positive, smearing >= 0")
        if self.kpts is not None:
            kpts = tuple(int(k) for k in self.kpts)
            if len(kpts) != 3 or min(kpts) < 1:
                raise WorkflowInputError(f"kpts {self.kpts!r}: three positive integers, e.g. 4x4x1")
            object.__setattr__(self, "kpts", kpts)

    def key(self) -> dict:
        """The identity of a number made with these settings: every setting that changes it,
        and the GPAW and PAW-setup versions installed."""
        settings = asdict(self)
        for name in ("threads", "timeout"):
            settings.pop(name)
        settings["kpts"] = list(self.kpts) if self.kpts else None
        return {"code": "gpaw", **settings, "versions": gpaw_versions()}

    def level(self) -> str:
        """Short label, e.g. 'GPAW RPBE/PW400/k4x4x1' or 'GPAW PBE/PW450/k4.0'."""
        k = "x".join(map(str, self.kpts)) if self.kpts else f"{self.kpt_density:g}/A^-1"
        return f"GPAW {self.xc}/PW{self.ecut:g}/k{k}"


# cheap settings for smoke tests and examples: not converged, not for reporting
QUICK = dict(ecut=250.0, kpt_density=2.0, box=8.0)


def kpoint_grid(atoms: Atoms, settings: GPAWSettings, kind: str) -> tuple[int, int, int]:
    """Monkhorst-Pack grid: from the density (slabs: 1 along z), Gamma only for molecules."""
    if kind == MOLECULE:
        return (1, 1, 1)
    if settings.kpts is not None:
        return settings.kpts
    reciprocal = 2 * math.pi * np.linalg.norm(atoms.cell.reciprocal(), axis=1)
    a, b = (max(1, math.ceil(settings.kpt_density * g - 1e-9)) for g in reciprocal[:2])
    return (a, b, 1)


def _formula(atoms: Atoms) -> str:
    return Molecule(atoms.get_chemical_symbols(), atoms.positions).composition.reduced_formula


def initial_magmoms(atoms: Atoms, settings: GPAWSettings, kind: str) -> list[float] | None:
    """Initial moments (mu_B) of a spin-polarised run, None for a spin-paired one."""
    symbols = atoms.get_chemical_symbols()
    odd = sum(atoms.numbers) % 2 == 1
    magnetic = [MAGNETIC_METALS.get(s, 0.0) for s in symbols]
    atom = kind == MOLECULE and len(atoms) == 1
    triplet = kind == MOLECULE and _formula(atoms) in TRIPLET_MOLECULES
    if settings.spin == "paired":
        return None
    if settings.spin == "auto" and not (odd or any(magnetic) or triplet or (
            atom and ground_state_magnetic_moments[atoms.numbers[0]] > 0)):
        return None
    if atom:
        return [float(ground_state_magnetic_moments[atoms.numbers[0]]) or 1.0]
    if triplet:
        return [2.0 / len(atoms)] * len(atoms)
    moments = list(magnetic)
    if odd or not any(moments):  # one unpaired electron, on the non-metal atoms if any
        light = [i for i, s in enumerate(symbols) if atomic_numbers[s] <= 18] or range(len(atoms))
        for i in light:
            moments[i] += 1.0 / len(light)
    return moments


def prepare_atoms(structure: Structure | Molecule | Atoms, kind: str,
                  settings: GPAWSettings) -> Atoms:
    """ASE atoms as GPAW gets them: a slab centred along z (pbc (T, T, F) with the dipole
    layer), a molecule centred in its cubic box (periodic, Gamma only)."""
    if kind not in (SLAB, MOLECULE):
        raise WorkflowInputError(f"kind must be {SLAB!r} or {MOLECULE!r}, not {kind!r}")
    atoms = to_atoms(structure, fixed=[])  # GPAW gets species, positions and cell only
    if kind == MOLECULE:
        extent = np.ptp(atoms.positions, axis=0).max() if len(atoms) > 1 else 0.0
        if extent + MIN_MOLECULE_VACUUM > settings.box:
            raise WorkflowInputError(
                f"{_formula(atoms)} spans {extent:.1f} A: a box of {settings.box:g} A leaves less "
                f"than {MIN_MOLECULE_VACUUM:g} A of vacuum; give a larger box")
        atoms.set_cell([settings.box] * 3)
        atoms.center()
        atoms.pbc = True
        return atoms
    cell = atoms.cell.array
    if abs(cell[2, 0]) > 1e-6 or abs(cell[2, 1]) > 1e-6 or abs(cell[0, 2]) > 1e-6 or abs(
            cell[1, 2]) > 1e-6:
        raise WorkflowInputError("the slab's third cell vector must be along z, normal to the "
                                 "surface (the other two in the xy plane)")
    # the largest gap in z is the vacuum: put the slab in one piece, then centre it
    z = np.sort(atoms.get_scaled_positions()[:, 2] % 1.0)
    gaps = np.diff(np.append(z, z[0] + 1.0))
    start = z[(np.argmax(gaps) + 1) % len(z)]
    scaled = atoms.get_scaled_positions()
    scaled[:, 2] = (scaled[:, 2] - start) % 1.0
    atoms.set_scaled_positions(scaled)
    atoms.center(axis=2)
    atoms.pbc = (True, True, not settings.dipole)
    return atoms


def gpaw_parameters(atoms: Atoms, settings: GPAWSettings, kind: str) -> dict:
    """The GPAW keyword arguments of one single point (JSON-ready)."""
    parameters = {
        "mode": {"name": "pw", "ecut": float(settings.ecut)},
        "xc": XC[settings.xc],
        "kpts": {"size": list(kpoint_grid(atoms, settings, kind))},
        "occupations": {"name": "fermi-dirac", "width": float(settings.smearing)},
        "maxiter": int(settings.maxiter),
        "spinpol": initial_magmoms(atoms, settings, kind) is not None,
    }
    if settings.convergence:
        parameters["convergence"] = dict(settings.convergence)
    if kind == SLAB and settings.dipole:
        parameters["poissonsolver"] = {"dipolelayer": "xy"}
    return parameters


def run_gpaw(structure: Structure | Molecule | Atoms, kind: str, settings: GPAWSettings,
             workdir: str | Path | None = None) -> dict:
    """One GPAW single point in its own process: energy (eV), forces (eV/A), moments, versions.

    ``kind``: 'slab' or 'molecule'. The result also holds the GPAW ``parameters``,
    the ``kpts`` grid, ``spin_polarized`` and the ``atoms`` as computed (numbers,
    positions, cell, pbc). Raises :class:`GPAWMissingError` without GPAW and
    :class:`GPAWRunError` when the run fails.
    """
    require_gpaw()
    atoms = prepare_atoms(structure, kind, settings)
    magmoms = initial_magmoms(atoms, settings, kind)
    parameters = gpaw_parameters(atoms, settings, kind)
    request = {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
               "cell": atoms.cell.array.tolist(), "pbc": [bool(p) for p in atoms.pbc],
               "magmoms": magmoms, "parameters": parameters}
    threads = str(settings.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "MKL_NUM_THREADS": threads}
    with tempfile.TemporaryDirectory(prefix="gpaw-", dir=workdir) as folder:
        folder = Path(folder)
        request["txt"] = str(folder / "gpaw.txt")
        (folder / "input.json").write_text(json.dumps(request))
        try:
            done = subprocess.run(
                [sys.executable, str(WORKER), "input.json", "output.json"], cwd=folder, env=env,
                capture_output=True, text=True, timeout=settings.timeout)
        except subprocess.TimeoutExpired:
            raise GPAWRunError(f"GPAW single point of {_formula(atoms)} ({kind}) ran past "
                               f"{settings.timeout} s") from None
        output = folder / "output.json"
        result = json.loads(output.read_text()) if output.exists() else {}
        if done.returncode != 0 or "error" in result or "energy" not in result:
            log = (folder / "gpaw.txt").read_text()[-1500:] if (folder / "gpaw.txt").exists() else ""
            reason = result.get("error") or done.stderr[-1500:] or f"exit {done.returncode}"
            raise GPAWRunError(f"GPAW single point of {_formula(atoms)} ({kind}, "
                               f"{settings.level()}) failed: {reason}\n{log}")
    result.update(parameters=parameters, kpts=parameters["kpts"]["size"],
                  spin_polarized=parameters["spinpol"], initial_magmoms=magmoms,
                  atoms={k: request[k] for k in ("numbers", "positions", "cell", "pbc")})
    return result
