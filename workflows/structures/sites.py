"""Adsorption sites named as catalysis papers name them, from where the adsorbate IS.

The binding atom's surface neighbours decide the site: one is ``ontop``, two
``bridge``, three a 3-fold hollow, four ``4fold`` (fcc(100)), other counts
``Nfold``. A 3-fold hollow is ``hcp`` when an atom of the layer below sits under
the binding atom and ``fcc`` otherwise (the fcc(111) convention). Neighbours in
more than one layer (a step edge and the terrace below it, a (110) trough) give
``step-`` in front of the count.

Neighbours are slab atoms within NEIGHBOUR_MULT x the shortest binding-atom-slab
distance and within COVALENT_MULT x the sum of covalent radii: checked against the
relaxed fcc, hcp, bridge and ontop sites of Xu & Kitchin (2014) (C, N, O, H, F, S,
Cl, Br on Pt, Pd, Cu, Ag, Au(111); tests/test_workflows_identity.py).

On alloys, :func:`site_composition` names the elements forming the site (its
neighbours), e.g. ``NiPtPt`` for an fcc hollow of Pt3Ni(111) with one Ni
(tests/test_workflows_sites.py).
"""

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii
from pymatgen.core import Structure

from .geometry import lateral_shifts, to_atoms
from .slabs import layers

# a neighbour is at most 25% farther than the closest slab atom (fcc hollow: 3 equal bonds;
# the next shell of an ontop atom is > 60% farther)
NEIGHBOUR_MULT = 1.25
# ... and bonded at all: 1.35 x covalent radii keeps O-Cu 2.00 A (4fold) and drops 2.75 A
COVALENT_MULT = 1.35
# A: a lower-layer atom within this lateral distance is "under" the binding atom (hcp);
# fcc(111) hollows have their nearest second-layer atom ~1.6 A off (Pt, Cu: 1.5-1.7 A)
UNDER_LATERAL = 0.8


def _atoms(structure: Structure | Atoms) -> Atoms:
    return structure if isinstance(structure, Atoms) else to_atoms(structure, fixed=[])


def site_neighbours(structure: Structure | Atoms, slab: list[int], atom: int) -> list[int]:
    """Slab atoms bonded to ``atom`` (see the module's rule), once per bonded periodic image:
    in a 1x1 cell the three atoms of a hollow are one atom and two of its images."""
    atoms = _atoms(structure)
    slab = list(slab)
    nearest = atoms.get_distances(atom, slab, mic=True, vector=True)
    d = np.linalg.norm(nearest[None, :, :] + lateral_shifts(atoms.cell)[:, None, :], axis=2)
    radius = covalent_radii[atomic_numbers[atoms[atom].symbol]]
    bonded = np.array([covalent_radii[atoms[j].number] for j in slab]) + radius
    near = (d <= NEIGHBOUR_MULT * d.min()) & (d <= COVALENT_MULT * bonded[None, :])
    return [slab[k] for _, k in zip(*np.nonzero(near))]


def site_type(structure: Structure | Atoms, slab: list[int], atom: int) -> str:
    """The site of ``atom`` (an adsorbate's binding atom) on the slab atoms ``slab``."""
    atoms = _atoms(structure)
    slab = list(slab)
    neighbours = site_neighbours(atoms, slab, atom)
    n = len(neighbours)
    groups = layers(atoms.positions[slab, 2])
    layer_of = {slab[i]: k for k, g in enumerate(groups) for i in g}
    used = sorted({layer_of[j] for j in neighbours})
    if n == 0:
        return "none"
    name = {1: "ontop", 2: "bridge", 4: "4fold"}.get(n, f"{n}fold")
    if len(used) > 1:
        return f"step-{name}"
    if n == 3:
        below = [slab[i] for k in range(used[0]) for i in groups[k]]
        if below:
            lateral = _lateral_distances(atoms, atom, below)
            nearest = below[int(np.argmin(lateral))]
            # only the layer right below counts: in fcc hollows the third layer is under
            if lateral.min() < UNDER_LATERAL and layer_of[nearest] == used[0] - 1:
                return "hcp"
        return "fcc"
    return name


def site_composition(structure: Structure | Atoms, slab: list[int], atom: int) -> str:
    """The elements of the slab atoms forming the site of ``atom`` (:func:`site_neighbours`),
    one symbol per atom, alphabetical: ``'Pt'`` ontop, ``'NiPtPt'`` a Pt2Ni hollow; ``''``
    when no slab atom is bonded."""
    atoms = _atoms(structure)
    return "".join(sorted(atoms[j].symbol for j in site_neighbours(atoms, slab, atom)))


def adsorbate_site(structure: Structure | Atoms, slab: list[int],
                   binders: list[int]) -> tuple[str, str]:
    """(site type, site composition) of an adsorbate bound through the atoms ``binders``:
    each binding atom's, joined by '+' in their order ('bridge+ontop', 'PtPt+Pt')."""
    atoms = _atoms(structure)
    return ("+".join(site_type(atoms, slab, i) for i in binders),
            "+".join(site_composition(atoms, slab, i) for i in binders))


def _lateral_distances(atoms: Atoms, atom: int, others: list[int]) -> np.ndarray:
    """In-plane distances from ``atom`` to ``others``, minimum image in a and b."""
    vectors = atoms.positions[others] - atoms.positions[atom]
    shifts = lateral_shifts(atoms.cell)
    vectors[:, 2] = shifts[:, 2] = 0.0
    return np.linalg.norm(vectors[None, :, :] + shifts[:, None, :], axis=2).min(axis=0)
