"""`omni-flows benchmark`: metrics, runners and CLI against independent references.

References: hand-computed metrics of a small hand-made table; the DFT site labels of
the Xu & Kitchin structures; a plain ASE calculator loop (one OmniCalculator call per
structure, not the batched `predict` of the runners) with the metrics written out by
hand for Pt and Cu with O; plain numpy over one OC20 trajectory. The data tests skip
when ../shared/data is absent.
"""

import json
import uuid

import numpy as np
import pytest
from omni_flows.db_schemas import BenchmarkRunDoc
from omni_flows.db_schemas.identity import settings_id
from omni_flows.model import OmniCalculator
from typer.testing import CliRunner

from omni_flows.accuracy import oc20, xu_kitchin
from omni_flows.accuracy.oc20 import frame_indices, run_oc20
from omni_flows.accuracy.results import (
    DEFAULT_DATA_ROOT,
    BenchmarkDataError,
    ModelChoice,
    benchmark_doc,
    store_runs,
)
from omni_flows.accuracy.xu_kitchin import (
    fit_references,
    metal_trend_mae,
    run_xu_kitchin,
    site_difference_mae,
    site_preference,
)
from omni_flows.cli import app
from omni_flows.stores import connect_database

XK = DEFAULT_DATA_ROOT / xu_kitchin.DATASET
OC20 = DEFAULT_DATA_ROOT / oc20.DATASET
needs_xk = pytest.mark.skipif(not (XK / "energies.json").is_file(),
                              reason=f"Xu & Kitchin data not found at {XK}")
needs_oc20 = pytest.mark.skipif(not OC20.is_dir(), reason=f"OC20 trajectories not found at {OC20}")
runner = CliRunner()

# a hand-made table: model picks hcp on Pt (DFT: fcc, 0.2 eV higher), fcc on Cu (right)
DFT = {("Pt", "O", "fcc"): -4.0, ("Pt", "O", "hcp"): -3.8, ("Pt", "O", "ontop"): -3.0,
       ("Cu", "O", "fcc"): -4.5, ("Cu", "O", "hcp"): -4.45, ("Cu", "O", "ontop"): -3.2}
PRED = {("Pt", "O", "fcc"): -3.9, ("Pt", "O", "hcp"): -3.95, ("Pt", "O", "ontop"): -3.1,
        ("Cu", "O", "fcc"): -4.4, ("Cu", "O", "hcp"): -4.3, ("Cu", "O", "ontop"): -3.0}


def test_site_metrics_match_hand_computed_values():
    assert site_preference(DFT, PRED) == (0.5, 0.5)
    # Pt: |-0.05 - 0.2|, |0.8 - 1.0|; Cu: |0.1 - 0.05|, |1.4 - 1.3|
    assert site_difference_mae(DFT, PRED) == pytest.approx((0.25 + 0.2 + 0.05 + 0.1) / 4)
    # Pt - Cu per site: fcc |0.5 - 0.5|, hcp |0.35 - 0.65|, ontop |-0.1 - 0.2|
    assert metal_trend_mae(DFT, PRED) == pytest.approx((0.0 + 0.3 + 0.3) / 3)
    # a 0.25-eV tolerance forgives the Pt pick (0.2 eV above the DFT minimum)
    assert site_preference(DFT, PRED, tolerance=0.25) == (0.5, 1.0)


def test_reference_fit_is_once_per_cell_least_squares():
    dft = {("Pt", "O", "fcc"): -4.0, ("Pt", "O", "hcp"): -3.0, ("Cu", "O", "fcc"): -9.0}
    cell = {("Pt", "O", "fcc"): -7.0, ("Pt", "O", "hcp"): -6.0, ("Cu", "O", "fcc"): 0.0}
    # n = 2: (dE - mu)/n = E  ->  mu = mean(dE - 2E) over Pt = mean(1.0, 0.0); Cu not used
    assert fit_references(dft, cell, 2, ["Pt"]) == {"O": pytest.approx(0.5)}


def test_frame_selection_keeps_first_and_last():
    assert frame_indices(10, stride=4) == [0, 4, 8, 9]
    assert frame_indices(10, limit_frames=3) == [0, 4, 9]
    assert frame_indices(5) == [0, 1, 2, 3, 4]


def test_missing_data_folder_names_it_and_the_option(tmp_path):
    with pytest.raises(BenchmarkDataError, match=r"nowhere.*--data"):
        run_xu_kitchin("7net-0", None, tmp_path / "nowhere")
    result = runner.invoke(app, ["benchmark", "oc20", "--data", str(tmp_path / "nowhere"),
                                 "--no-store"])
    assert result.exit_code != 0 and isinstance(result.exception, BenchmarkDataError)


@needs_xk
def test_site_classifier_recovers_the_dft_site_labels():
    structures = json.loads((XK / "structures.json").read_text())
    for metal in xu_kitchin.METALS:
        for ads in xu_kitchin.ADSORBATES:
            for site in xu_kitchin.SITES:
                for coverage in ("0.25", "1.0"):
                    entry = structures[metal][ads][site].get(coverage)
                    if isinstance(entry, dict):
                        atoms = xu_kitchin.to_atoms(entry, metal)
                        assert set(xu_kitchin.sites_of(atoms, metal)) == {site}, (metal, ads, site)


@pytest.fixture(scope="module")
def pt_cu_oxygen():
    """7net-mf-0/PBE on O at Pt and Cu (0.25 ML): the runner, and a plain ASE loop."""
    metrics, entries = run_xu_kitchin("7net-mf-0", "PBE", XK, adsorbates=["O"],
                                      metals=["Pt", "Cu"], device="cpu")
    structures = json.loads((XK / "structures.json").read_text())
    energies = json.loads((XK / "energies.json").read_text())
    calc = OmniCalculator("7net-mf-0", task="PBE", device="cpu")
    delta, dft = {}, {}
    for metal in ("Pt", "Cu"):
        clean = xu_kitchin.to_atoms(structures[metal]["O"]["fcc"]["0.0"], metal)
        clean.calc = calc
        e_clean = clean.get_potential_energy()
        for site in xu_kitchin.SITES:
            atoms = xu_kitchin.to_atoms(structures[metal]["O"][site]["0.25"], metal)
            atoms.calc = calc
            delta[metal, site] = atoms.get_potential_energy() - e_clean
            dft[metal, site] = energies[metal]["O"][site]["0.25"]
    return metrics, entries, delta, dft


@needs_xk
def test_xu_kitchin_single_point_matches_a_plain_ase_loop(pt_cu_oxygen):
    metrics, entries, delta, dft = pt_cu_oxygen
    sites = xu_kitchin.SITES
    strict = within = 0
    site_errors = []
    for metal in ("Pt", "Cu"):
        best = min(sites, key=lambda s: dft[metal, s])
        picked = min(sites, key=lambda s: delta[metal, s])
        strict += picked == best
        within += dft[metal, picked] - dft[metal, best] <= 0.1
        site_errors += [abs(delta[metal, s] - delta[metal, best] - dft[metal, s] + dft[metal, best])
                        for s in sites if s != best]
    trend = np.mean([abs(delta["Pt", s] - delta["Cu", s] - dft["Pt", s] + dft["Cu", s])
                     for s in sites])
    mu = np.mean([delta["Pt", s] - dft["Pt", s] for s in sites])  # fitted on Pt (train)
    absolute = np.mean([abs(delta["Cu", s] - mu - dft["Cu", s]) for s in sites])  # Cu (test)

    assert metrics["site_preference_accuracy"] == strict / 2
    assert metrics["site_preference_accuracy_within_0.1eV"] == within / 2
    assert metrics["site_difference_mae"] == pytest.approx(np.mean(site_errors), abs=2e-4)
    assert metrics["metal_trend_mae"] == pytest.approx(trend, abs=2e-4)
    assert metrics["reference_energies"]["O"] == pytest.approx(mu, abs=2e-4)
    assert metrics["absolute_mae"] == pytest.approx(absolute, abs=2e-4)
    assert metrics["absolute_mae_split"] == "mu_X fitted on Pt, MAE on Cu"
    by_id = {e.system_id: e for e in entries}
    assert by_id["Cu/O/fcc/0.25"].reference == dft["Cu", "fcc"]
    assert by_id["Cu/O/fcc/0.25"].predicted == pytest.approx(delta["Cu", "fcc"] - mu, abs=2e-4)


@needs_oc20
def test_oc20_metrics_on_one_trajectory_match_plain_numpy():
    from ase.io import read

    name = "random1000100"
    metrics, entries = run_oc20("7net-mf-0", "PBE", OC20, stride=25, trajectories=[name],
                                device="cpu")
    frames = read(OC20 / f"{name}.traj", ":")
    picked = sorted(set(range(0, len(frames), 25)) | {len(frames) - 1})
    calc = OmniCalculator("7net-mf-0", task="PBE", device="cpu")
    e_dft, e_model, force_err, zero = [], [], [], []
    for i in picked:
        atoms = frames[i]
        free = np.ones(len(atoms), bool)
        free[atoms.constraints[0].get_indices()] = False
        f_dft = atoms.get_forces()[free]
        e_dft.append(atoms.get_potential_energy())
        model = atoms.copy()
        model.calc = calc
        e_model.append(model.get_potential_energy())
        force_err.append(np.abs(model.get_forces()[free] - f_dft).ravel())
        zero.append(np.abs(f_dft).ravel())
    rel_dft = np.array(e_dft) - e_dft[0]
    rel_model = np.array(e_model) - e_model[0]

    assert metrics["n_frames"] == len(picked) and len(entries) == len(picked) - 1
    assert metrics["force_mae"] == pytest.approx(np.concatenate(force_err).mean(), abs=1e-4)
    assert metrics["force_mae_zero_force_baseline"] == pytest.approx(
        np.concatenate(zero).mean(), rel=1e-9)
    assert metrics["relative_energy_mae"] == pytest.approx(
        np.abs(rel_model[1:] - rel_dft[1:]).mean(), abs=2e-4)
    assert metrics["relaxation_energy_mae"] == pytest.approx(
        abs(rel_model[-1] - rel_dft[-1]), abs=2e-4)
    assert entries[-1].system_id == f"{name}/{len(frames) - 1}"


@needs_xk
def test_cli_json_prints_one_object_and_the_run_is_stored(pt_cu_oxygen, db_server, tmp_path):
    database = f"t_bench_{uuid.uuid4().hex[:6]}"
    env = {"OMNI_FLOWS_HOME": str(db_server.home), "OMNI_FLOWS_DB_PORT": str(db_server.db_port),
           "OMNI_FLOWS_DATABASE": database, "OMNI_FLOWS_MONGODB_URI": None,
           "OMNI_FLOWS_CONFIG": None}
    args = ["benchmark", "xu-kitchin", "--data", str(XK), "--adsorbates", "O",
            "--metals", "Pt,Cu", "--model", "7net-mf-0:PBE", "--device", "cpu", "--json",
            "--out", str(tmp_path)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    metrics = json.loads(result.stdout)  # nothing else on stdout
    expected = pt_cu_oxygen[0]
    assert list(metrics) == ["7net-mf-0/PBE"]
    assert metrics["7net-mf-0/PBE"]["site_difference_mae"] == pytest.approx(
        expected["site_difference_mae"], abs=1e-6)
    (plot,) = tmp_path.glob("xu_kitchin_parity-*.png")  # named by the run: never overwritten
    assert plot.stat().st_size > 0

    db = connect_database(db_server.model_copy(update={"database": database}))
    (stored,) = db[BenchmarkRunDoc.collection].find({}, {"_id": 0})
    assert stored["dataset"] == "xu_kitchin_2014"
    assert stored["provenance"]["settings"]["model"] == "7net-mf-0"  # stored once, there
    assert stored["provenance"]["settings"]["task"] == "PBE" and stored["n"] == 8
    assert stored["metrics"]["site_difference_mae"] == pytest.approx(
        expected["site_difference_mae"], abs=1e-6)
    # a re-run replaces its document instead of adding a copy
    assert runner.invoke(app, args, env=env).exit_code == 0
    assert db[BenchmarkRunDoc.collection].count_documents({}) == 1


def test_stored_run_round_trips(settings):
    from omni_flows.db_schemas import BenchmarkEntry

    entries = [BenchmarkEntry(system_id="a", reference=-1.0, predicted=-0.8),
               BenchmarkEntry(system_id="b", reference=0.5, predicted=0.4)]
    doc = benchmark_doc(ModelChoice("7net-0", None), "toy", "e", entries,
                        {"site_difference_mae": 0.15}, {"mode": "single-point"}, device="cpu")
    assert doc.mae == pytest.approx(0.15) and doc.provenance.task == "default"
    # keyed by what made it (model, task, checkpoint, parameters), not an invented legacy id
    assert doc.provenance.settings["parameters"] == {"mode": "single-point"}
    assert doc.settings_id == settings_id(doc.provenance.settings)
    store_runs([doc], settings)
    stored = connect_database(settings)[BenchmarkRunDoc.collection].find_one({}, {"_id": 0})
    back = BenchmarkRunDoc.model_validate(stored)
    assert back.metrics == {"site_difference_mae": 0.15}
    assert back.parameters == {"mode": "single-point"}
    assert [e.system_id for e in back.entries] == ["a", "b"]
    assert back.provenance.checkpoint_hash == doc.provenance.checkpoint_hash
