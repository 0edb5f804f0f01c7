"""Geometry every workflow shares: pymatgen <-> ASE, fixed atoms, lateral periodic images.

Documents hold pymatgen objects and relaxations run on ASE atoms; :func:`to_atoms`
and :func:`to_pymatgen` convert between them and keep the fixed atoms: VASP's
``selective_dynamics`` (all three flags False) on the pymatgen side, ``FixAtoms``
on the ASE side, as pymatgen's own ASE adaptor maps them. A slab is periodic in
a and b only: :func:`lateral_shifts` are the 9 in-plane cell translations (the
cell itself and its 8 neighbours) that every nearest-image search over a slab
uses, :func:`lateral_images` the positions they give.
"""

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


def selective_dynamics(n_sites: int, fixed: list[int]) -> list[list[bool]]:
    """VASP's flags of ``n_sites`` atoms with ``fixed`` held: [False] * 3 for those."""
    fixed_set = set(fixed)
    return [[i not in fixed_set] * 3 for i in range(n_sites)]


def fixed_indices(atoms: Atoms) -> list[int]:
    """Atoms held by FixAtoms constraints, sorted (other constraints hold no whole atom)."""
    return sorted({int(i) for c in atoms.constraints if isinstance(c, FixAtoms)
                   for i in c.get_indices()})


def free_mask(atoms: Atoms) -> np.ndarray:
    """True for each atom that no FixAtoms holds, shape (N,)."""
    free = np.ones(len(atoms), bool)
    free[fixed_indices(atoms)] = False
    return free


def to_atoms(structure: Structure | Molecule | Atoms, fixed: list[int] | None = None) -> Atoms:
    """ASE Atoms with a FixAtoms over ``fixed`` (default: the structure's
    selective_dynamics; ``[]``: none); a Molecule is centred in a cubic box."""
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


def lateral_shifts(cell) -> np.ndarray:
    """The 9 in-plane translations i a + j b (i, j in -1, 0, 1; i slowest), shape (9, 3),
    of a cell given as a 3x3 matrix (rows a, b, c), ASE Cell or pymatgen Lattice."""
    matrix = np.asarray(getattr(cell, "matrix", cell), dtype=float)
    a, b = matrix[0], matrix[1]
    return np.array([i * a + j * b for i in (-1, 0, 1) for j in (-1, 0, 1)])


def lateral_images(positions: np.ndarray, cell) -> np.ndarray:
    """``positions`` (N, 3) at each of the 9 :func:`lateral_shifts`, shape (9N, 3): shift
    k's copy of atom n is row k N + n."""
    positions = np.asarray(positions, dtype=float)
    return (lateral_shifts(cell)[:, None, :] + positions[None, :, :]).reshape(-1, 3)


def as_array(forces) -> list[tuple[float, float, float]]:
    """Forces (N, 3) as the list of 3-tuples documents store."""
    return [tuple(float(x) for x in f) for f in np.asarray(forces)]
