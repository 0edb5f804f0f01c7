"""Coverage: several adsorbates per cell, placed as translation images of one site as far
apart as the cell allows, with energies and free-energy corrections per adsorbate."""

import itertools
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.stores import connect_database
from omni_flows.workflows.structures.adsorbates import get_adsorbate
from omni_flows.workflows.structures.geometry import to_atoms
from omni_flows.workflows.errors import WorkflowInputError
from omni_flows.workflows.structures.placements import PlacementSettings, make_placements
from omni_flows.workflows.structures.sites import site_type
from omni_flows.workflows.structures.slabs import SlabSpec, bulk_structure, make_slab
from conftest import cli_database

runner = CliRunner()


def pt111(supercell=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_slab(bulk_structure("Pt"), (1, 1, 1), 0.0, SlabSpec(supercell=supercell))


def test_three_per_cell_form_the_sqrt3_overlayer_on_one_kind_of_site():
    """3 O on a 3x3 Pt(111) cell, farthest apart: the (sqrt3 x sqrt3)R30 overlayer, every O
    sqrt(3) x the Pt-Pt distance (ASE's a = 3.92 A) from the others and all on the same
    kind of site; the coverage-1 placements are the same geometry minus the copies."""
    slab, fixed = pt111()
    single = make_placements(slab, fixed, get_adsorbate("O"), PlacementSettings())
    triple = make_placements(slab, fixed, get_adsorbate("O"), PlacementSettings(coverage=3))
    assert [p.site_type for p in triple] == [p.site_type for p in single]
    nn = 3.92 / np.sqrt(2)
    for one, three in zip(single, triple):
        assert np.allclose(three.structure.cart_coords[three.adsorbate_indices[0]],
                           one.structure.cart_coords[one.adsorbate_indices[0]])
        o = three.structure.cart_coords[three.adsorbate_indices]
        lattice = three.structure.lattice
        for i, j in itertools.combinations(range(3), 2):
            d = lattice.get_distance_and_image(lattice.get_fractional_coords(o[i]),
                                               lattice.get_fractional_coords(o[j]))[0]
            assert d == pytest.approx(np.sqrt(3) * nn, abs=1e-3)
        assert np.ptp(o[:, 2]) < 1e-6
    # every copy over the same kind of site as the first (the first start: a hollow)
    hollow = triple[0]
    atoms = to_atoms(hollow.structure)
    slab_idx = list(range(len(slab)))
    kinds = {site_type(atoms, slab_idx, i) for i in hollow.adsorbate_indices}
    assert len(kinds) == 1 and kinds <= {"fcc", "hcp"}


def test_a_cell_too_small_for_the_coverage_is_refused():
    slab, fixed = pt111((1, 1))
    with pytest.raises(WorkflowInputError, match="--coverage 2.*larger\n?.*--supercell"):
        make_placements(slab, fixed, get_adsorbate("O"), PlacementSettings(coverage=2))
    slab, fixed = pt111((2, 2))
    assert len(make_placements(slab, fixed, get_adsorbate("O"),
                               PlacementSettings(coverage=4, max_placements=1))[0]
               .adsorbate_indices) == 4
    with pytest.raises(WorkflowInputError, match="whole number of at least 1"):
        PlacementSettings(coverage=0)


def test_one_per_cell_keeps_the_settings_of_results_made_before_coverage():
    assert "coverage" not in PlacementSettings().identity()
    assert PlacementSettings(coverage=2).identity()["coverage"] == 2


@pytest.fixture(scope="module")
def coverage_screen(db_server, tmp_path_factory):
    """H on Pt(111) at 1 and 3 per 3x3 cell, with free energies."""
    settings, env = cli_database(db_server, "t_cov", COLUMNS="200")
    out = tmp_path_factory.mktemp("coverage")
    for coverage in ("1", "3"):
        result = runner.invoke(app, [
            "screen", "surfaces", "--bulk", "Pt", "--facets", "111", "--adsorbates", "H",
            "--max-placements", "1", "--n-random", "0", "--device", "cpu", "--free-energy",
            "--coverage", coverage, "--out", str(out)], env=env)
        assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return connect_database(settings)


def test_energies_are_per_adsorbate_and_both_coverages_are_kept(coverage_screen):
    """E_ads per H from the stored terms (E_ref = E(H2)/2); H on Pt(111) binds almost
    independently of coverage up to 1/3 ML (DFT: within ~0.1 eV from 1/4 to 1 ML,
    Skulason et al., J. Phys. Chem. C 114, 18182 (2010)); the harmonic correction per H
    stays near the textbook +0.24 eV less half H2's H(298) - H(0) (0.044 eV)."""
    db = coverage_screen
    best = {d["coverage"]: d for d in db["adsorption_best"].find({}, {"_id": 0})}
    assert set(best) == {1, 3} and best[1]["settings_id"] != best[3]["settings_id"]
    assert best[1]["coverage_ml"] == pytest.approx(1 / 9)
    assert best[3]["coverage_ml"] == pytest.approx(3 / 9)
    (h2,) = db["calculations"].find({"formula_pretty": "H2"}, {"output.energy": 1})
    (slab,) = db["slabs"].find({}, {"energy": 1})
    (placement,) = db["adsorption_placements"].find({"coverage": 3})
    assert len(placement["final_structure"]["sites"]) == len(
        placement["initial_structure"]["sites"]) and placement["reference_energy"] == \
        pytest.approx(h2["output"]["energy"] / 2, abs=1e-9)
    assert placement["adsorption_energy"] == pytest.approx(
        (placement["energy"] - slab["energy"] - 1.5 * h2["output"]["energy"]) / 3, abs=1e-9)
    assert best[3]["adsorption_energy"] == pytest.approx(best[1]["adsorption_energy"], abs=0.1)
    assert best[3]["free_energy_correction"] == pytest.approx(
        best[1]["free_energy_correction"], abs=0.03)
    assert best[3]["free_energy_correction"] == pytest.approx(0.24 - 0.044, abs=0.05)
