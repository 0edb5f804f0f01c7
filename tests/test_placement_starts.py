"""Flat and H-down starts of molecules that can lie down or turn (issue 29).

References: the gas geometry (a start is a rigid turn: every interatomic distance kept),
the surface normal (flat: every atom at one height; H-down: the H atoms below the rest),
and the placements made before these starts existed (``orientations=("up",)``), which
must come first, unchanged, and keep their settings id.
"""

import numpy as np
import pytest
from ase.data import atomic_numbers, covalent_radii
from omni_flows.db_schemas.identity import settings_id
from omni_flows.workflows.structures.adsorbates import get_adsorbate
from omni_flows.workflows.errors import WorkflowInputError
from omni_flows.workflows.structures.placements import PlacementSettings, make_placements, starts
from omni_flows.workflows.structures.slabs import SlabSpec, bulk_structure, make_slab, terminations
from scipy.spatial.distance import pdist

UP = ("up",)


@pytest.fixture(scope="module")
def pt111():
    bulk, spec = bulk_structure("Pt"), SlabSpec(supercell=(2, 2))
    return make_slab(bulk, (1, 1, 1), terminations(bulk, (1, 1, 1), spec)[0], spec)


def _radius(site):
    return covalent_radii[atomic_numbers[site.specie.symbol]]


def _adsorbate_positions(p):
    return p.structure.cart_coords[p.adsorbate_indices]


def test_ooh_starts_upright_then_flat_then_h_down_on_every_site_then_random(pt111):
    """Pt(111) 2x2 has 4 distinct sites: 4 upright, 4 flat, 4 H-down, 2 random (14); the
    first 4 are the upright placements made before, atom for atom."""
    slab, fixed = pt111
    ooh = get_adsorbate("*OOH")
    made = make_placements(slab, fixed, ooh, PlacementSettings())
    sites = ["hollow", "ontop", "bridge", "hollow"]
    assert [p.site_type for p in made] == sites + [f"{s}/flat" for s in sites] + \
        [f"{s}/h-down" for s in sites] + ["random", "random/flat"]
    before = make_placements(slab, fixed, ooh, PlacementSettings(orientations=UP))
    assert [p.structure for p in made[:4]] == [p.structure for p in before[:4]]
    capped = make_placements(slab, fixed, ooh, PlacementSettings(max_placements=4))
    assert [p.structure for p in capped] == [p.structure for p in before[:4]]


@pytest.mark.parametrize("name", ["OH", "*OOH", "H2O"])
def test_flat_lies_in_the_surface_plane_and_h_down_points_its_h_at_the_surface(pt111, name):
    """With --tilt 0: a flat start has every atom at one height, an H-down start has every
    H below every other atom; both keep the gas geometry (all distances to 1e-9 A)."""
    slab, fixed = pt111
    adsorbate = get_adsorbate(name)
    gas = pdist(np.asarray(adsorbate.positions))
    made = make_placements(slab, fixed, adsorbate, PlacementSettings(tilt=0, n_random=0))
    flat = [p for p in made if p.site_type.endswith("/flat")]
    down = [p for p in made if p.site_type.endswith("/h-down")]
    assert len(flat) == len(down) == 4
    hydrogen = np.array(adsorbate.symbols) == "H"
    top = slab.cart_coords[:, 2].max()
    for p in flat + down:
        pos = _adsorbate_positions(p)
        assert np.allclose(pdist(pos), gas, atol=1e-9)
        assert pos[:, 2].min() > top  # above the top layer
        for i in p.adsorbate_indices:  # lifted clear of the slab: 0.8 x covalent radii
            site = p.structure[i]
            assert all(site.distance(p.structure[j]) >= 0.8 * (_radius(site) + _radius(
                p.structure[j])) - 1e-6 for j in range(len(slab))), p.site_type
    for p in flat:
        assert np.ptp(_adsorbate_positions(p)[:, 2]) < 1e-9
    for p in down:
        z = _adsorbate_positions(p)[:, 2]
        assert z[hydrogen].max() < z[~hydrogen].min()


def test_which_adsorbates_turn():
    """Atoms, multidentate and centred molecules start upright only; CO lies flat but has
    no H to turn down."""
    assert starts(get_adsorbate("O")) == UP
    assert starts(get_adsorbate("CO2")) == UP  # centred on its C, already flat
    assert starts(get_adsorbate("*N*NH")) == UP
    assert starts(get_adsorbate("CO")) == ("up", "flat")
    assert starts(get_adsorbate("*OOH")) == ("up", "flat", "h-down")


def test_the_new_starts_are_other_settings_and_upright_only_keeps_the_old_id():
    """The settings id of the default placements before orientations existed (the dict as
    it was) is kept by orientations=("up",); the default's differs; the order given does
    not matter."""
    old = {"n_random": 2, "max_placements": None, "seed": 0, "tilt": 20.0}
    assert PlacementSettings(orientations=UP).identity() == old
    assert settings_id(PlacementSettings().identity()) != settings_id(old)
    assert PlacementSettings(orientations=["h-down", "up"]).orientations == ("up", "h-down")
    for bad in ([], ["sideways"]):
        with pytest.raises(WorkflowInputError, match="orientations"):
            PlacementSettings(orientations=bad)
