"""Reference energies of adsorbates: gas molecules (default) or OC20's per-element scheme.

Gas-molecule scheme (``gas_molecules``): an adsorbate that is itself a stable gas
molecule is referenced to that molecule, and a molecule the user gave as a file
(``NO.xyz:0``) to that molecule relaxed in a box; any other is written as a
combination of the basis H2, H2O, N2, CO (e.g. O = H2O - H2, C = CO - H2O + H2,
OH = H2O - 1/2 H2), the convention of OC20 and of most CHE studies.
OC20 per-element scheme (``oc20_elemental``, stored as ``atomic`` before):
per-element energies from the same four molecules (E_H = 1/2 E(H2),
E_O = E(H2O) - E(H2), E_N = 1/2 E(N2), E_C = E(CO) - E_O), as in OC20. These are
not isolated atoms: for H, C, N and O adsorbates both schemes give the same numbers.
All molecules are relaxed with the same model and task as the slabs.
"""

import numpy as np
from ase.build import molecule
from omni_flows.db_schemas import EnergyReference, ReferenceScheme
from pymatgen.core import Composition, Molecule

from ..errors import UnknownAdsorbateError

BASIS = ("H2", "H2O", "N2", "CO")  # spans H, O, N, C
BASIS_ELEMENTS = ("H", "O", "N", "C")
# closed-shell molecules that are their own gas reference
STABLE_GASES = ("H2", "O2", "N2", "CO", "CO2", "H2O", "NH3", "CH4")


def gas_molecule(formula: str) -> Molecule:
    """The ASE g2 geometry of a reference molecule, as a pymatgen Molecule."""
    atoms = molecule(formula)
    return Molecule(atoms.get_chemical_symbols(), atoms.positions)


def gas_coefficients(formula: str) -> dict[str, float]:
    """``{molecule: n}`` with sum n * molecule = the adsorbate's composition."""
    comp = Composition(formula)
    if formula in STABLE_GASES:
        return {formula: 1.0}
    unknown = sorted({el.symbol for el in comp} - set(BASIS_ELEMENTS))
    if unknown:
        raise UnknownAdsorbateError(
            f"no gas-molecule reference for {', '.join(unknown)} in {formula}: the basis "
            f"{', '.join(BASIS)} covers {', '.join(BASIS_ELEMENTS)}; give the adsorbate as a "
            "structure file (FILE:INDEX), which is referenced to itself in the gas phase"
        )
    matrix = np.array([[Composition(m)[el] for m in BASIS] for el in BASIS_ELEMENTS])
    target = np.array([comp[el] for el in BASIS_ELEMENTS])
    n = np.linalg.solve(matrix, target)
    return {m: float(round(x, 10)) for m, x in zip(BASIS, n) if abs(x) > 1e-10}


def molecules_needed(formulas: list[str], scheme: ReferenceScheme) -> list[str]:
    """Reference molecules to relax for these adsorbates."""
    if scheme == ReferenceScheme.OC20_ELEMENTAL:
        return list(BASIS)
    return sorted({m for f in formulas for m in gas_coefficients(f)})


def adsorbate_references(adsorbate, scheme: ReferenceScheme) -> dict[str, float]:
    """``{reference molecule: n}`` of an :class:`~..structures.adsorbates.Adsorbate`: its own molecule
    (by its adsorbate id) when the user gave it as a file, else by its formula."""
    if scheme == ReferenceScheme.GAS_MOLECULES and adsorbate.own_gas_molecule:
        return {adsorbate.adsorbate_id: 1.0}
    return reference_counts(adsorbate.formula, scheme)


def reference_molecules(adsorbates: list, scheme: ReferenceScheme) -> dict[str, Molecule]:
    """The molecules to relax for these adsorbates, by reference name."""
    found = {}
    for ads in adsorbates:
        if scheme == ReferenceScheme.GAS_MOLECULES and ads.own_gas_molecule:
            found[ads.adsorbate_id] = Molecule(list(ads.symbols), ads.positions)
        else:
            found.update({name: None for name in molecules_needed([ads.formula], scheme)})
    return {name: mol if mol is not None else gas_molecule(name)
            for name, mol in sorted(found.items())}


def atomic_energies(gas: dict[str, float]) -> dict[str, float]:
    """Per-element references from relaxed molecules (OC20's convention)."""
    e_o = gas["H2O"] - gas["H2"]
    return {"H": gas["H2"] / 2, "O": e_o, "N": gas["N2"] / 2, "C": gas["CO"] - e_o}


def energy_reference(
    gas: dict[str, float], scheme: ReferenceScheme, source: str
) -> EnergyReference:
    values = gas if scheme == ReferenceScheme.GAS_MOLECULES else atomic_energies(gas)
    return EnergyReference(scheme=scheme, energies=values, source=source)


def reference_counts(formula: str, scheme: ReferenceScheme) -> dict[str, float]:
    """What ``EnergyReference.energy_of`` sums over for this adsorbate."""
    if scheme == ReferenceScheme.GAS_MOLECULES:
        return gas_coefficients(formula)
    return {el.symbol: float(n) for el, n in Composition(formula).items()}
