"""Free energies of adsorbates and gas references from MLIP vibrations, with ase.thermochemistry.

Adsorbates: harmonic oscillators of the adsorbate's own modes (the slab held fixed),
``ase.thermochemistry.QuasiHarmonicThermo``: F = ZPE + int(Cv dT) - TS, with modes
softer than 100 cm^-1 raised to 100 cm^-1 (the quasi-harmonic rule of Ribeiro, Marenich,
Cramer and Truhlar, J. Phys. Chem. B 115, 14556 (2011), ASE's default), because the
harmonic entropy of a nearly free frustrated mode diverges. Imaginary modes: up to
``imaginary_tolerance_cm`` they are taken as soft real modes (finite-difference noise
around a structure relaxed to 0.05 eV/A), larger ones are dropped and counted
(``n_imaginary``): such a structure is not a minimum, and the count is stored with it.

Gases: ``IdealGasThermo`` (translations, rotations, the 3N-5 or 3N-6 highest modes),
G = ZPE + int(Cp dT) - TS at T and p; symmetry numbers and spins below. Water is
taken at 0.035 bar, its vapour pressure at 300 K, where the gas is in equilibrium
with the liquid: G(H2O, g, 0.035 bar) = G(H2O, l) (Nørskov et al., J. Phys. Chem. B
108, 17886 (2004)), the computational-hydrogen-electrode convention.

The correction stored per adsorbate is relative to the same gas references as E_ads
(``references.gas_coefficients``: e.g. OH = H2O - 1/2 H2):

    free_energy_correction = F(adsorbate) - sum_i n_i G(gas_i)
    adsorption_free_energy = adsorption_energy + free_energy_correction
"""

from dataclasses import asdict, dataclass, replace

from ase import Atoms, units
from ase.thermochemistry import IdealGasThermo, QuasiHarmonicThermo
from monty.json import MSONable

from ..errors import WorkflowInputError
from .references import gas_coefficients
from .vibrations import DEFAULT_DISPLACEMENT, VibrationResult, vibrate

DEFAULT_TEMPERATURE = 298.15  # K
STANDARD_PRESSURE = 1.0e5  # Pa, 1 bar
# Pa: 0.035 bar, water's vapour pressure near 300 K (Nørskov et al. 2004)
WATER_PRESSURE = 3.5e3
# cm^-1: softer modes are raised to this in the adsorbate entropy (ASE's QuasiHarmonicThermo)
LOW_FREQUENCY_CM = 100.0
# cm^-1: imaginary modes up to this are finite-difference noise of soft modes (the azimuthal
# rotation of a tilted OH* reaches -56 cm^-1 in float32); below LOW_FREQUENCY_CM a mode is
# raised to it anyway, so its sign cannot change the free energy
IMAGINARY_TOLERANCE_CM = LOW_FREQUENCY_CM

# geometry, symmetry number, total electronic spin (ASE's IdealGasThermo arguments)
GAS_SPECIES: dict[str, tuple[str, int, float]] = {
    "H2": ("linear", 2, 0.0),
    "N2": ("linear", 2, 0.0),
    "O2": ("linear", 2, 1.0),  # triplet ground state
    "CO": ("linear", 1, 0.0),
    "CO2": ("linear", 2, 0.0),
    "NO": ("linear", 1, 0.5),
    "H2O": ("nonlinear", 2, 0.0),
    "NH3": ("nonlinear", 3, 0.0),
    "CH4": ("nonlinear", 12, 0.0),
}


@dataclass(frozen=True)
class FreeEnergySettings(MSONable):
    """Everything that changes a free-energy number: part of a result's identity."""

    temperature: float = DEFAULT_TEMPERATURE
    pressure: float = STANDARD_PRESSURE
    water_pressure: float = WATER_PRESSURE
    displacement: float = DEFAULT_DISPLACEMENT
    low_frequency_cm: float = LOW_FREQUENCY_CM
    imaginary_tolerance_cm: float = IMAGINARY_TOLERANCE_CM

    def __post_init__(self):
        if self.temperature <= 0 or self.pressure <= 0 or self.water_pressure <= 0:
            raise WorkflowInputError(
                f"--temperature ({self.temperature} K) and --pressure ({self.pressure / 1e5:g} "
                f"bar, water {self.water_pressure / 1e5:g} bar) must be positive")
        if self.displacement <= 0:
            raise WorkflowInputError("the finite-difference displacement must be positive")

    def pressure_of(self, gas: str) -> float:
        return self.water_pressure if gas == "H2O" else self.pressure

    def key(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Thermo:
    """Thermal terms of one species at T (and p for a gas), eV and eV/K.

    ``enthalpy`` is ZPE + int(Cv dT) for an adsorbate, ZPE + int(Cp dT) for a gas;
    ``free_energy`` = enthalpy - T * entropy (without the electronic energy).
    """

    zpe: float
    enthalpy: float
    entropy: float
    free_energy: float
    temperature: float
    n_imaginary: int = 0
    frequencies: tuple[float, ...] = ()

    @property
    def ts(self) -> float:
        return self.temperature * self.entropy


def _real_modes(result: VibrationResult, tolerance_cm: float) -> tuple[list[float], int]:
    """Mode energies for the free energy: soft imaginary modes as real, large ones dropped."""
    kept, dropped = [], 0
    for e in result.energies:
        if abs(e.imag) > abs(e.real):  # imaginary
            if abs(e.imag) / units.invcm <= tolerance_cm:
                kept.append(float(abs(e.imag)))
            else:
                dropped += 1
        else:
            kept.append(float(e.real))
    return kept, dropped


def adsorbate_thermo(result: VibrationResult, settings: FreeEnergySettings) -> Thermo:
    """Quasi-harmonic ZPE, int(Cv dT), S and F of an adsorbate's modes."""
    modes, dropped = _real_modes(result, settings.imaginary_tolerance_cm)
    thermo = QuasiHarmonicThermo(modes, ignore_imag_modes=True,
                                 raise_to=settings.low_frequency_cm * units.invcm)
    T = settings.temperature
    u = thermo.get_internal_energy(T, verbose=False)
    s = thermo.get_entropy(T, verbose=False)
    return Thermo(zpe=float(thermo.get_ZPE_correction()), enthalpy=float(u), entropy=float(s),
                  free_energy=float(u - T * s), temperature=T, n_imaginary=dropped,
                  frequencies=tuple(float(f) for f in result.frequencies))


def molecule_symmetry(atoms: Atoms) -> tuple[str, int, float]:
    """Geometry and rotational symmetry number of a molecule not in ``GAS_SPECIES`` (a
    user's file), from its point group (pymatgen); closed shell (spin 0) is assumed."""
    from pymatgen.core import Molecule
    from pymatgen.symmetry.analyzer import PointGroupAnalyzer

    if len(atoms) == 1:
        return "monatomic", 1, 0.0
    group = PointGroupAnalyzer(Molecule(atoms.get_chemical_symbols(), atoms.positions))
    linear = group.sch_symbol in ("D*h", "C*v")
    return ("linear" if linear else "nonlinear"), int(group.get_rotational_symmetry_number()), 0.0


def gas_thermo(name: str, atoms: Atoms, result: VibrationResult,
               settings: FreeEnergySettings) -> Thermo:
    """Ideal-gas ZPE, int(Cp dT), S and G of a reference molecule at T and its pressure."""
    geometry, sigma, spin = GAS_SPECIES.get(name) or molecule_symmetry(atoms)
    thermo = IdealGasThermo(list(result.energies), geometry, atoms=atoms, symmetrynumber=sigma,
                            spin=spin, natoms=len(atoms), vib_selection="abs_highest",
                            ignore_imag_modes=True)
    T, p = settings.temperature, settings.pressure_of(name)
    h = thermo.get_enthalpy(T, verbose=False)
    s = thermo.get_entropy(T, p, verbose=False)
    # imaginary among the true vibrations (not the six or five near-zero rigid motions)
    n_vib = {"monatomic": 0, "linear": 3 * len(atoms) - 5,
             "nonlinear": 3 * len(atoms) - 6}[geometry]
    vibrations = sorted(result.frequencies, key=abs)[-n_vib:] if n_vib else []
    n_imag = int(sum(f < 0 for f in vibrations))
    return Thermo(zpe=float(thermo.get_ZPE_correction()), enthalpy=float(h), entropy=float(s),
                  free_energy=float(h - T * s), temperature=T, n_imaginary=n_imag,
                  frequencies=tuple(float(f) for f in result.frequencies))


def gas_free_energy(name: str, atoms: Atoms, calculator,
                    settings: FreeEnergySettings = FreeEnergySettings()) -> Thermo:
    """Vibrate a relaxed gas molecule (all atoms) and take its ideal-gas terms."""
    molecule = atoms.copy()
    molecule.set_constraint()
    return gas_thermo(name, molecule, vibrate(molecule, calculator, range(len(molecule)),
                                              settings.displacement), settings)


def adsorbate_free_energy(atoms: Atoms, adsorbate_indices, calculator,
                          settings: FreeEnergySettings = FreeEnergySettings()) -> Thermo:
    """Vibrate the adsorbate's atoms of a relaxed slab + adsorbate, slab held fixed."""
    return adsorbate_thermo(vibrate(atoms, calculator, adsorbate_indices, settings.displacement),
                            settings)


@dataclass(frozen=True)
class FreeEnergyCorrection:
    """What ``--free-energy`` stores per adsorbate (eV)."""

    zpe: float
    free_energy_correction: float
    n_imaginary: int
    gas_references: dict

    def adsorption_free_energy(self, adsorption_energy: float) -> float:
        return adsorption_energy + self.free_energy_correction

    def per_adsorbate(self, copies: int) -> "FreeEnergyCorrection":
        """The correction of ``copies`` adsorbates in one cell, per adsorbate."""
        return replace(self, zpe=self.zpe / copies,
                       free_energy_correction=self.free_energy_correction / copies,
                       gas_references={k: v / copies for k, v in self.gas_references.items()})


def free_energy_correction(references: str | dict[str, float], adsorbate: Thermo,
                           gases: dict[str, Thermo]) -> FreeEnergyCorrection:
    """F(adsorbate) - sum_i n_i G(gas_i), over the gas references of E_ads: a formula
    (written in the basis, ``references.gas_coefficients``) or ``{molecule: n}``."""
    counts = gas_coefficients(references) if isinstance(references, str) else dict(references)
    missing = sorted(set(counts) - set(gases))
    if missing:
        raise ValueError(f"free energies of {', '.join(missing)} are needed for {references}")
    gas_part = sum(n * gases[name].free_energy for name, n in counts.items())
    return FreeEnergyCorrection(zpe=adsorbate.zpe,
                                free_energy_correction=adsorbate.free_energy - gas_part,
                                n_imaginary=adsorbate.n_imaginary, gas_references=counts)
