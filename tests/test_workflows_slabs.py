"""The slab rules of SlabSpec (workflows/slabs.py) measured on real facets.

References: fcc interlayer spacings a/sqrt(3) (111), a/2 (100), a/(2 sqrt(2)) (110) and
a/(2 sqrt(6)) (211) with ASE's Pt a = 3.92 A; the nearest-neighbour distance a/sqrt(2).
"""

import warnings

import numpy as np
import pytest

from omni_flows.workflows.slabs import (
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
