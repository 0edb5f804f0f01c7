"""Trustworthy results (issue 14): one identity per result, sites where adsorbates end.

References: the stored documents of earlier screens (another setting must add a
result, never replace one, and the first screen's table must come back from the
store); the relaxed fcc/hcp/bridge/ontop geometries of Xu & Kitchin (2014, PBE,
/work/shared/data) for site names; the DFT picture of O on Cu(100) (the 4-fold
hollow is its site); sys.modules of a fresh interpreter for "no torch".
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ase import Atoms
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.db_schemas import ReferenceScheme
from omni_flows.engines.local import run_local
from omni_flows.stores import connect_database, job_store
from omni_flows.workflows import (
    MLIPSettings,
    PlacementSettings,
    SlabSpec,
    SurfaceAdsorptionMaker,
    SurfaceCampaign,
)
from omni_flows.workflows.structures.adsorbates import get_adsorbate
from omni_flows.workflows.thermo.references import adsorbate_references, reference_molecules
from omni_flows.workflows.structures.sites import site_type
from conftest import cli_database

DATA = Path(os.environ.get("OMNI_FLOWS_SHARED_DATA",
                           Path(__file__).parents[2] / "shared" / "data"))
XU_KITCHIN = DATA / "xu_kitchin_2014" / "structures.json"
SMALL = SlabSpec(n_layers=3, n_fixed_layers=1, supercell=(2, 2))
runner = CliRunner()


def test_building_a_flow_and_its_provenance_imports_no_torch():
    code = (
        "import sys\n"
        "from omni_flows.workflows import SurfaceAdsorptionMaker\n"
        "maker = SurfaceAdsorptionMaker(miller_indices=[(1, 1, 1)], adsorbates=['O'])\n"
        "flow = maker.make('Pt')\n"
        "from omni_flows.workflows.provenance import provenance_of\n"
        "p = provenance_of(maker.mlip, maker.settings)\n"
        # gas H2 and H2O, bulk, slab, relaxations, adsorption energies, best
        "assert len(flow.jobs) == 7 and p.checkpoint_hash, flow.jobs\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(not XU_KITCHIN.is_file(), reason="needs /work/shared/data/xu_kitchin_2014")
def test_site_names_match_the_dft_sites_of_xu_kitchin():
    """Every relaxed single-adsorbate (1/4 ML) geometry is named by the site it was relaxed in."""
    data = json.loads(XU_KITCHIN.read_text())
    checked = 0
    for metal, by_adsorbate in data.items():
        for adsorbate, by_site in by_adsorbate.items():
            for site, by_coverage in by_site.items():
                s = by_coverage["0.25"]
                atoms = Atoms(s["symbols"], positions=s["pos"], cell=s["cell"], pbc=True)
                slab = [i for i, a in enumerate(atoms) if a.symbol == metal]
                (binder,) = [i for i, a in enumerate(atoms) if a.symbol != metal]
                assert site_type(atoms, slab, binder) == site, (metal, adsorbate, site)
                checked += 1
    assert checked == 5 * 8 * 4  # metals x adsorbates x sites


def test_o_on_cu100_relaxes_into_the_4fold_hollow_and_is_valid():
    """DFT puts O on Cu(100) in the 4-fold hollow; it must be the best valid placement."""
    maker = SurfaceAdsorptionMaker(
        miller_indices=[(1, 0, 0)], adsorbates=["O"], slab_spec=SMALL,
        mlip=MLIPSettings(device="cpu"), placements=PlacementSettings(n_random=0),
    )
    flow = maker.make("Cu")
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    responses = run_locally(flow, store=store, log=False, raise_immediately=True)
    placements = next(r[1].output for r in responses.values()
                      if isinstance(r[1].output, list)
                      and type(r[1].output[0]).__name__ == "AdsorptionPlacementDoc")
    best = next(r[1].output for r in responses.values()
                if type(r[1].output).__name__ == "BestAdsorptionDoc")
    hollow = [p for p in placements if p.site_type == "4fold"]
    assert hollow and all(p.valid for p in hollow), [
        (p.initial_site_type, p.site_type, p.anomalies) for p in placements]
    assert not any(a.kind.value == "intercalation" for p in placements for a in p.anomalies)
    assert best.valid and best.site_type == "4fold"
    assert best.adsorption_energy == min(p.adsorption_energy for p in placements if p.valid)


def test_a_molecule_from_a_file_is_its_own_gas_reference(tmp_path):
    (tmp_path / "NO.xyz").write_text("2\n\nN 0 0 0\nO 0 0 1.15\n")
    n_down, o_down = get_adsorbate(f"{tmp_path}/NO.xyz:0"), get_adsorbate(f"{tmp_path}/NO.xyz:1")
    builtin = get_adsorbate("NO")
    assert len({n_down.adsorbate_id, o_down.adsorbate_id, builtin.adsorbate_id}) == 3
    scheme = ReferenceScheme.GAS_MOLECULES
    assert adsorbate_references(n_down, scheme) == {n_down.adsorbate_id: 1.0}
    assert set(reference_molecules([n_down], scheme)) == {n_down.adsorbate_id}
    assert adsorbate_references(builtin, scheme) == {"N2": 0.5, "H2O": 1.0, "H2": -1.0}
    # the old name of OC20's per-element scheme still reads
    assert ReferenceScheme("atomic") is ReferenceScheme.OC20_ELEMENTAL


@pytest.fixture(scope="module")
def screens(db_server, tmp_path_factory):
    """Screens that differ in one setting each, on one database; the first run by the CLI."""
    settings, env = cli_database(db_server, "t_ident")
    folder = tmp_path_factory.mktemp("ident")
    (folder / "NO.xyz").write_text("2\n\nN 0 0 0\nO 0 0 1.15\n")
    first = ["screen", "surfaces", "--bulk", "Cu", "--facets", "111", "--adsorbates", "H",
             "--supercell", "2x2", "--layers", "3", "--fixed-layers", "1", "--n-random", "0",
             "--max-placements", "1", "--device", "cpu", "--out", str(folder)]
    result = runner.invoke(app, first, env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    mlip = MLIPSettings(device="cpu")
    base = dict(bulks=["Cu"], facets=["111"], slab_spec=SMALL, mlip=mlip)
    one = PlacementSettings(n_random=0, max_placements=1)
    campaigns = {
        "reference": SurfaceCampaign(adsorbates=["H"], placements=one,
                                     reference=ReferenceScheme.OC20_ELEMENTAL, **base),
        "fmax": SurfaceCampaign(adsorbates=["H"], placements=one,
                                **{**base, "mlip": mlip.model_copy(update={"fmax": 0.1})}),
        "max_placements": SurfaceCampaign(
            adsorbates=["H"], placements=PlacementSettings(n_random=0, max_placements=2),
            **base),
        "files": SurfaceCampaign(adsorbates=[f"{folder}/NO.xyz:0", f"{folder}/NO.xyz:1", "NO"],
                                 placements=one, **base),
    }
    for campaign in campaigns.values():
        run_local(campaign.make(), settings=settings, store=job_store(settings))
    return settings, env, first, campaigns, result.output


def test_each_other_setting_is_another_result_and_the_first_screen_table_comes_back(screens):
    settings, env, first, campaigns, first_output = screens
    db = connect_database(settings)
    h = list(db["adsorption_best"].find({"adsorbate": "H"}, {"_id": 0}))
    ids = {d["settings_id"] for d in h}
    assert len(h) == 4 and len(ids) == 4  # first screen + reference + fmax + max_placements
    for campaign in campaigns.values():
        assert campaign.settings_id in {d["settings_id"] for d in
                                        db["adsorption_best"].find({}, {"settings_id": 1})}
    # reference: same relaxations, the same H number (H is referenced to 1/2 H2 in both)
    by_id = {d["settings_id"]: d for d in h}
    ref = by_id[campaigns["reference"].settings_id]
    assert ref["provenance"]["energy_reference"]["scheme"] == "oc20_elemental"
    assert by_id[campaigns["max_placements"].settings_id]["n_placements"] == 2
    # NO from two files (N down, O down) and the built-in NO: three results, one table
    no = list(db["adsorption_best"].find({"adsorbate": "NO"}, {"_id": 0}))
    assert len({d["adsorbate_id"] for d in no}) == 3
    file_refs = [d["provenance"]["energy_reference"]["energies"] for d in no
                 if d["adsorbate_id"] != "NO"]
    assert all(set(e) == {d} for e, d in zip(file_refs, [x["adsorbate_id"] for x in no
                                                          if x["adsorbate_id"] != "NO"]))
    # the first screen again: nothing recomputed, its own table from the store
    rerun = runner.invoke(app, first, env=env)
    assert rerun.exit_code == 0, f"{rerun.output}\n{rerun.exception!r}"
    # the files campaign has the first screen's settings (other adsorbates): one id
    (mine,) = [d for d in h if d["settings_id"] == campaigns["files"].settings_id]
    assert f"{mine['adsorption_energy']:.3f}" in rerun.output
    assert f"settings {mine['settings_id']}" in rerun.output.replace("\n", " ")
    assert "Cu(111)" in rerun.output


def test_another_reference_relaxes_nothing_and_moves_e_ads_by_the_reference_difference(
    screens, monkeypatch
):
    """The files screen again under OC20's per-element scheme. Relaxations are keyed without
    the reference and the reference campaign relaxed H2, H2O, N2 and CO, so nothing relaxes.
    Reference: NO from a file is its own gas molecule under gas_molecules, 1/2 N2 + H2O - H2
    under oc20_elemental (the built-in NO's gas-molecule reference, from its stored gas
    energies); each placement's E_ads moves by exactly that difference, its energy not at all.
    """
    settings, _, _, campaigns, _ = screens

    def no_relax(*args, **kwargs):
        raise AssertionError("another reference relaxed again")

    monkeypatch.setattr("omni_flows.workflows.flows.surface_flow.relax", no_relax)
    monkeypatch.setattr("omni_flows.workflows.flows.relax_maker.relax", no_relax)
    gas_screen = campaigns["files"]
    db = connect_database(settings)
    relaxations = db["outputs"].count_documents({"name": {"$regex": "^placements "}})
    other = dataclasses.replace(gas_screen, reference=ReferenceScheme.OC20_ELEMENTAL)
    run_local(other.make(), settings=settings, store=job_store(settings))
    assert db["outputs"].count_documents({"name": {"$regex": "^placements "}}) == relaxations

    def placements(campaign) -> dict:
        docs = db["adsorption_placements"].find(
            {"settings_id": settings_id_of(campaign), "adsorbate": "NO"}, {"_id": 0})
        return {(d["adsorbate_id"], d["placement_index"]): d for d in docs}

    before, after = placements(gas_screen), placements(other)
    assert len(before) == 3 and after.keys() == before.keys()
    (builtin,) = [d for (ads, _), d in before.items() if ads == "NO"]
    gas = builtin["provenance"]["energy_reference"]["energies"]
    assert builtin["reference_energy"] == pytest.approx(
        0.5 * gas["N2"] + gas["H2O"] - gas["H2"], abs=1e-9)
    for key, old in before.items():
        new = after[key]
        assert new["energy"] == old["energy"] and new["slab_energy"] == old["slab_energy"]
        # the per-element reference of NO, whichever way the molecule was given
        assert new["reference_energy"] == pytest.approx(builtin["reference_energy"], abs=1e-9)
        assert new["adsorption_energy"] - old["adsorption_energy"] == pytest.approx(
            old["reference_energy"] - new["reference_energy"], abs=1e-9)
    # a file's own molecule is not the basis' combination: the schemes differ for it
    assert any(abs(before[k]["reference_energy"] - builtin["reference_energy"]) > 0.1
               for k in before if k[0] != "NO")


def settings_id_of(campaign) -> str:
    """The settings id of a screen's placement documents (its settings, no free energy)."""
    from omni_flows.db_schemas.identity import settings_id
    from omni_flows.workflows.flows.surface_flow import surface_settings

    return settings_id(surface_settings(campaign.mlip, campaign.slab_spec, campaign.placements,
                                        campaign.reference))
