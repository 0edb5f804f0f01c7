"""`omni-flows screen surfaces` end to end on the real database server.

A tiny screen (Cu(111) 2x2, 3 layers, O and H, 2 placements each) runs once;
the tests read what it stored. References: E_ads recomputed by hand from the
stored slab and gas-molecule energies; the job outputs of the first run (a
re-run must not add or replace any); the database contents before a bad input.
"""

import uuid

import pytest
from omni_flows.model.errors import OmniFlowsError
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.stores import connect_database
from conftest import cli_database

TINY = ["surfaces", "--bulk", "Cu", "--facets", "111", "--adsorbates", "O", "H",
        "--supercell", "2x2", "--layers", "3", "--fixed-layers", "1",
        "--max-placements", "2", "--n-random", "0", "--device", "cpu"]

runner = CliRunner()


@pytest.fixture(scope="module")
def screen_env(db_server, tmp_path_factory):
    """Environment of the CLI: the session server, a database of this module's own."""
    settings, env = cli_database(db_server, "t_screen")
    out = tmp_path_factory.mktemp("screen")
    return settings, env, out


@pytest.fixture(scope="module")
def tiny_screen(screen_env):
    settings, env, out = screen_env
    result = runner.invoke(app, ["screen", *TINY, "--out", str(out)], env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return settings, env, out, result.output


def test_tiny_screen_stores_queryable_best_placements_and_writes_table_and_heatmap(tiny_screen):
    settings, _, out, output = tiny_screen
    db = connect_database(settings)
    best = list(db["adsorption_best"].find({"valid": True, "bulk_formula": "Cu"}))
    assert sorted(d["adsorbate"] for d in best) == ["H", "O"]
    for d in best:
        assert d["miller_index"] == [1, 1, 1] and d["n_placements"] == 2
        # what made it is stored once, in the settings that its settings id hashes
        mlip = d["provenance"]["settings"]["mlip"]
        assert mlip["model"] == "7net-mf-0" and mlip["task"] == "PBE"
        assert not {"model_name", "task", "checkpoint_hash", "optimizer"} & set(d["provenance"])
        assert d["provenance"]["energy_reference"]["scheme"] == "gas_molecules"
    assert db["adsorption_placements"].count_documents({}) == 4
    assert db["slabs"].count_documents({"bulk_formula": "Cu"}) == 1
    (png,) = out.glob("surfaces-*.png")
    (csv,) = out.glob("surfaces-*.csv")
    assert png.stat().st_size > 1000 and "Cu(111)" in csv.read_text()
    sid = best[0]["settings_id"]
    assert csv.name.startswith(f"surfaces-{sid}-") and "best valid placements" in output
    assert "Some jobs are not connected" not in output and "Warning" not in output


def test_adsorption_energy_equals_its_terms(tiny_screen):
    settings, *_ = tiny_screen
    db = connect_database(settings)
    gas_docs = db["calculations"].find({"label": {"$regex": r"\(g\)$"}})
    gas = {d["label"]: d["output"]["energy"] for d in gas_docs}
    slab = db["slabs"].find_one({"bulk_formula": "Cu"})
    expected_ref = {"H": 0.5 * gas["H2(g)"], "O": gas["H2O(g)"] - gas["H2(g)"]}
    for p in db["adsorption_placements"].find():
        assert p["slab_energy"] == pytest.approx(slab["energy"], abs=1e-9)
        assert p["reference_energy"] == pytest.approx(expected_ref[p["adsorbate"]], abs=1e-9)
        assert p["adsorption_energy"] == pytest.approx(
            p["energy"] - slab["energy"] - expected_ref[p["adsorbate"]], abs=1e-9)
    best_h = db["adsorption_best"].find_one({"adsorbate": "H"})
    valid = [p["adsorption_energy"] for p in db["adsorption_placements"].find(
        {"adsorbate": "H", "valid": True})]
    assert best_h["adsorption_energy"] == pytest.approx(min(valid))


def test_rerun_reuses_stored_results(tiny_screen, monkeypatch):
    settings, env, out, _ = tiny_screen
    db = connect_database(settings)
    before = {d["uuid"]: d["completed_at"] for d in db["outputs"].find({}, {"uuid": 1,
                                                                         "completed_at": 1})}

    def no_relax(*args, **kwargs):
        raise AssertionError("a finished screen relaxed again")

    monkeypatch.setattr("omni_flows.workflows.flows.surface_flow.relax", no_relax)
    monkeypatch.setattr("omni_flows.workflows.flows.relax_maker.relax", no_relax)
    result = runner.invoke(app, ["screen", *TINY, "--out", str(out)], env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    after = {d["uuid"]: d["completed_at"] for d in db["outputs"].find({}, {"uuid": 1,
                                                                        "completed_at": 1})}
    assert after == before
    # the table is read back from the store: both adsorbates, their stored energies
    best = {d["adsorbate"]: d["adsorption_energy"] for d in db["adsorption_best"].find()}
    for ads, energy in best.items():
        assert f"{energy:.3f}" in result.output, ads


@pytest.mark.parametrize(
    "change, message",
    [
        (("--adsorbates", "O", "XYZ"), "unknown adsorbate 'XYZ'"),
        (("--facets", "000"), "not a plane"),
        (("--facets", "11"), "not a Miller index"),
        (("--bulk", "BROKEN_CIF"), "cannot read bulk structure"),
    ],
)
def test_bad_input_fails_before_relaxing_and_loses_nothing(
    tiny_screen, monkeypatch, tmp_path, change, message
):
    settings, env, out, _ = tiny_screen
    broken = tmp_path / "broken.cif"
    broken.write_text("data_broken\n_cell_length_a 3.6\nloop_\n_atom_site_label\nCu1 0 0\n")
    change = tuple(str(broken) if c == "BROKEN_CIF" else c for c in change)
    args = list(TINY)
    i = args.index(change[0])
    j = next((k for k in range(i + 1, len(args)) if args[k].startswith("--")), len(args))
    args[i:j] = change

    def no_relax(*a, **k):
        raise AssertionError("relaxation started on bad input")

    monkeypatch.setattr("omni_flows.workflows.flows.surface_flow.relax", no_relax)
    monkeypatch.setattr("omni_flows.workflows.flows.relax_maker.relax", no_relax)
    db = connect_database(settings)
    counts = {c: db[c].count_documents({}) for c in db.list_collection_names()}
    result = runner.invoke(app, ["screen", *args, "--out", str(out)], env=env)
    assert isinstance(result.exception, OmniFlowsError), result.output
    assert message in str(result.exception)
    assert {c: db[c].count_documents({}) for c in db.list_collection_names()} == counts
