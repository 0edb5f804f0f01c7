"""The slab rules of SlabSpec (workflows/structures/slabs.py) measured on real facets.

References: fcc interlayer spacings a/sqrt(3) (111), a/2 (100), a/(2 sqrt(2)) (110) and
a/(2 sqrt(6)) (211) with ASE's Pt a = 3.92 A; the nearest-neighbour distance a/sqrt(2).
"""

import warnings

import numpy as np
import pytest

from omni_flows.workflows.structures.slabs import (
    SlabSpec,
    SlabWarning,
    bulk_structure,
    make_slab,
    slab_geometry,
    terminations,
)

A = 3.92  # A, ASE's Pt


def _made(hkl, spec=SlabSpec()):
    bulk = bulk_structure("Pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        slab, fixed = make_slab(bulk, hkl, terminations(bulk, hkl, spec)[0], spec)
    return slab, fixed, [w for w in caught if issubclass(w.category, SlabWarning)]


@pytest.mark.parametrize("hkl, spacing, warned", [
    ((1, 1, 1), A / np.sqrt(3), False), ((1, 0, 0), A / 2, False),
    ((1, 1, 0), A / (2 * np.sqrt(2)), True), ((2, 1, 1), A / (2 * np.sqrt(6)), True),
])
def test_default_slabs_against_the_rules(hkl, spacing, warned):
    """4 layers, bottom 2 fixed, >= 12 A vacuum on every facet; the 7 A thickness holds on
    the close-packed facets and is warned about, with the layers that reach it, on the open
    and stepped ones."""
    slab, fixed, caught = _made(hkl)
    found = slab_geometry(slab)
    assert found["n_layers"] == 4 and found["vacuum"] >= 12.0
    assert found["thickness"] == pytest.approx(4 * spacing, abs=0.05)
    assert 0 < len(fixed) < len(slab)
    thin = [str(w.message) for w in caught if "thick" in str(w.message)]
    assert bool(thin) == warned
    if warned:
        assert f"--layers {int(np.ceil(7.0 / spacing))} " in thin[0]


def test_enough_layers_and_an_explicit_supercell_meet_the_rules_on_pt211():
    """Pt(211) with 9 layers is 7.2 A thick; its default 3x1 cell puts an adsorbate 7.3 A
    from its image (a + b of the oblique cell), which is warned about."""
    slab, _, caught = _made((2, 1, 1), SlabSpec(n_layers=9, n_fixed_layers=4))
    assert slab_geometry(slab)["thickness"] == pytest.approx(9 * A / (2 * np.sqrt(6)), abs=0.05)
    assert not [w for w in caught if "thick" in str(w.message)]
    assert slab_geometry(slab)["image_distance"] < 8.0
    assert [w for w in caught if "periodic image" in str(w.message)]
    slab, _, caught = _made((2, 1, 1), SlabSpec(n_layers=9, n_fixed_layers=4, supercell=(3, 2)))
    assert slab_geometry(slab)["image_distance"] >= 3 * A / np.sqrt(2) - 0.01 and not caught


def test_all_terminations_screens_both_cuts_of_hcp_ru_10m10():
    """hcp (10-10) cuts between close-spaced or wide-spaced planes: two terminations, whose
    top layers sit at different heights above the layer below. --terminations all screens
    both (two slabs, their own ids); the default the first one only."""
    from dataclasses import replace

    from omni_flows.workflows import MLIPSettings
    from omni_flows.workflows.flows.campaign import SurfaceCampaign
    from omni_flows.workflows.structures.slabs import bulk_structure, terminations

    ru = bulk_structure("Ru")
    shifts = terminations(ru, (1, 0, 0), SlabSpec())
    assert len(shifts) == 2
    gaps = []
    for shift in shifts:
        slab, _ = make_slab(ru, (1, 0, 0), shift, SlabSpec())
        z = sorted({round(float(v), 2) for v in slab.cart_coords[:, 2]})
        gaps.append(round(z[-1] - z[-2], 2))
    # the two cuts expose planes 0.78 and 1.56 A above the next (a sqrt(3)/6 and sqrt(3)/3)
    assert sorted(gaps) == pytest.approx([0.78, 1.56], abs=0.03)
    everything = SurfaceCampaign(bulks=["Ru"], facets=["100"], adsorbates=["O"],
                                 mlip=MLIPSettings(device="cpu"), all_terminations=True)
    first = replace(everything, all_terminations=False)
    assert len(everything.systems()["slab_id"]) == 2 and len(first.systems()["slab_id"]) == 1
    assert first.systems()["slab_id"][0] in everything.systems()["slab_id"]
    assert first.settings_id == everything.settings_id  # the slabs differ, not the settings
    slab_jobs = [j for j in everything.make().iterflow() if j[0].name.startswith("slab")]
    assert len(slab_jobs) == 2


def test_all_terminations_include_the_face_pymatgen_counts_as_a_flip_on_cu3au_100():
    """L1_2 Cu3Au (100) planes alternate CuAu (1:1) and pure Cu. pymatgen counts the slab
    topped by one and its upside-down copy, topped by the other, as one slab; only the top
    face is screened here, so both faces are terminations (pymatgen's first, as before)."""
    from pymatgen.core import Lattice, Structure

    from omni_flows.workflows.structures.slabs import bulk_structure, layers, terminations

    cu3au = Structure(Lattice.cubic(3.75), ["Au", "Cu", "Cu", "Cu"],
                      [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    faces = []
    for hkl in [(1, 0, 0), (1, 1, 0)]:
        shifts = terminations(cu3au, hkl, SlabSpec())
        assert len(shifts) == 2
        for shift in shifts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                slab, _ = make_slab(cu3au, hkl, shift, SlabSpec())
            top = layers(slab.cart_coords[:, 2])[-1]
            symbols = [slab[int(i)].species_string for i in top]
            faces.append(symbols.count("Au") / len(symbols))
    assert faces == pytest.approx([0.5, 0.0, 0.5, 0.0])
    # an element's one (111) face stays one termination
    assert len(terminations(bulk_structure("Pt"), (1, 1, 1), SlabSpec())) == 1
