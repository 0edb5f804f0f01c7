"""Inputs of the workflows, no model needed: adsorbates, references, facets, placements, CIFs.

References: element balances of the reference reactions, pymatgen's
AdsorbateSiteFinder count of distinct (111) sites (ontop, bridge, fcc, hcp),
covalent radii (ASE), and hand-written broken CIFs.
"""

import numpy as np
import pytest
from omni_flows.workflows import (
    FacetError,
    FrameworkError,
    SlabSpec,
    UnknownAdsorbateError,
    get_adsorbate,
    parse_facet,
)
from omni_flows.workflows.structures.frameworks import check_framework, insert_guest, load_framework
from omni_flows.workflows.structures.placements import PlacementSettings, make_placements
from omni_flows.workflows.thermo.references import gas_coefficients
from omni_flows.workflows.structures.slabs import bulk_structure, make_slab, terminations
from pymatgen.core import Composition, Lattice, Structure


@pytest.mark.parametrize("name", ["H", "O", "N", "C", "OH", "CO", "CO2", "H2O", "NH3", "CH3"])
def test_gas_reference_coefficients_balance_every_element(name):
    total: dict[str, float] = {}
    for molecule, n in gas_coefficients(name).items():
        for element, count in Composition(molecule).items():
            total[element.symbol] = total.get(element.symbol, 0.0) + n * count
    expected = {el.symbol: n for el, n in Composition(name).items()}
    assert {el: n for el, n in total.items() if abs(n) > 1e-9} == pytest.approx(expected)


def test_unknown_adsorbate_and_bad_index_are_clear_errors(tmp_path):
    with pytest.raises(UnknownAdsorbateError, match="unknown adsorbate 'XYZ'"):
        get_adsorbate("XYZ")
    f = tmp_path / "hcooh.xyz"
    f.write_text("3\n\nC 0 0 0\nO 0 0 1.2\nH 0 1 -0.5\n")
    assert get_adsorbate(f"{f}:1").symbols[1] == "O"
    with pytest.raises(UnknownAdsorbateError, match="binding atom index"):
        get_adsorbate(f"{f}:7")


def test_facets_parse_and_impossible_ones_fail():
    assert parse_facet("111") == (1, 1, 1) and parse_facet("1-10") == (1, -1, 0)
    assert parse_facet("2,1,1") == (2, 1, 1)
    for bad in ("11", "1111", "abc"):
        with pytest.raises(FacetError):
            parse_facet(bad)
    with pytest.raises(FacetError, match="not a plane"):
        terminations(bulk_structure("Cu"), (0, 0, 0), SlabSpec())


def test_slab_is_tiled_to_8_A_with_bottom_layers_fixed():
    bulk = bulk_structure("Cu")
    slab, fixed = make_slab(bulk, (1, 1, 1), terminations(bulk, (1, 1, 1), SlabSpec())[0],
                            SlabSpec())
    assert min(slab.lattice.abc[:2]) >= 8.0
    z = slab.cart_coords[:, 2]
    assert len(fixed) == len(slab) // 2 and z[fixed].max() < np.delete(z, fixed).min()


def test_placements_cover_the_four_111_sites_with_the_binding_atom_down():
    bulk = bulk_structure("Pt")
    slab, fixed = make_slab(bulk, (1, 1, 1), 0.1667, SlabSpec(supercell=(2, 2)))
    co = get_adsorbate("CO")
    upright = PlacementSettings(n_random=2, seed=3, orientations=("up",))  # CO stands
    placements = make_placements(slab, fixed, co, upright)
    assert [p.site_type for p in placements] == ["hollow", "ontop", "bridge", "hollow",
                                                 "random", "random"]
    top = slab.cart_coords[:, 2].max()
    for p in placements:
        c, o = (p.structure.cart_coords[i] for i in p.adsorbate_indices[::-1])  # g2: O, C
        assert p.structure[p.adsorbate_indices[co.binding_index]].specie.symbol == "C"
        assert o[2] > c[2] > top  # binding atom down
    ontop = placements[1].structure.cart_coords[placements[1].adsorbate_indices[1]]
    assert ontop[2] - top == pytest.approx(1.36 + 0.76, abs=0.01)  # Pt + C covalent radii
    again = make_placements(slab, fixed, co, upright)
    assert all(a.structure == b.structure for a, b in zip(placements, again))


def test_broken_disordered_overlapping_and_hydrogen_free_frameworks_are_rejected(tmp_path):
    broken = tmp_path / "broken.cif"
    broken.write_text("data_x\n_cell_length_a 10\n")
    with pytest.raises(FrameworkError, match="broken.cif"):
        load_framework(broken)
    lattice = Lattice.cubic(10.0)
    disordered = Structure(lattice, [{"Zn": 0.5, "Cu": 0.5}, "O"], [[0, 0, 0], [0.2, 0, 0]])
    with pytest.raises(FrameworkError, match="disordered"):
        check_framework(disordered, "dis.cif")
    overlap = Structure(lattice, ["Zn", "O", "O"], [[0, 0, 0], [0.2, 0, 0], [0.2, 0.03, 0]])
    with pytest.raises(FrameworkError, match="overlap"):
        check_framework(overlap, "ovl.cif")
    no_h = Structure(lattice, ["Zn", "C", "O"], [[0, 0, 0], [0.2, 0, 0], [0.33, 0, 0]])
    with pytest.raises(FrameworkError, match="without hydrogen"):
        check_framework(no_h, "noh.cif")


def test_guest_insertion_keeps_clear_of_the_framework():
    lattice = Lattice.cubic(12.0)
    fw = Structure(lattice, ["Zn", "O", "C", "H"], [[0, 0, 0], [0.15, 0, 0], [0.25, 0, 0],
                                                    [0.33, 0, 0]])
    co2 = get_adsorbate("CO2")
    cplx = insert_guest(fw, co2, np.random.default_rng(0))
    d = cplx.lattice.get_all_distances(cplx.frac_coords[4:], cplx.frac_coords[:4])
    assert len(cplx) == 7 and d.min() >= 2.2
    guest = cplx.cart_coords[4:]
    assert np.linalg.norm(guest[1] - guest[0]) == pytest.approx(1.18, abs=0.01)
