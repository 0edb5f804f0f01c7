"""r2SCAN validation: the model's r2SCAN task, PySCF cluster DFT, VASP inputs, `omni-flows
validate`, and the queries that choose what is validated (omni_flows.results).

References: the experimental dissociation energy of CO (De = 11.23 eV: D0 11.09 eV
plus the zero-point energy of 2170 cm-1, Huber & Herzberg); the fcc(111)
geometry (which atoms lie within a radius of an ontop adsorbate); the VASP
settings the slab and framework input sets must hold; the physical range of
CO and O adsorption on platinum (CO binds by 1-2 eV, O by ~1.1 eV per O
against 1/2 O2; experiment and PBE); sums of the stored terms done by hand.
"""

import os
import uuid

import numpy as np
import pytest
from ase.build import fcc111
from omni_flows.workflows.structures.clusters import ClusterSpec, cut_cluster
from omni_flows.workflows.errors import WorkflowInputError
from omni_flows.workflows.dft.pyscf_r2scan import PySCFSettings, SCFConvergenceError, r2scan_energy
from omni_flows.db_schemas.identity import settings_id
from omni_flows.db_schemas.legacy import legacy_settings_id
from omni_flows.db_schemas.legacy import identity_of
from omni_flows.db_schemas.query import stored_once
from omni_flows.results import validation_targets
from omni_flows.workflows.settings import MLIPSettings
from omni_flows.workflows.flows.validation import R2SCANValidationMaker
from omni_flows.workflows.dft.vasp_r2scan import (
    FrameworkR2SCANStaticMaker,
    SlabR2SCANStaticMaker,
    molecule_in_box,
)
from pymatgen.core import Lattice, Molecule, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.vasp import Incar, Kpoints
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.stores import connect_database
from conftest import cli_database

runner = CliRunner()
PT_NN = 2.77  # A, nearest-neighbour distance of the ASE Pt fcc(111) slab (a = 3.92 A)
# eV, CO dissociation energy De: D0 = 11.09 eV (Huber & Herzberg) + ZPE 0.134 eV (2170 cm-1 / 2)
CO_DE_EXPERIMENT = 11.23
CO_BOND = 1.128  # A, experimental r_e
R2SCAN_CPU = MLIPSettings(model="7net-mf-0", task="R2SCAN", device="cpu")


def co_on_pt111(with_co: bool = True) -> Structure:
    """Pt(111) 2x2x3 with CO ontop the first top-layer atom (C 1.85 A above it)."""
    slab = fcc111("Pt", (2, 2, 3), a=PT_NN * 2**0.5, vacuum=8.0)
    top = slab.positions[:, 2].argmax()
    structure = AseAtomsAdaptor.get_structure(slab)
    if with_co:
        c = slab.positions[top] + [0, 0, 1.85]
        structure.append("C", c, coords_are_cartesian=True)
        structure.append("O", c + [0, 0, 1.15], coords_are_cartesian=True)
    return structure


def test_co_atomization_energy_matches_experiment():
    """r2SCAN/def2-SVP De of CO (integer occupations, spins by lowest energy) vs experiment."""
    settings = PySCFSettings(basis="def2-svp", smearing=None, conv_tol=1e-7)
    co = r2scan_energy(Molecule(["C", "O"], [[0, 0, 0], [0, 0, CO_BOND]]), settings)
    c = r2scan_energy(Molecule(["C"], [[0, 0, 0]]), settings)
    o = r2scan_energy(Molecule(["O"], [[0, 0, 0]]), settings)
    assert (co.spin, c.spin, o.spin) == (0, 2, 2)  # singlet CO, triplet C and O (Hund)
    assert c.energy + o.energy - co.energy == pytest.approx(CO_DE_EXPERIMENT, abs=0.3)


def test_scf_that_does_not_converge_raises_instead_of_returning_an_energy():
    settings = PySCFSettings(basis="sto-3g", max_cycle=2, smearing=None)
    with pytest.raises(SCFConvergenceError, match="did not converge"):
        r2scan_energy(Molecule(["O", "O"], [[0, 0, 0], [0, 0, 1.21]]), settings)
    with pytest.raises(WorkflowInputError, match="2S must be even"):
        r2scan_energy(Molecule(["O"], [[0, 0, 0]]), PySCFSettings(spins=(1,)))


def test_dft_settings_are_checked_when_made_and_frozen_after():
    """Made once at the edge, passed whole: a bad value is refused before any job, and a
    made object cannot change under a job that holds it."""
    import dataclasses

    from omni_flows.workflows.dft.gpaw_runner import GPAWSettings

    settings = PySCFSettings(spins=[0, 2])
    assert settings.spins == (0, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.basis = "sto-3g"
    with pytest.raises(dataclasses.FrozenInstanceError):
        GPAWSettings().ecut = 300.0
    assert GPAWSettings(kpts=[4, 4, 1]).kpts == (4, 4, 1)
    for bad, message in [({"grid_level": 10}, "grid_level must be 0-9"),
                         ({"basis": ""}, "basis ''"), ({"spins": (-2,)}, "2S values"),
                         ({"conv_tol": 0.0}, "conv_tol must be > 0"),
                         ({"smearing": -0.01}, "smearing must be >= 0")]:
        with pytest.raises(WorkflowInputError, match=message):
            PySCFSettings(**bad)


def test_cluster_cut_around_an_ontop_site_holds_site_neighbours_and_layer_below():
    """Ontop on fcc(111), 5 A: the site atom, its 6 in-plane neighbours, the 3 below it."""
    structure, clean = co_on_pt111(), co_on_pt111(with_co=False)
    cluster = cut_cluster(structure, 2, ClusterSpec(radius=5.0), clean_slab=clean)
    assert cluster.bare.composition.formula == "Pt10"
    assert cluster.with_adsorbate.composition.formula == "Pt10 C1 O1"
    pos = cluster.bare.cart_coords  # periodic images of a 2x2 cell, none twice
    distances = np.linalg.norm(pos[:, None] - pos[None], axis=-1)[np.triu_indices(10, 1)]
    assert distances.min() == pytest.approx(PT_NN, abs=1e-6)
    z = np.round(pos[:, 2] - pos[:, 2].max(), 3)
    assert sorted(np.unique(z, return_counts=True)[1]) == [3, 7]  # two layers: 7 + 3
    assert str(cluster.with_adsorbate[cluster.binding_index].specie) == "C"
    nearest = cut_cluster(structure, 2, ClusterSpec(radius=5.0, max_atoms=4))
    assert len(nearest.bare) == 4  # the site and 3 of its 6 neighbours (ties by index)
    with pytest.raises(WorkflowInputError, match="raise the cluster radius"):
        cut_cluster(structure, 2, ClusterSpec(radius=1.0))


def _written_inputs(maker, structure, folder):
    from atomate2.vasp.files import write_vasp_input_set

    folder.mkdir()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        write_vasp_input_set(structure, maker.input_set_generator, potcar_spec=True)
    finally:
        os.chdir(cwd)
    return Incar.from_file(folder / "INCAR"), Kpoints.from_file(folder / "KPOINTS")


def test_vasp_r2scan_inputs_for_slabs_and_frameworks(tmp_path):
    slab = co_on_pt111()
    incar, kpoints = _written_inputs(SlabR2SCANStaticMaker(), slab, tmp_path / "slab")
    assert incar["METAGGA"].lower() == "r2scan" and incar["ISMEAR"] == 0
    assert incar["SIGMA"] == 0.05 and incar["LDIPOL"] is True and incar["IDIPOL"] == 3
    assert "KSPACING" not in incar and incar["NSW"] == 0
    assert 0 < incar["DIPOL"][2] < 1  # the slab's centre, inside the cell
    # 2x2 Pt(111): a = b = 5.54 A, ceil(25 / 5.54) = 5 in plane; one k-point across the vacuum
    assert tuple(kpoints.kpts[0]) == (5, 5, 1) and kpoints.style.name == "Gamma"
    assert (tmp_path / "slab" / "POTCAR.spec").read_text().split() == ["Pt", "C", "O"]

    framework = Structure(Lattice.cubic(12.9), ["Zn", "O"], [[0, 0, 0], [0.1, 0.1, 0.1]])
    incar, kpoints = _written_inputs(FrameworkR2SCANStaticMaker(), framework, tmp_path / "mof")
    assert incar["ISMEAR"] == 0 and "LDIPOL" not in incar and "KSPACING" not in incar
    assert tuple(kpoints.kpts[0]) == (1, 1, 1)  # cells above 10 A: Gamma only
    box = molecule_in_box(Molecule(["C", "O"], [[0, 0, 0], [0, 0, CO_BOND]]))
    assert box.lattice.abc == (15.0, 15.0, 15.0)


# --- a tiny real screen of CO and O on Pt(111), stored in the test database ---

SCREEN = ["screen", "surfaces", "--bulk", "Pt", "--facets", "111", "--adsorbates", "CO", "O",
          "--supercell", "2x2", "--layers", "3", "--fixed-layers", "1",
          "--max-placements", "3", "--n-random", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def pt_screen(db_server, tmp_path_factory):
    settings, env = cli_database(db_server, "t_valid")
    out = tmp_path_factory.mktemp("screen")
    result = runner.invoke(app, [*SCREEN, "--out", str(out)], env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return settings, env


def test_validate_stores_mlip_r2scan_next_to_the_screens_pbe_value(pt_screen):
    settings, env = pt_screen
    result = runner.invoke(app, ["validate", "--top", "2", "--device", "cpu"], env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert "MLIP-r2SCAN" in result.output
    db = connect_database(settings)
    docs = {d["adsorbate"]: d for d in db["r2scan_validation"].find()}
    assert set(docs) == {"CO", "O"}
    gas = {d["label"]: d["output"]["energy"] for d in db["calculations"].find(
        {"label": {"$regex": r"\(g\)$"}})}
    for name, doc in docs.items():
        best = db["adsorption_best"].find_one({"adsorbate": name})
        assert doc["mlip_pbe"] == best["adsorption_energy"]
        assert identity_of(doc["provenance"])["task"] == "R2SCAN"
        assert identity_of(doc["source_provenance"])["task"] == "PBE"
        assert doc["dft_code"] == "none" and doc["dft_r2scan"] is None
        assert doc["mlip_r2scan_minus_pbe"] == pytest.approx(doc["mlip_r2scan"] - doc["mlip_pbe"])
        terms = doc["mlip_r2scan_terms"]
        refs = {"CO": terms.get("CO(g)"), "O": terms.get("H2O(g)", 0) - terms.get("H2(g)", 0)}
        assert doc["mlip_r2scan"] == pytest.approx(
            terms["slab+adsorbate"] - terms["slab"] - refs[name], abs=1e-9)
        # its settings id names its own settings (db_schemas.identity), not a legacy id
        assert doc["settings_id"] == settings_id(doc["provenance"]["settings"])
        assert doc["settings_id"] != legacy_settings_id(doc)
        assert doc["provenance"]["settings"]["mlip"]["task"] == "R2SCAN"
        assert doc["provenance"]["settings"]["screen_settings_id"] == best["settings_id"]
        # the r2SCAN task is another functional: its CO(g) differs from the PBE task's
        if name == "CO":
            assert abs(terms["CO(g)"] - gas["CO(g)"]) > 0.1
    assert -3.0 < docs["CO"]["mlip_r2scan"] < -0.5  # CO binds to Pt(111)


def test_validate_reports_bad_input(pt_screen):
    _, env = pt_screen
    result = runner.invoke(app, ["validate", "--adsorbate", "N", "--device", "cpu"], env=env)
    assert result.exit_code != 0 and "no valid adsorption_best results" in str(result.exception)
    result = runner.invoke(app, ["validate", "--dft", "gaussian", "--device", "cpu"], env=env)
    assert "--dft must be one of gpaw, none, pyscf, vasp" in str(result.exception)
    with pytest.raises(WorkflowInputError, match="dft must be one of"):
        R2SCANValidationMaker(dft="gaussian").make([])


def test_vasp_validation_flow_has_a_static_per_term(pt_screen):
    settings, _ = pt_screen
    targets = validation_targets(connect_database(settings), 1, ["CO"], "7net-mf-0")
    flow = R2SCANValidationMaker(dft="vasp", mlip=R2SCAN_CPU).make(targets)
    names = sorted(j.name for j, _ in flow.iterflow())
    assert sum(n.startswith("VASP r2SCAN") for n in names) == 3  # slab+CO, slab, CO(g)
    makers = {type(j.maker).__name__ for j, _ in flow.iterflow() if j.maker is not None}
    assert makers == {"SlabR2SCANStaticMaker", "FrameworkR2SCANStaticMaker"}
    # a flow built again has the same job identities (a re-run reuses stored VASP results);
    # another INCAR gives the VASP jobs and the documents new ones
    uuids = {j.name: j.uuid for j, _ in flow.iterflow()}
    again = R2SCANValidationMaker(dft="vasp", mlip=R2SCAN_CPU).make(targets)
    assert {j.name: j.uuid for j, _ in again.iterflow()} == uuids
    maker = R2SCANValidationMaker(dft="vasp", mlip=R2SCAN_CPU)
    maker.slab_maker.input_set_generator.user_incar_settings = {"ENCUT": 700}
    changed = {j.name for j, _ in maker.make(targets).iterflow() if j.uuid != uuids[j.name]}
    assert changed == {n for n in uuids if "slab" in n or n.startswith(("VASP r2SCAN Pt",
                                                                         "r2SCAN validation"))}


def test_pyscf_r2scan_of_co_and_o_on_a_pt3_cluster_end_to_end(pt_screen):
    """Reduced settings to stay within minutes on one core: Pt3 cut (the 3 atoms nearest
    the binding atom), LANL2DZ+ECP on Pt and def2-SVP on C, O, H, grid level 2,
    conv_tol 1e-6 Ha, spin states 2S in (0, 2) only. E_ads of O is checked against
    1/2 O2, the usual experimental reference, from the stored water and H2 terms.
    Measured: about 275 s of CPU on one core, the longest test of the suite."""
    from omni_flows.engines.local import run_local

    settings, _ = pt_screen
    db = connect_database(settings)
    targets = validation_targets(db, 2, ["CO", "O"], "7net-mf-0")
    pyscf = PySCFSettings(basis={"Pt": "lanl2dz", "default": "def2-svp"}, grid_level=2,
                          conv_tol=1e-6, spins=(0, 2),
                          extra={"reduced": "test settings: Pt3, LANL2DZ on Pt, grid 2"})
    maker = R2SCANValidationMaker(dft="pyscf", mlip=R2SCAN_CPU, pyscf=pyscf,
                                  cluster=ClusterSpec(radius=5.0, max_atoms=3))
    flow = maker.make(targets)
    run_local(flow, settings=settings)
    assert run_local(maker.make(targets), settings=settings) == {}  # stored: nothing re-run
    docs = {d["adsorbate"]: d for d in db["r2scan_validation"].find({"dft_code": "pyscf"})}
    assert set(docs) == {"CO", "O"}
    for doc in docs.values():
        assert doc["dft_settings"]["basis"]["Pt"] == "lanl2dz"
        assert doc["dft_settings"]["cluster"]["formula"] == "Pt3"
        assert doc["mlip_r2scan_minus_dft"] == pytest.approx(doc["mlip_r2scan"]
                                                             - doc["dft_r2scan"])
    assert -3.0 < docs["CO"]["dft_r2scan"] < -0.5
    terms = docs["O"]["dft_terms"]
    o2 = r2scan_energy(Molecule(["O", "O"], [[0, 0, 0], [0, 0, 1.21]]), pyscf).energy
    o_vs_o2 = docs["O"]["dft_r2scan"] + terms["H2O(g)"] - terms["H2(g)"] - o2 / 2
    assert -2.0 < o_vs_o2 < -0.3


# --- the queries below the CLI (omni_flows.results), on a copy of the screen's database ---


@pytest.fixture
def screen_copy(pt_screen):
    """The screen's documents in a database of their own, for tests that add documents."""
    settings, _ = pt_screen
    source = connect_database(settings)
    name = f"{settings.database}_{uuid.uuid4().hex[:4]}"
    copy = connect_database(settings.model_copy(update={"database": name}))
    for name in ("adsorption_best", "adsorption_placements", "slabs", "calculations"):
        copy[name].insert_many(list(source[name].find({}, {"_id": 0})))
    return copy


def test_gpaw_targets_use_the_screens_own_gas_molecule_not_a_newer_one(screen_copy):
    """The rule: the gas molecule whose energy is the screen's reference (label and energy
    match), whatever was stored after it; the newest one only without such a match."""
    from datetime import datetime, timezone

    from omni_flows.db_schemas import BestAdsorptionDoc
    from omni_flows.results import gpaw_validation_targets, latest, screen_gas_molecule

    db = screen_copy
    best = BestAdsorptionDoc.model_validate(db["adsorption_best"].find_one({"adsorbate": "O"},
                                                                           {"_id": 0}))
    reference = best.provenance.energy_reference.energies["H2O"]  # eV, as the screen used
    stored = db["calculations"].find_one({"label": "H2O(g)"}, {"_id": 0})
    assert stored["output"]["energy"] == reference
    newer = {**stored, "settings_id": "0123456789", "input_hash": "another",
             "last_updated": datetime(2100, 1, 1, tzinfo=timezone.utc),
             "output": {**stored["output"], "energy": reference + 0.5}}
    db["calculations"].insert_one(newer)
    same_model = stored_once({f"provenance.{k}": getattr(best.provenance, k)
                              for k in ("model_name", "task", "checkpoint_hash")})
    assert latest(db, "calculations", {"label": "H2O(g)", **same_model})["output"][
        "energy"] == reference + 0.5
    assert screen_gas_molecule(db, "H2O", best.provenance).output.energy == reference
    elemental = best.provenance.model_copy(update={"energy_reference": best.provenance
                                                   .energy_reference.model_copy(
                                                       update={"scheme": "oc20_elemental"})})
    assert screen_gas_molecule(db, "H2O", elemental).output.energy == reference + 0.5
    targets, asked = gpaw_validation_targets(db, 2, ["O"], "7net-mf-0", None)
    assert asked == 1 and len(targets) == 1
    gas = targets[0].gas["H2O"]
    assert np.array_equal(gas.cart_coords,
                          Molecule.from_dict(stored["output"]["structure"]).cart_coords)


def test_validation_targets_leave_out_coverage_results_and_keep_the_newest(screen_copy):
    """One adsorbate per cell (a coverage result is left out even where its E_ads is
    lowest); of a result stored twice under one key, the newest is validated."""
    from datetime import timedelta

    from omni_flows.db_schemas import BestAdsorptionDoc
    from omni_flows.results import (
        ResultsNotFoundError,
        gpaw_validation_targets,
        newest_per_result,
        validation_targets,
    )

    db = screen_copy
    stored = db["adsorption_best"].find_one({"adsorbate": "CO"}, {"_id": 0})
    db["adsorption_best"].insert_one({**stored, "coverage": 2, "settings_id": "c0ve4a9e00",
                                      "adsorption_energy": stored["adsorption_energy"] - 5})
    (target,) = validation_targets(db, 1, ["CO"], "7net-mf-0")
    assert target.mlip_pbe == stored["adsorption_energy"]
    assert target.screen_settings_id == stored["settings_id"]
    targets, asked = gpaw_validation_targets(db, 1, ["CO"], "7net-mf-0", None)
    assert asked == 1 and targets[0].screen_settings_id == stored["settings_id"]
    with pytest.raises(ResultsNotFoundError, match="no valid adsorption_best results of "
                       "model 7net-mf-0 for N: run `omni-flows screen surfaces"):
        validation_targets(db, 1, ["N"], "7net-mf-0")
    old = BestAdsorptionDoc.model_validate(stored)
    new = old.model_copy(update={"adsorbate_id": "CO-user", "adsorption_energy": -9.0,
                                 "last_updated": old.last_updated + timedelta(days=1)})
    assert newest_per_result([old, new]) == [new]
    other = old.model_copy(update={"settings_id": "another00"})  # another result
    assert len(newest_per_result([old, new, other])) == 2


def test_query_refuses_an_unknown_collection_and_returns_documents_in_job_order(screen_copy):
    from omni_flows.errors import UnknownCollectionError
    from omni_flows.results import documents_of_jobs, query

    db = screen_copy
    with pytest.raises(UnknownCollectionError,
                       match="no collection 'nope'; known: adsorption_best, .*outputs"):
        query(db, "nope", {})
    rows = query(db, "adsorption_best", {}, ["adsorbate", "adsorption_energy"],
                 sort="-adsorption_energy")
    energies = [r["adsorption_energy"] for r in rows]
    assert energies == sorted(energies, reverse=True) and set(rows[0]) == {
        "adsorbate", "adsorption_energy"}
    uuids = sorted(db["calculations"].distinct("provenance.jobflow_uuid"), reverse=True)
    assert len(uuids) > 2
    assert [d["provenance"]["jobflow_uuid"] for d in
            documents_of_jobs(db, "calculations", uuids)] == uuids
