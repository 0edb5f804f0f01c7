"""r2SCAN single points of molecules and clusters with PySCF (Gaussian basis, CPU).

PySCF is imported inside the functions, so the package works without it.
Every term of an adsorption energy is computed with the same
:class:`PySCFSettings` (functional, basis, ECP, grid): the basis set
superposition error of a small basis is not corrected (no counterpoise).

Spin: unrestricted Kohn-Sham for each spin state in ``spins`` (2S values; by
default the lowest two of the right parity, four with transition metals),
keeping the one of lowest energy. Metal clusters have near-degenerate levels
that make integer occupations oscillate, so by default the occupations of each
spin follow a Fermi function (``smearing``, Hartree) at a fixed electron count
per spin, and the energy reported is extrapolated to zero smearing (E - TS/2).
An SCF that does not converge is retried with a level shift (and, without
smearing, with Newton's second-order solver); a spin state that still does not
converge is dropped, and when none converges :class:`SCFConvergenceError` is
raised: an unconverged energy is never returned.
"""

from dataclasses import asdict, dataclass, field

from monty.json import MSONable
from pymatgen.core import Molecule

from ..errors import CalculationError, WorkflowInputError

# eV per Hartree (CODATA 2018), the conversion of every PySCF energy here
HARTREE_TO_EV = 27.211386245988

# elements beyond Kr carry an effective core potential in def2 and lanl2dz
ECP_FROM_Z = 37


class SCFConvergenceError(CalculationError):
    """The SCF of a molecule or cluster did not converge in any spin state tried."""


class PySCFMissingError(WorkflowInputError, ImportError):
    """PySCF is not installed."""


@dataclass(frozen=True)
class PySCFSettings(MSONable):
    """Functional, basis, ECP and SCF controls, the same for every term of an E_ads.

    ``basis`` names a PySCF basis (``def2-svp``: def2 ECPs beyond Kr; ``lanl2dz``:
    the LANL2 ECPs on Na and beyond, Dunning D95V on first-row atoms), or maps
    elements to bases (``{"Pt": "lanl2dz", "default": "def2-svp"}``). ``ecp``
    defaults to the heavy element's basis's own. Checked when made; frozen after.
    """

    xc: str = "r2scan"  # libxc MGGA_X_R2SCAN + MGGA_C_R2SCAN
    basis: str | dict[str, str] = "def2-svp"
    ecp: str | None = None
    grid_level: int = 3  # PySCF's Treutler-Ahlrichs grids (0-9); meta-GGAs need >= 3
    conv_tol: float = 1e-8  # Hartree
    max_cycle: int = 100
    level_shift: float = 0.2  # Hartree, only in the retry of an SCF that did not converge
    smearing: float | None = 0.01  # Hartree; Fermi smearing per spin (None: integer occupations)
    spins: tuple[int, ...] | None = None  # 2S values to try; None: by electron count
    extra: dict = field(default_factory=dict)  # recorded as given (e.g. why a basis is reduced)

    def __post_init__(self):
        basis = self.basis
        if not basis or not (isinstance(basis, str) or isinstance(basis, dict) and all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in basis.items())):
            raise WorkflowInputError(f"basis {basis!r}: a PySCF basis name, or element -> basis")
        if not self.xc:
            raise WorkflowInputError("xc: name a functional, e.g. r2scan")
        if not 0 <= self.grid_level <= 9:
            raise WorkflowInputError(f"grid_level must be 0-9 (PySCF's grids), not "
                                     f"{self.grid_level}")
        if not self.conv_tol > 0 or self.max_cycle < 1 or self.level_shift < 0:
            raise WorkflowInputError("conv_tol must be > 0, max_cycle >= 1, level_shift >= 0")
        if self.smearing is not None and self.smearing < 0:
            raise WorkflowInputError(f"smearing must be >= 0 Hartree or None, not {self.smearing}")
        if self.spins is not None:
            spins = tuple(int(s) for s in self.spins)
            if not spins or min(spins) < 0:
                raise WorkflowInputError(f"spins {self.spins!r}: 2S values, e.g. 0,2")
            object.__setattr__(self, "spins", spins)

    def key(self) -> dict:
        """Every setting, with the code: what a number made with these settings depends on."""
        return {"code": "pyscf", **asdict(self)}


@dataclass
class DFTEnergy:
    """A converged single point: energy in eV, the spin state it has, SCF cycles."""

    energy: float
    spin: int  # 2S
    cycles: int
    energies_by_spin: dict[int, float]  # eV of every spin state that converged


def _pyscf():
    try:
        import pyscf  # noqa: F401
        from pyscf import dft, gto
    except ImportError:
        raise PySCFMissingError(
            "DFT r2SCAN on molecules and clusters needs PySCF: pip install pyscf"
        ) from None
    return gto, dft


def default_spins(molecule: Molecule) -> tuple[int, ...]:
    """2S values to try: the lowest two of the right parity; four with transition metals."""
    parity = int(molecule.nelectrons) % 2
    n = 4 if any(el.is_transition_metal for el in molecule.composition) else 2
    return tuple(parity + 2 * i for i in range(n))


def build_mole(molecule: Molecule, spin: int, settings: PySCFSettings):
    gto, _ = _pyscf()
    basis = settings.basis
    heavy = {el.symbol for el in molecule.composition if el.Z >= ECP_FROM_Z}
    by_element = basis if isinstance(basis, dict) else {}
    ecp = {el: settings.ecp or by_element.get(el, by_element.get("default", basis)) for el in heavy}
    return gto.M(
        atom=[(str(s.specie), tuple(s.coords)) for s in molecule],  # Angstrom
        basis=basis, ecp=ecp, charge=int(molecule.charge), spin=spin,
        verbose=0,
    )


def _run_scf(mol, settings: PySCFSettings, level_shift: float = 0.0, newton: bool = False):
    _, dft = _pyscf()
    mf = dft.UKS(mol)
    mf.xc = settings.xc
    mf.grids.level = settings.grid_level
    mf.conv_tol = settings.conv_tol
    mf.max_cycle = settings.max_cycle
    mf.level_shift = level_shift
    if settings.smearing:
        from pyscf.scf import addons

        mf = addons.smearing_(mf, sigma=settings.smearing, method="fermi", fix_spin=True)
    if newton:
        mf = mf.newton()
    cycles = []
    mf.callback = lambda env: cycles.append(env.get("cycle"))
    energy = mf.kernel()
    if settings.smearing and getattr(mf, "e_zero", None) is not None:
        energy = mf.e_zero
    return mf, float(energy), len(cycles)


def scf_energy(molecule: Molecule, spin: int, settings: PySCFSettings) -> tuple[float, int]:
    """Converged energy (eV) and SCF cycles in one spin state; raise if it does not converge."""
    mol = build_mole(molecule, spin, settings)
    mf, energy, cycles = _run_scf(mol, settings)
    if not mf.converged:  # a level shift damps the oscillation of near-degenerate levels
        mf, energy, more = _run_scf(mol, settings, level_shift=settings.level_shift)
        cycles += more
    if not mf.converged and not settings.smearing:  # Newton's solver from scratch
        mf, energy, more = _run_scf(mol, settings, newton=True)
        cycles += more
    if not mf.converged:
        raise SCFConvergenceError(
            f"r2SCAN SCF of {molecule.composition.formula} (2S={spin}, {settings.basis}) did "
            f"not converge in {cycles} cycles; raise max_cycle, set smearing (Hartree) or "
            "loosen conv_tol"
        )
    return energy * HARTREE_TO_EV, cycles


def r2scan_energy(molecule: Molecule, settings: PySCFSettings | None = None) -> DFTEnergy:
    """The lowest converged r2SCAN energy (eV) of ``molecule`` over the spin states tried."""
    settings = settings or PySCFSettings()
    spins = settings.spins or default_spins(molecule)
    parity = int(molecule.nelectrons) % 2
    bad = [s for s in spins if s % 2 != parity]
    if bad:
        raise WorkflowInputError(
            f"{molecule.composition.formula} has {int(molecule.nelectrons)} electrons: 2S must "
            f"be {'odd' if parity else 'even'}, not {bad}"
        )
    found, failures, cycles = {}, [], 0
    for spin in spins:
        try:
            found[spin], n = scf_energy(molecule, spin, settings)
            cycles += n
        except SCFConvergenceError as exc:
            failures.append(str(exc))
    if not found:
        raise SCFConvergenceError("; ".join(failures))
    best = min(found, key=found.get)
    return DFTEnergy(found[best], best, cycles, found)
