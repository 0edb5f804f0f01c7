"""MOF adsorption flow (ODAC-style) and ``omni-flows screen mofs``.

References: ODAC23 "promising" MOF CIFs shipped by fairchem-data-odac; tad-dftd3
(an independent D3 implementation) for the molecular D3(BJ) energy; the
extensivity of a periodic D3 energy (a 2x1x1 supercell has twice the energy);
single points of the model at the stored geometries; the job outputs of a first
screen (a re-run must not add or replace any); the database before a bad input.
"""

import importlib.util
import sys
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from omni_flows.db_schemas import MOFAdsorptionDoc
from omni_flows.db_schemas.legacy import identity_of
from omni_flows.model.errors import OmniFlowsError
from omni_flows.workflows import WorkflowInputError
from omni_flows.workflows.structures.adsorbates import get_adsorbate
from omni_flows.workflows.structures.geometry import to_atoms
from omni_flows.workflows.structures.frameworks import (
    GUEST_CLEARANCE,
    WALL_CONTACT,
    insert_guest,
    load_framework,
)
from omni_flows.workflows.flows.mof_flow import (
    MOFAdsorptionMaker,
    d3_energy,
    d3_parameters,
    framework_anomalies,
)
from omni_flows.workflows.relax import get_calculator
from omni_flows.workflows.settings import MLIPSettings
from omni_flows.model.errors import OmniFlowsError
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.stores import connect_database
from conftest import cli_database

runner = CliRunner()


def _odac_cif(name: str, folder: Path) -> Path:
    spec = importlib.util.find_spec("fairchem.data.odac")
    if spec is None:
        pytest.skip("fairchem-data-odac is not installed")
    archive = (Path(spec.submodule_search_locations[0]) / "promising_mof"
               / "promising_mof_structures" / "pristine.zip")
    with zipfile.ZipFile(archive) as zf:
        path = folder / f"{name}.cif"
        path.write_bytes(zf.read(f"{name}.cif"))
    return path


def test_d3_of_a_molecule_matches_tad_dftd3():
    tad_dftd3 = pytest.importorskip("tad_dftd3")
    import tad_mctc
    import torch
    from ase.build import molecule

    atoms = molecule("CH3CH2OH")
    # Grimme's PBE-D3(BJ) two-body parameters (no ATM term, as VASP's IVDW=12)
    param = {k: torch.tensor(v, dtype=torch.float64)
             for k, v in {"s6": 1.0, "s8": 0.7875, "a1": 0.4289, "a2": 4.4407}.items()}
    positions = torch.tensor(atoms.positions, dtype=torch.float64) * tad_mctc.units.AA2AU
    expected = float(tad_dftd3.dftd3(torch.tensor(atoms.numbers), positions, param).sum()
                     ) * tad_mctc.units.AU2EV
    assert d3_energy(atoms, "PBE") == pytest.approx(expected, abs=1e-6)
    assert d3_energy(atoms, None) == d3_energy(atoms, "PBE")  # a single-task model is PBE


def test_d3_of_a_periodic_framework_is_extensive(tmp_path):
    atoms = to_atoms(load_framework(_odac_cif("ESUSOC01", tmp_path)))
    one = d3_energy(atoms)
    assert one < 0
    assert d3_energy(atoms.repeat((2, 1, 1))) == pytest.approx(2 * one, rel=1e-8)


def test_d3_for_a_task_without_parameters_fails_before_anything_runs(tmp_path):
    with pytest.raises(WorkflowInputError, match="no D3\\(BJ\\) parameters for the task 'XC99'"):
        d3_parameters("XC99")
    # a task the model lacks never gets that far: the settings refuse it when made
    with pytest.raises(OmniFlowsError, match="unknown task 'XC99'"):
        MOFAdsorptionMaker(dispersion=True, mlip=MLIPSettings(task="XC99"))


def test_a_new_guest_metal_bond_is_reported_not_rejected(tmp_path):
    framework = load_framework(_odac_cif("ESUSOC01", tmp_path))
    water = np.asarray(get_adsorbate("H2O").positions)
    water -= water[0]  # O first, at the origin
    co = next(i for i, s in enumerate(framework) if s.specie.symbol == "Co")
    others = [i for i in range(len(framework)) if i != co]

    def clearance(coords):
        frac = framework.lattice.get_fractional_coords(coords)
        return framework.lattice.get_all_distances(frac, framework.frac_coords[others]).min()

    # O 2.0 A from the Co, on its freest side (Co-O bond: covalent radii 1.26 + 0.66 A, ASE)
    directions = np.random.default_rng(0).normal(size=(500, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    bound = max((framework[co].coords + 2.0 * d + water for d in directions), key=clearance)
    assert clearance(bound) > 1.4  # no guest atom on top of a framework atom
    free = framework.lattice.get_cartesian_coords([0.5, 0.5, 0.5]) + water
    initial, final = framework.copy(), framework.copy()
    for symbol, a, b in zip(get_adsorbate("H2O").symbols, free, bound):
        initial.append(symbol, a, coords_are_cartesian=True)
        final.append(symbol, b, coords_are_cartesian=True)
    guest = list(range(len(framework), len(final)))
    anomalies, bonds = framework_anomalies(initial, final, guest)
    assert anomalies == []
    assert f"O{guest[0]}-Co{co}" in bonds


def test_guests_are_inserted_against_the_pore_wall(tmp_path):
    framework = load_framework(_odac_cif("ESUSOC01", tmp_path))
    rng = np.random.default_rng(0)
    for _ in range(5):
        cplx = insert_guest(framework, get_adsorbate("CO2"), rng)
        n = len(framework)
        d = cplx.lattice.get_all_distances(cplx.frac_coords[n:], cplx.frac_coords[:n]).min()
        assert GUEST_CLEARANCE <= d <= WALL_CONTACT  # no overlap, yet in contact


@pytest.fixture(scope="module")
def mof_env(db_server, tmp_path_factory):
    """Environment of the CLI: the session server, a database of this module's own."""
    settings, env = cli_database(db_server, "t_mofs")
    folder = tmp_path_factory.mktemp("mofs")
    cif = _odac_cif("ESUSOC01", folder)
    # a loose force criterion: the relaxations stop after a few steps, so the test stays fast
    args = ["screen", "mofs", "--cif", str(cif), "--guests", "CO2", "--placements", "1",
            "--fmax", "2.0", "--steps", "3", "--device", "cpu", "--optimizer", "FIRE",
            "--out", str(folder)]
    return settings, env, folder, args


@pytest.fixture(scope="module")
def tiny_mof_screen(mof_env):
    settings, env, folder, args = mof_env
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return settings, env, folder, args, result.output


def test_screen_mofs_stores_both_energies_and_writes_table_and_heatmap(tiny_mof_screen):
    tad_dftd3 = pytest.importorskip("tad_dftd3")
    import tad_mctc
    import torch

    settings, _, folder, _, output = tiny_mof_screen
    db = connect_database(settings)
    (raw,) = list(db["mof_adsorption"].find({"framework_id": "ESUSOC01"}, {"_id": 0}))
    doc = MOFAdsorptionDoc.model_validate(raw)
    assert doc.guest == "CO2" and doc.dispersion and doc.provenance.task == "PBE"
    # the complex energy is the model's at the stored geometry plus its periodic D3
    atoms = to_atoms(doc.final_structure)
    atoms.calc = get_calculator("7net-mf-0", "PBE", "cpu")  # the cached calculator
    assert doc.complex_energy == pytest.approx(atoms.get_potential_energy() + d3_energy(atoms),
                                               abs=1e-4)
    # the guest term: the stored gas relaxation plus D3 of the molecule by tad-dftd3
    gas = db["calculations"].find_one({"label": "CO2(g)"})
    mol = gas["output"]["structure"]
    numbers = torch.tensor([{"C": 6, "O": 8}[s["species"][0]["element"]] for s in mol["sites"]])
    xyz = torch.tensor([s["xyz"] for s in mol["sites"]], dtype=torch.float64)
    param = {k: torch.tensor(v, dtype=torch.float64)
             for k, v in {"s6": 1.0, "s8": 0.7875, "a1": 0.4289, "a2": 4.4407}.items()}
    d3_gas = float(tad_dftd3.dftd3(numbers, xyz * tad_mctc.units.AA2AU, param).sum()
                   ) * tad_mctc.units.AU2EV
    assert doc.guest_energy == pytest.approx(gas["output"]["energy"] + d3_gas, abs=1e-5)
    assert doc.adsorption_energy == pytest.approx(
        doc.complex_energy - doc.framework_energy - doc.guest_energy, abs=1e-9)
    assert doc.dispersion_correction < 0  # D3 binds a guest in a pore
    assert doc.adsorption_energy_without_dispersion == pytest.approx(
        doc.adsorption_energy - doc.dispersion_correction)
    (png,) = folder.glob(f"mofs-{doc.settings_id}-*.png")
    (csv,) = folder.glob(f"mofs-{doc.settings_id}-*.csv")
    assert png.stat().st_size > 1000 and "ESUSOC01" in csv.read_text()
    assert "best valid placements" in output


def test_mof_flow_records_the_backend_and_optimizer_it_ran_with(tiny_mof_screen):
    """The CLI's --optimizer FIRE reaches every relaxation of the MOF flow (issue 14, item 3)."""
    settings, *_ = tiny_mof_screen
    db = connect_database(settings)
    for collection, query in (("mof_adsorption", {}), ("calculations", {"label": "CO2(g)"}),
                              ("calculations", {"label": "ESUSOC01"})):
        doc = db[collection].find_one(query)
        p = doc["provenance"]
        ran = (p["backend"], identity_of(p)["optimizer"], p["device"])  # optimizer: in settings
        assert ran == ("e3nn", "FIRE", "cpu"), query
        assert p["settings"]["mlip"]["optimizer"] == "FIRE"
        assert p["settings"]["mlip"]["fmax"] == 2.0 and p["settings"]["mlip"]["steps"] == 3
    calc = db["calculations"].find_one({"label": "ESUSOC01"})
    assert calc["input"]["optimizer"] == "FIRE" and calc["input"]["relax_cell"]


def test_rerun_of_a_finished_mof_screen_recomputes_nothing(tiny_mof_screen, monkeypatch):
    settings, env, _, args, _ = tiny_mof_screen
    db = connect_database(settings)
    before = {d["uuid"]: d["completed_at"] for d in db["outputs"].find({}, {"uuid": 1,
                                                                         "completed_at": 1})}

    def no_relax(*a, **k):
        raise AssertionError("a finished screen relaxed again")

    monkeypatch.setattr("omni_flows.workflows.flows.mof_flow.relax", no_relax)
    monkeypatch.setattr("omni_flows.workflows.flows.relax_maker.relax", no_relax)
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    after = {d["uuid"]: d["completed_at"] for d in db["outputs"].find({}, {"uuid": 1,
                                                                        "completed_at": 1})}
    assert after == before and len(before) == 3  # gas, framework, one placement


@pytest.mark.parametrize(
    "change, message",
    [
        (("--guests", "CO2", "XYZ"), "unknown adsorbate 'XYZ'"),
        (("--cif", "BROKEN_CIF"), "broken.cif: not a readable CIF"),
        (("--cif", "NO_H_CIF"), "no_h.cif: an organic framework without hydrogen"),
        (("--cif", "MISSING_D3"), "D3 needs simple-dftd3"),
    ],
)
def test_bad_mof_input_fails_before_relaxing_and_loses_nothing(
    tiny_mof_screen, monkeypatch, tmp_path, change, message
):
    settings, env, folder, args, _ = tiny_mof_screen
    broken = tmp_path / "broken.cif"
    broken.write_text("data_broken\n_cell_length_a 3.6\nloop_\n_atom_site_label\nCo1 0 0\n")
    no_h = tmp_path / "no_h.cif"
    framework = load_framework(folder / "ESUSOC01.cif")
    framework.remove_species(["H"])
    framework.to(filename=str(no_h))
    if change[1] == "MISSING_D3":
        monkeypatch.setitem(sys.modules, "dftd3.interface", None)  # import fails
        change = ("--cif", str(folder / "ESUSOC01.cif"))
    files = {"BROKEN_CIF": str(broken), "NO_H_CIF": str(no_h)}
    change = tuple(files.get(c, c) for c in change)
    args = list(args)
    i = args.index(change[0])
    args[i:i + 2] = change

    def no_relax(*a, **k):
        raise AssertionError("relaxation started on bad input")

    monkeypatch.setattr("omni_flows.workflows.flows.mof_flow.relax", no_relax)
    monkeypatch.setattr("omni_flows.workflows.flows.relax_maker.relax", no_relax)
    db = connect_database(settings)
    counts = {c: db[c].count_documents({}) for c in db.list_collection_names()}
    result = runner.invoke(app, args, env=env)
    assert isinstance(result.exception, OmniFlowsError), result.output
    assert message in str(result.exception)
    assert {c: db[c].count_documents({}) for c in db.list_collection_names()} == counts


@pytest.mark.slow
def test_co2_in_esusoc01_end_to_end(tmp_path):
    cif = _odac_cif("ESUSOC01", tmp_path)
    flow = MOFAdsorptionMaker(guests=["CO2"], n_placements=1, dispersion=True).make(cif)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(flow, store=store, log=False, raise_immediately=True)
    (out,) = [d["output"] for d in store.query({"output.@class": "MOFAdsorptionDoc"})]
    doc = MOFAdsorptionDoc.model_validate(out)
    assert doc.framework_id == "ESUSOC01" and doc.guest == "CO2" and doc.dispersion
    assert doc.adsorption_energy == pytest.approx(
        doc.complex_energy - doc.framework_energy - doc.guest_energy)
    # physisorbed; ODAC PBE-D3: -0.51 eV
    assert -1.5 < doc.adsorption_energy < doc.adsorption_energy_without_dispersion < 0.0
