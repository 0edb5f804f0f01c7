"""pymatgen <-> ASE, keeping fixed atoms: documents hold pymatgen, relaxations run on ASE."""

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from pymatgen.core import Molecule, Structure

# A: box edge of a molecule relaxed "in a box" (images >= 10 A apart beyond a 5 A cutoff)
MOLECULE_BOX = 15.0


def fixed_from_site_properties(structure: Structure | Molecule) -> list[int]:
    """Atoms whose selective_dynamics are all False (VASP's convention for fixed)."""
    flags = structure.site_properties.get("selective_dynamics")
    if flags is None:
        return []
    return [i for i, f in enumerate(flags) if f is not None and not any(f)]


def to_atoms(structure: Structure | Molecule | Atoms, fixed: list[int] | None = None) -> Atoms:
    """ASE Atoms with a FixAtoms over ``fixed``; a Molecule is centred in a cubic box."""
    if isinstance(structure, Atoms):
        atoms = structure.copy()
    elif isinstance(structure, Molecule):
        atoms = Atoms(
            [str(s.specie) for s in structure], positions=structure.cart_coords,
            cell=[MOLECULE_BOX] * 3, pbc=False,
        )
        atoms.center()
    else:
        atoms = Atoms(
            [str(s.specie) for s in structure], scaled_positions=structure.frac_coords,
            cell=structure.lattice.matrix, pbc=True,
        )
    if fixed is None and not isinstance(structure, Atoms):
        fixed = fixed_from_site_properties(structure)
    if fixed is not None:
        atoms.set_constraint(FixAtoms(indices=list(fixed)) if fixed else [])
    return atoms


def to_pymatgen(atoms: Atoms, molecule: bool = False) -> Structure | Molecule:
    """The pymatgen object of ``atoms`` (no constraints, no calculator)."""
    if molecule or not atoms.pbc.any():
        return Molecule(atoms.get_chemical_symbols(), atoms.positions)
    return Structure(
        atoms.cell.array, atoms.get_chemical_symbols(), atoms.positions, coords_are_cartesian=True
    )


def selective_dynamics(n_sites: int, fixed: list[int]) -> list[list[bool]]:
    fixed_set = set(fixed)
    return [[i not in fixed_set] * 3 for i in range(n_sites)]


def as_array(forces) -> list[tuple[float, float, float]]:
    return [tuple(float(x) for x in f) for f in np.asarray(forces)]
