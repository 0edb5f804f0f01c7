"""sigma on every surface-screen number (issue 27): each committee member's own E_ads, the
calibrated spread, the domain flag, in the documents, the table and the CSV.

The screen: Pt(111) and Au(111), 2x2x3, O and H, 2 placements each, through
`omni-flows screen surfaces` at COLUMNS=80, with a committee checkpoint built here:
omni-ads-0 with 4 members of gpaw_rpbe; member 1 differs from the task only by +0.3 eV
on every Pt atom, members 2-4 by a fixed-seed 5 % perturbation of their task weights;
scale 2.0; the task's training elements recorded as C, H, N, O, Pt (Au outside).

References: each member predicted on its own (``predict(task=member)``) at the stored
final geometries, clean slab and gas molecules, E_ads taken here by hand; numpy's std;
the arithmetic of a per-element shift (it cancels in member 1's own E_ads: the task's
E_ads, while its total energies move by 0.3 eV per Pt atom); the settings without
``uncertainty`` (the ids that results screened before it keep).
"""

import csv

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.db_schemas.identity import settings_id
from omni_flows.model import load_model, predict, save_checkpoint
from omni_flows.stores import connect_database
from omni_flows.workflows import MLIPSettings, PlacementSettings, SlabSpec
from omni_flows.workflows.flows.surface_flow import relaxation_settings
from omni_flows.workflows.structures.geometry import to_atoms
from conftest import cli_database
from pymatgen.core import Molecule, Structure

TASK = "gpaw_rpbe"
SCALE = 2.0
PT_SHIFT = 0.3  # eV per Pt atom, member 1
SCREEN = ["screen", "surfaces", "--bulk", "Pt", "Au", "--facets", "111", "--adsorbates", "O",
          "H", "--supercell", "2x2", "--layers", "3", "--fixed-layers", "1",
          "--max-placements", "2", "--n-random", "0", "--task", TASK, "--device", "cpu"]
runner = CliRunner()


def committee_checkpoint(path) -> str:
    """omni-ads-0 with a committee whose members differ (see the module docstring)."""
    m = load_model("omni-ads-0")
    members = m.add_committee(TASK, 4)
    generator = torch.Generator().manual_seed(27)
    with torch.no_grad():
        m.energy_shift[m.task_index(members[0]), m.config.species.index("Pt")] += PT_SHIFT
        for name in members[1:]:
            row = m.task_index(name)
            for parameter_name, parameter in m.named_parameters():
                if parameter_name.endswith("task_weight"):
                    parameter[row] *= 1 + 0.05 * torch.randn(parameter.shape[1:],
                                                              generator=generator)
    m.set_committee_scale(TASK, SCALE)
    m.record_task_elements(TASK, ["C", "H", "N", "O", "Pt"])
    save_checkpoint(m, path)
    return str(path)


@pytest.fixture(scope="module")
def uncertainty_screen(db_server, tmp_path_factory):
    """The screen with the default (committee: on), then the same with --no-uncertainty."""
    tmp = tmp_path_factory.mktemp("uncertainty")
    model = committee_checkpoint(tmp / "committee.safetensors")
    settings, env = cli_database(db_server, "t_sigma", COLUMNS="80")
    on = runner.invoke(app, [*SCREEN, "--model", model, "--out", str(tmp)], env=env)
    assert on.exit_code == 0, f"{on.output}\n{on.exception!r}"
    return settings, env, tmp, model, on.output


def documents(settings, collection: str, **criteria) -> list[dict]:
    return list(connect_database(settings)[collection].find(criteria, {"_id": 0}))


def test_members_are_each_members_own_adsorption_energy_and_sigma_their_scaled_std(
        uncertainty_screen):
    settings, _, _, model, _ = uncertainty_screen
    placements = documents(settings, "adsorption_placements")
    assert len(placements) == 8 and all(p["committee_scale"] == SCALE for p in placements)
    (slab_pt,) = documents(settings, "slabs", bulk_formula="Pt")
    (slab_au,) = documents(settings, "slabs", bulk_formula="Au")
    gas = {d["label"]: to_atoms(Molecule.from_dict(d["output"]["structure"]))
           for d in documents(settings, "calculations", label={"$in": ["H2(g)", "H2O(g)"]})}
    members = [f"{TASK}~{k}" for k in range(1, 5)]
    for slab in (slab_pt, slab_au):
        mine = [p for p in placements if p["slab_id"] == slab["slab_id"]]
        structures = [to_atoms(Structure.from_dict(p["final_structure"])) for p in mine]
        structures += [to_atoms(Structure.from_dict(slab["structure"])), gas["H2(g)"],
                       gas["H2O(g)"]]
        by_member = np.array([[r["energy"] for r in predict(structures, model, task=member)]
                              for member in members])  # (K, structures), one member at a time
        e_slab, e_h2, e_h2o = by_member[:, -3], by_member[:, -2], by_member[:, -1]
        reference = {"O": e_h2o - e_h2, "H": 0.5 * e_h2}
        for p, e in zip(mine, by_member.T):
            expected = e - e_slab - reference[p["adsorbate"]]
            np.testing.assert_allclose(p["adsorption_energy_members"], expected, atol=3e-4)
            assert p["adsorption_energy_std"] == pytest.approx(
                SCALE * np.std(p["adsorption_energy_members"], ddof=1), abs=1e-9)
            assert p["adsorption_energy_std"] > 1e-3  # the members differ
    for best in documents(settings, "adsorption_best"):
        (chosen,) = [p for p in placements if p["slab_id"] == best["slab_id"] and p[
            "adsorbate"] == best["adsorbate"] and p["placement_index"] == best[
            "best_placement_index"]]
        assert best["adsorption_energy_members"] == chosen["adsorption_energy_members"]
        assert best["adsorption_energy_std"] == chosen["adsorption_energy_std"]


def test_a_shift_of_a_slab_element_cancels_in_that_members_adsorption_energy(
        uncertainty_screen):
    """Member 1's E(Pt slab) lies 12 x 0.3 eV above the task's; its E_ads is the task's."""
    settings, _, _, model, _ = uncertainty_screen
    (slab,) = documents(settings, "slabs", bulk_formula="Pt")
    atoms = to_atoms(Structure.from_dict(slab["structure"]))
    shifted, task = (predict([atoms], model, task=t)[0]["energy"] for t in (f"{TASK}~1", TASK))
    assert shifted - task == pytest.approx(12 * PT_SHIFT, abs=2e-4)
    for p in documents(settings, "adsorption_placements", slab_id=slab["slab_id"]):
        assert p["adsorption_energy_members"][0] == pytest.approx(p["adsorption_energy"],
                                                                  abs=3e-4)


def test_out_of_domain_flags_the_au_slab_in_documents_table_and_csv(uncertainty_screen):
    settings, _, tmp, _, output = uncertainty_screen
    for collection in ("adsorption_placements", "adsorption_best"):
        for d in documents(settings, collection):
            assert d["out_of_domain"] == (["Au"] if d["bulk_formula"] == "Au" else []), d
    assert "warning: outside the training data" in output
    (path,) = tmp.glob("surfaces-*.csv")
    rows = list(csv.DictReader(path.open()))
    assert {r["surface"]: r["out_of_domain"] for r in rows} == {"Au(111)": "Au",
                                                                "Pt(111)": ""}
    assert all(float(r["adsorption_energy_std"]) > 0 for r in rows)
    assert "outside the task's training data (Au)" in " ".join(output.split())


def test_the_table_shows_e_ads_plus_minus_sigma_within_80_columns(uncertainty_screen):
    settings, _, _, _, output = uncertainty_screen
    table = output[output.index("best valid placements"):]
    assert max(len(line) for line in table.splitlines()) <= 80
    for d in documents(settings, "adsorption_best"):
        cell = f"{d['adsorption_energy']:.3f}±{d['adsorption_energy_std']:.3f}"
        assert cell + ("!" if d["out_of_domain"] else " ") in table


def test_the_heatmap_cells_show_e_ads_and_sigma(uncertainty_screen):
    from omni_flows.report import heatmap_figure, ranked_rows

    settings = uncertainty_screen[0]
    docs = documents(settings, "adsorption_best")
    texts = {t.get_text() for t in heatmap_figure(ranked_rows(docs)).axes[0].texts}
    assert texts == {f"{d['adsorption_energy']:.2f}\n±{d['adsorption_energy_std']:.2f}"
                     for d in docs}


def test_uncertainty_off_is_the_old_settings_id_and_relaxes_nothing(uncertainty_screen,
                                                                    monkeypatch):
    """The settings id without uncertainty is that of the settings as they were before it
    existed (relaxation settings and reference); the relaxations are reused."""
    settings, env, tmp, model, _ = uncertainty_screen

    def no_relax(*args, **kwargs):
        raise AssertionError("turning uncertainty off relaxed again")

    monkeypatch.setattr("omni_flows.workflows.flows.surface_flow.relax", no_relax)
    monkeypatch.setattr("omni_flows.workflows.flows.relax_maker.relax", no_relax)
    off = runner.invoke(app, [*SCREEN, "--model", model, "--no-uncertainty", "--out",
                              str(tmp / "off")], env=env)
    assert off.exit_code == 0, f"{off.output}\n{off.exception!r}"
    mlip = MLIPSettings(model=model, task=TASK, device="cpu")
    before = {**relaxation_settings(mlip, SlabSpec(n_layers=3, n_fixed_layers=1,
                                                   supercell=(2, 2)),
                                    PlacementSettings(n_random=0, max_placements=2)),
              "reference": "gas_molecules"}
    ids = {d["settings_id"] for d in documents(settings, "adsorption_best")}
    assert ids == {settings_id(before), settings_id({**before, "uncertainty": True})}
    plain = documents(settings, "adsorption_placements", settings_id=settings_id(before))
    with_sigma = {(p["slab_id"], p["adsorbate"], p["placement_index"]): p for p in documents(
        settings, "adsorption_placements", settings_id=settings_id({**before,
                                                                    "uncertainty": True}))}
    assert len(plain) == 8
    for p in plain:
        assert p["adsorption_energy_std"] is None and p["adsorption_energy_members"] is None
        twin = with_sigma[(p["slab_id"], p["adsorbate"], p["placement_index"])]
        assert p["adsorption_energy"] == twin["adsorption_energy"]  # the same relaxations
    assert "±" not in off.output
