"""workflows.structures.geometry: pymatgen <-> ASE, fixed atoms, lateral images.

References: pymatgen's own ASE adaptor (AseAtomsAdaptor: positions, cell, and
selective_dynamics <-> FixAtoms), ASE's own constraint handling (the forces a
FixAtoms zeroes) and ASE's minimum-image distances (ase.geometry.get_distances
with pbc in a and b only).
"""

import numpy as np
import pytest
from ase import Atoms
from ase.build import fcc111, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms, FixCartesian
from ase.geometry import get_distances
from omni_flows.workflows.structures.geometry import (
    MOLECULE_BOX,
    fixed_from_site_properties,
    fixed_indices,
    free_mask,
    lateral_images,
    lateral_shifts,
    selective_dynamics,
    to_atoms,
    to_pymatgen,
)
from pymatgen.core import Molecule
from pymatgen.io.ase import AseAtomsAdaptor


def pt111_with_oxygen() -> Atoms:
    """Pt(111) 2x2x3 (oblique cell), bottom layer held, O over an fcc hollow."""
    slab = fcc111("Pt", (2, 2, 3), a=3.92, vacuum=6.0)
    slab.set_constraint(FixAtoms(mask=slab.positions[:, 2] < slab.positions[:, 2].min() + 0.1))
    top = slab.positions[:, 2].max()
    slab.append("O")
    slab.positions[-1] = slab.positions[-2] + [1.4, 0.8, 1.2]
    slab.positions[-1, 2] = top + 1.2
    return slab


def test_structure_to_atoms_equals_pymatgens_adaptor_with_the_same_fixed_atoms():
    reference = pt111_with_oxygen()
    structure = AseAtomsAdaptor.get_structure(reference)  # selective_dynamics from FixAtoms
    atoms = to_atoms(structure)
    by_pymatgen = AseAtomsAdaptor.get_atoms(structure)
    assert atoms.get_chemical_symbols() == by_pymatgen.get_chemical_symbols()
    assert np.allclose(atoms.positions, by_pymatgen.positions, atol=1e-10)
    assert np.allclose(atoms.cell.array, by_pymatgen.cell.array) and atoms.pbc.all()
    expected = sorted(int(i) for c in by_pymatgen.constraints for i in c.get_indices())
    assert fixed_indices(atoms) == expected == [0, 1, 2, 3]  # the bottom layer of 4
    assert fixed_from_site_properties(structure) == expected
    # given indices replace the structure's flags; [] holds nothing
    assert fixed_indices(to_atoms(structure, fixed=[5, 1])) == [1, 5]
    assert to_atoms(structure, fixed=[]).constraints == []
    # and back: the same species and positions, no constraint carried
    back = to_pymatgen(atoms)
    assert [str(s.specie) for s in back] == [str(s.specie) for s in structure]
    assert np.allclose(back.cart_coords, structure.cart_coords, atol=1e-10)
    assert "selective_dynamics" not in back.site_properties


def test_selective_dynamics_are_what_pymatgen_writes_for_fixatoms():
    atoms = pt111_with_oxygen()
    flags = AseAtomsAdaptor.get_structure(atoms).site_properties["selective_dynamics"]
    assert [list(map(bool, f)) for f in flags] == selective_dynamics(len(atoms), [0, 1, 2, 3])


def test_a_molecule_sits_in_the_centre_of_its_box_and_comes_back_as_a_molecule():
    water = Molecule.from_sites(AseAtomsAdaptor.get_molecule(molecule("H2O")))
    atoms = to_atoms(water)
    assert not atoms.pbc.any() and np.allclose(atoms.cell.lengths(), [MOLECULE_BOX] * 3)
    centre = (atoms.positions.min(axis=0) + atoms.positions.max(axis=0)) / 2
    assert np.allclose(centre, MOLECULE_BOX / 2)
    back = to_pymatgen(atoms)
    assert isinstance(back, Molecule)
    assert np.allclose(back.distance_matrix, water.distance_matrix)


def test_fixed_atoms_are_those_whose_forces_ases_constraints_zero():
    """ASE applies the constraints to the forces: FixAtoms zeroes whole rows; a
    FixCartesian of one direction holds no whole atom."""
    atoms = pt111_with_oxygen()
    atoms.set_constraint([atoms.constraints[0], FixAtoms(indices=[12]),
                          FixCartesian(5, mask=(True, False, False))])
    atoms.calc = SinglePointCalculator(atoms, forces=np.ones((len(atoms), 3)))
    held = np.flatnonzero(~atoms.get_forces().any(axis=1)).tolist()
    assert fixed_indices(atoms) == held == [0, 1, 2, 3, 12]
    assert free_mask(atoms).tolist() == [i not in held for i in range(len(atoms))]
    assert free_mask(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])).all()


def test_lateral_images_give_ases_minimum_image_distances_in_a_and_b():
    atoms = pt111_with_oxygen()
    shifts = lateral_shifts(atoms.cell)
    assert shifts.shape == (9, 3) and np.allclose(shifts[4], 0.0)  # the cell itself, middle
    assert np.allclose(shifts[0], -atoms.cell[0] - atoms.cell[1])
    assert np.allclose(lateral_shifts(to_pymatgen(atoms).lattice), shifts)  # a Lattice too
    images = lateral_images(atoms.positions, atoms.cell)
    n = len(atoms)
    assert images.shape == (9 * n, 3) and np.allclose(images[4 * n:5 * n], atoms.positions)
    _, mic = get_distances(atoms.positions[-1], atoms.positions, cell=atoms.cell,
                           pbc=[True, True, False])
    ours = np.linalg.norm(images - atoms.positions[-1], axis=1).reshape(9, n).min(axis=0)
    assert ours == pytest.approx(mic[0], abs=1e-9)
