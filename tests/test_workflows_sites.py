"""Site labels and compositions from geometry; multidentate placements; symmetry deduplication.

References, none from the code under test: ASE's named sites of fcc(100) and fcc(110)
(``add_adsorbate``); sites built over chosen atoms of Pt(211) at one bond length from each;
the counts of an L1_2 layer (Pt3Ni(111): one Ni per four atoms, no Ni-Ni neighbours, so 3
of the 4 fcc hollows of the 2x2 cell hold one Ni; Cu3Au(100): a CuAu checkerboard, every
bond Au-Cu and every 4-fold hollow Au2Cu2); the number of symmetry-distinct sites of
fcc(111) (ontop, bridge, fcc, hcp) and fcc(100) (ontop, bridge, 4-fold); ASE covalent radii
for bonding heights; the gas geometry of the molecule for rigid placement.
"""

import json

import numpy as np
import pytest
from ase.build import add_adsorbate, fcc100, fcc110, molecule
from ase.data import atomic_numbers, covalent_radii
from monty.json import MontyDecoder, jsanitize
from pymatgen.core import Lattice, Structure

from omni_flows.workflows.structures.adsorbates import get_adsorbate
from omni_flows.workflows.structures.placements import (
    DEDUPE_TOLERANCE,
    PlacementSettings,
    all_sites,
    equivalent,
    heuristic_sites,
    make_placements,
    place,
    surface_operations,
)
from omni_flows.workflows.structures.sites import site_composition, site_type
from omni_flows.workflows.structures.slabs import SlabSpec, bulk_structure, layers, make_slab, terminations


def _l12(a: float, minority: str, majority: str) -> Structure:
    """L1_2 A3B: B at the cube corner, A at the face centres."""
    return Structure(Lattice.cubic(a), [minority] + [majority] * 3,
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def _slab(bulk, hkl, spec=SlabSpec()):
    bulk = bulk_structure(bulk) if isinstance(bulk, str) else bulk
    return make_slab(bulk, hkl, terminations(bulk, hkl, spec)[0], spec)


def _radius(symbol):
    return covalent_radii[atomic_numbers[symbol]]


def _label(structure, n):
    return site_type(structure, list(range(n)), n), site_composition(structure, list(range(n)), n)


@pytest.mark.parametrize("builder, site, height, expected", [
    (fcc100, "ontop", 2.0, ("ontop", "Pt")),
    (fcc100, "bridge", 1.5, ("bridge", "PtPt")),
    (fcc100, "hollow", 1.0, ("4fold", "PtPtPtPt")),
    (fcc110, "ontop", 2.0, ("ontop", "Pt")),
    (fcc110, "shortbridge", 1.5, ("bridge", "PtPt")),
    (fcc110, "longbridge", 1.2, ("bridge", "PtPt")),
    # the (110) trough: four top-row atoms and the second-layer atom under it
    (fcc110, "hollow", 0.9, ("step-5fold", "PtPtPtPtPt")),
])
def test_site_labels_at_ase_named_sites_of_fcc100_and_fcc110(builder, site, height, expected):
    slab = builder("Pt", (2, 2, 4), vacuum=8.0, a=3.92)
    n = len(slab)
    add_adsorbate(slab, "O", height, site)
    assert _label(slab, n) == expected


def _over(points: np.ndarray, bond: float) -> np.ndarray:
    """The point above ``points`` (2 or 3 atoms) at ``bond`` from each of them."""
    centre = points.mean(axis=0)
    if len(points) == 3:  # circumcentre of the triangle, then along its upward normal
        a, b, c = points
        ab, ac = b - a, c - a
        normal = np.cross(ab, ac)
        centre = a + (np.dot(ac, ac) * np.cross(normal, ab) + np.dot(ab, ab)
                      * np.cross(ac, normal)) / (2 * np.dot(normal, normal))
        normal = normal / np.linalg.norm(normal) * np.sign(normal[2])
    else:
        normal = np.array([0.0, 0, 1])
    reach = np.linalg.norm(points[0] - centre)
    return centre + normal * np.sqrt(bond ** 2 - reach ** 2)


def test_site_labels_at_the_step_edge_of_fcc211():
    """O one Pt-O bond (2.05 A) from the chosen atoms of Pt(211), 12 atomic planes: over one
    edge atom ontop, between two edge atoms bridge, over two edge atoms and the nearest atom
    of the row below (0.8 A lower) the 3-fold step hollow: 'step-3fold'."""
    slab, _ = _slab("Pt", (2, 1, 1), SlabSpec(n_layers=12, n_fixed_layers=6))
    groups = layers(slab.cart_coords[:, 2])
    edge, below = groups[-1], groups[-2]
    a, b = slab.lattice.matrix[:2]
    images = [(j, slab.cart_coords[j] + i * a + k * b) for j in range(len(slab))
              for i in (-1, 0, 1) for k in (-1, 0, 1)]
    e0 = slab.cart_coords[edge[0]]
    e1 = min((p for j, p in images if j in edge and np.linalg.norm(p - e0) > 0.1),
             key=lambda p: np.linalg.norm(p - e0))
    assert np.linalg.norm(e1 - e0) == pytest.approx(3.92 / np.sqrt(2), abs=0.02)
    low = min((p for j, p in images if j in below), key=lambda p: np.linalg.norm(
        (p - (e0 + e1) / 2)[:2]))
    n = len(slab)
    for points, expected in (([e0], ("ontop", "Pt")), ([e0, e1], ("bridge", "PtPt")),
                             ([e0, e1, low], ("step-3fold", "PtPtPt"))):
        structure = slab.copy()
        structure.append("O", _over(np.array(points), 2.05), coords_are_cartesian=True)
        assert _label(structure, n) == expected


def test_site_compositions_on_l12_pt3ni_111():
    """Every ontop, bridge and hollow of the 2x2-sized Pt3Ni(111) cell, O one covalent bond
    from its closest atom: 3 Pt + 1 Ni ontop; 6 Ni-Pt and 6 Pt-Pt bridges (Ni has six Pt
    neighbours in its layer); fcc and hcp hollows 3 NiPtPt + 1 PtPtPt each."""
    slab, fixed = _slab(_l12(3.83, "Ni", "Pt"), (1, 1, 1), SlabSpec(supercell=(1, 1)))
    found = {}
    oxygen = get_adsorbate("O")
    for _, point in all_sites(slab):
        structure, _ = place(slab, fixed, oxygen, point, 0.0)
        label = _label(structure, len(slab))
        found[label] = found.get(label, 0) + 1
    assert found == {("ontop", "Pt"): 3, ("ontop", "Ni"): 1, ("bridge", "NiPt"): 6,
                     ("bridge", "PtPt"): 6, ("fcc", "NiPtPt"): 3, ("fcc", "PtPtPt"): 1,
                     ("hcp", "NiPtPt"): 3, ("hcp", "PtPtPt"): 1}


def test_site_compositions_on_l12_cu3au_100():
    """Cu3Au(100), the mixed CuAu layer on top (a checkerboard): every bridge Au-Cu, every
    4-fold hollow two Au and two Cu, half the ontop sites Au."""
    slab, _ = _slab(_l12(3.75, "Au", "Cu"), (1, 0, 0), SlabSpec(supercell=(2, 2)))
    top = layers(slab.cart_coords[:, 2])[-1]
    assert sorted(slab[i].specie.symbol for i in top) == ["Au"] * 4 + ["Cu"] * 4
    n, z = len(slab), slab.cart_coords[:, 2].max()
    a, b = slab.lattice.matrix[:2]
    images = [slab.cart_coords[j] + s * a + t * b for j in top
              for s in (-1, 0, 1) for t in (-1, 0, 1)]
    found = set()
    for i in top:
        p = slab.cart_coords[i]
        v1, v2 = (q - p for q in sorted(images, key=lambda q: np.linalg.norm(q - p))[1:3])
        if abs(np.dot(v1, v2)) > 0.1:  # two perpendicular nearest-neighbour bonds
            v2 = next(q - p for q in sorted(images, key=lambda q: np.linalg.norm(q - p))[1:5]
                      if abs(np.dot(q - p, v1)) < 0.1)
        for site, xy, height in (("ontop", p, 2.0), ("bridge", p + v1 / 2, 1.5),
                                 ("hollow", p + (v1 + v2) / 2, 1.0)):
            structure = slab.copy()
            structure.append("O", [xy[0], xy[1], z + height], coords_are_cartesian=True)
            found.add(_label(structure, n))
    assert found == {("ontop", "Au"), ("ontop", "Cu"), ("bridge", "AuCu"),
                     ("4fold", "AuAuCuCu")}


def _bond(structure, atom, n):
    d = [structure.get_distance(atom, j) for j in range(n)]
    j = int(np.argmin(d))
    return d[j], _radius(structure[atom].specie.symbol) + _radius(structure[j].specie.symbol)


def test_multidentate_file_adsorbate_binds_through_both_atoms(tmp_path):
    """Ethylene from a file as FILE:0,1 (di-sigma through both C; flat gas C2H4 lies flat):
    on Pt(111) both C sit at one covalent bond (0.76 + 1.36 A) from their closest Pt (a
    placement whose H atoms would touch the surface is lifted, by at most 0.3 A here),
    with the C-C bond of the gas molecule and the H atoms on the side away from the
    surface."""
    path = tmp_path / "c2h4.xyz"  # di-sigma ethylene, sp3-bent (the H atoms to one side)
    path.write_text("6\n\nC -0.15 0.86 0.29\nC 1.15 0.13 0.29\nH -0.09 1.88 0.68\n"
                    "H -0.99 0.30 0.71\nH 1.99 0.70 0.68\nH 1.09 -0.88 0.71\n")
    ethylene = get_adsorbate(f"{path}:0,1")
    assert ethylene.binders == (0, 1) and ethylene.multidentate
    assert ethylene.adsorbate_id.startswith("C2H4:0,1-") and ethylene.label == "c2h4.xyz:0,1"
    again = MontyDecoder().process_decoded(json.loads(json.dumps(jsanitize(ethylene,
                                                                            strict=True))))
    assert again == ethylene  # as a job argument: JSON and back, binding atoms kept
    assert get_adsorbate(f"{path}:0").adsorbate_id.startswith("C2H4:0-")  # as before
    flat = tmp_path / "flat.xyz"
    molecule("C2H4").write(flat)
    assert np.abs(get_adsorbate(f"{flat}:0,1").oriented()[:, 2]).max() < 1e-6
    slab, fixed = _slab("Pt", (1, 1, 1), SlabSpec(supercell=(2, 2)))
    n = len(slab)
    placements = make_placements(slab, fixed, ethylene, PlacementSettings(n_random=2))
    assert len(placements) >= 4
    gas = np.linalg.norm(np.subtract(*np.array(ethylene.positions)[[0, 1]]))
    at_bond = 0
    for p in placements:
        c0, c1 = p.adsorbate_indices[:2]
        gaps = [np.subtract(*_bond(p.structure, c, n)) for c in (c0, c1)]
        assert all(-0.01 < gap < 0.3 for gap in gaps), (p.site_type, gaps)
        at_bond += all(abs(gap) < 0.01 for gap in gaps)
        assert p.structure.get_distance(c0, c1) == pytest.approx(gas, abs=1e-6)
        z = p.structure.cart_coords[p.adsorbate_indices, 2]
        assert z[2:].mean() > z[:2].mean()  # the H atoms on the side away from the Pt
    assert at_bond >= 0.75 * len(placements)
    # the heuristic ones start over two neighbouring sites
    assert all("+" in p.site_type for p in placements if p.site_type != "random")


def test_oc20_bidentate_named_with_its_binding_atoms():
    pytest.importorskip("fairchem.data.oc.databases.pkls")
    nnh = get_adsorbate("*N*NH")
    assert nnh.binders == (0, 1) and nnh.adsorbate_id == "*N*NH:0,1"
    assert get_adsorbate("*OH").adsorbate_id == "*OH"  # monodentate: the name, as before
    slab, fixed = _slab("Pt", (1, 0, 0), SlabSpec(supercell=(2, 2)))
    n = len(slab)
    for p in make_placements(slab, fixed, nnh, PlacementSettings(n_random=0)):
        for k in p.adsorbate_indices[:2]:
            distance, bond = _bond(p.structure, k, n)
            assert distance == pytest.approx(bond, abs=0.01)


@pytest.mark.parametrize("hkl, distinct", [((1, 1, 1), 4), ((1, 0, 0), 3)])
def test_every_site_of_the_cell_reduces_to_the_distinct_ones(hkl, distinct):
    """O over every ontop, bridge and hollow of a Pt cell (no symmetry reduction): the slab's
    surface symmetry leaves 4 on fcc(111) (ontop, bridge, fcc, hcp), 3 on fcc(100)."""
    slab, fixed = _slab("Pt", hkl)
    ops = surface_operations(slab)
    oxygen = get_adsorbate("O")
    kept = []
    every = all_sites(slab)
    for _, point in every:
        structure, idx = place(slab, fixed, oxygen, point, 0.0)
        pos = structure.cart_coords[idx]
        if not any(equivalent(slab.lattice, ["O"], k, pos, ops) for k in kept):
            kept.append(pos)
    assert len(every) > 3 * distinct and len(kept) == distinct
    assert len(heuristic_sites(slab)) == distinct  # pymatgen's reduction agrees


def test_equivalence_of_molecules_under_surface_operations():
    """H2O ontop on Pt(111), its H-H axis along a nearest-neighbour direction (normal to a
    mirror of the C3v site): turned by 120 deg it is the same placement (C3), turned by
    30 deg another; shifted by 2 x DEDUPE_TOLERANCE another too."""
    slab, fixed = _slab("Pt", (1, 1, 1), SlabSpec(supercell=(2, 2)))
    ops = surface_operations(slab)
    assert len(ops) == 6 * 4  # C3v at each of the 4 atoms of the top layer's 2x2 cell
    water = get_adsorbate("H2O")
    symbols = list(water.symbols)
    ontop = [p for kind, p in heuristic_sites(slab) if kind == "ontop"][0]

    def at(angle, shift=(0.0, 0.0, 0.0)):
        structure, idx = place(slab, fixed, water, ontop + np.array(shift), angle)
        return structure.cart_coords[idx]

    h = [i for i, s in enumerate(symbols) if s == "H"]
    hh = np.subtract(*at(0.0)[h])
    a = slab.lattice.matrix[0]
    along = np.arctan2(a[1], a[0]) - np.arctan2(hh[1], hh[0])
    base = at(along)
    assert equivalent(slab.lattice, symbols, base, at(along + 2 * np.pi / 3), ops)
    assert not equivalent(slab.lattice, symbols, base, at(along + np.pi / 6), ops)
    assert not equivalent(slab.lattice, symbols, base, at(along, (2 * DEDUPE_TOLERANCE, 0, 0)),
                          ops)


def test_default_placements_lose_nothing_to_deduplication():
    """pymatgen's sites are already symmetry-distinct and seeded random spots land on no
    image of another: O and CO (upright and flat) keep every placement on Pt(111), (100)
    and (211)."""
    from omni_flows.workflows.structures.placements import starts

    for hkl in ((1, 1, 1), (1, 0, 0), (2, 1, 1)):
        slab, fixed = _slab("Pt", hkl)
        for name in ("O", "CO"):
            adsorbate = get_adsorbate(name)
            placements = make_placements(slab, fixed, adsorbate, PlacementSettings())
            assert len(placements) == len(heuristic_sites(slab)) * len(starts(adsorbate)) + 2, \
                (hkl, name)


@pytest.mark.parametrize("size", [(1, 1, 4), (2, 2, 4), (3, 3, 4)])
def test_sites_are_named_alike_in_a_1x1_cell_and_in_larger_ones(size):
    """A 1x1 cell's hollow is one atom and two of its periodic images: counted per image,
    the names are those of ASE's named sites in any cell (a translation symmetry)."""
    from ase.build import add_adsorbate, fcc111

    for site, name in [("ontop", "ontop"), ("bridge", "bridge"), ("fcc", "fcc"),
                       ("hcp", "hcp")]:
        slab = fcc111("Pt", size, a=3.92, vacuum=8.0)
        n = len(slab)
        add_adsorbate(slab, "H", 1.6 if site == "ontop" else 1.0, site)
        assert site_type(slab, list(range(n)), n) == name
        atoms_in_site = {"ontop": 1, "bridge": 2}.get(name, 3)
        assert site_composition(slab, list(range(n)), n) == "Pt" * atoms_in_site


def test_a_multidentate_site_names_every_binding_atoms_site():
    """*N*NH placed over pymatgen's heuristic site pairs of Pt(111) (unrelaxed, each N one
    bond from the surface): the geometric label of each N agrees with the site it was put
    over (a pymatgen hollow is fcc or hcp), joined in binding-atom order."""
    pytest.importorskip("fairchem.data.oc.databases.pkls")
    from omni_flows.workflows.structures.sites import adsorbate_site

    nnh = get_adsorbate("*N*NH")
    slab, fixed = _slab("Pt", (1, 1, 1))
    slab_atoms = list(range(len(slab)))
    named = {"ontop": {"ontop"}, "bridge": {"bridge"}, "hollow": {"fcc", "hcp"}}
    checked = 0
    for p in make_placements(slab, fixed, nnh, PlacementSettings(n_random=0)):
        label, composition = adsorbate_site(p.structure, slab_atoms, p.adsorbate_indices[:2])
        starts = p.site_type.split("+")
        assert len(label.split("+")) == 2 and composition.count("+") == 1
        assert all(kind in named[start] for kind, start in zip(label.split("+"), starts)), \
            (p.site_type, label)
        assert composition == "+".join("Pt" * {"ontop": 1, "bridge": 2}.get(k, 3)
                                       for k in label.split("+"))
        checked += 1
    assert checked >= 4


def test_tilt_tips_molecules_within_the_cone_and_keeps_sites_and_turns():
    """The default tilt (20 degrees, AdsorbML's cone): every OH's O-H axis lies within 20
    degrees of the normal, tipped (not upright), with the gas bond length; the sites,
    binding-atom positions and turns about the normal are those of the upright placements
    (--tilt 0), whose settings id is the one they had before tilt existed."""
    slab, fixed = _slab("Pt", (1, 1, 1))
    oh = get_adsorbate("OH")
    standing = ("up",)  # upright starts alone (flat, H-down: test_placement_starts.py)
    upright = make_placements(slab, fixed, oh,
                              PlacementSettings(n_random=4, tilt=0, orientations=standing))
    tipped = make_placements(slab, fixed, oh,
                             PlacementSettings(n_random=4, orientations=standing))
    assert [p.site_type for p in tipped] == [p.site_type for p in upright]
    angles = []
    for up, tip in zip(upright, tipped):
        o_up, h_up = up.structure.cart_coords[up.adsorbate_indices]
        o, h = tip.structure.cart_coords[tip.adsorbate_indices]
        assert np.allclose(o[:2], o_up[:2], atol=1e-9)
        assert np.linalg.norm(h - o) == pytest.approx(np.linalg.norm(h_up - o_up), abs=1e-9)
        assert np.degrees(np.arccos((h_up - o_up)[2] / np.linalg.norm(h_up - o_up))) < 1e-6
        angles.append(np.degrees(np.arccos((h - o)[2] / np.linalg.norm(h - o))))
    assert all(0 < a <= 20 + 1e-9 for a in angles) and np.ptp(angles) > 1
    assert "tilt" not in PlacementSettings(tilt=0, orientations=standing).identity()
    assert PlacementSettings().identity()["tilt"] == 20.0
    o_only = make_placements(slab, fixed, get_adsorbate("O"), PlacementSettings())
    assert [p.structure for p in o_only] == [p.structure for p in make_placements(
        slab, fixed, get_adsorbate("O"), PlacementSettings(tilt=0))]
