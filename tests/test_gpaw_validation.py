"""GPAW periodic validation: settings, spin and k-point rules, the AdsorbML metric, and
`omni-flows validate --dft gpaw` end to end on a real screen and a real database.

References: ASE's own k-point density conversion (kptdensity2monkhorstpack, an
independent implementation); Hund's rule and the O2 triplet; the AdsorbML
criterion worked by hand; and, for the end-to-end run, the same GPAW energies
computed by a plain ASE + GPAW script written out here (its own parameters, its
own process), plus the sign and size of H adsorption on Cu(111) from PBE
literature (about -0.2 eV per H against 1/2 H2 at low coverage, never as strong
as -0.6 eV nor repulsive beyond +0.2 eV on a full monolayer).
"""

import json
import subprocess
import sys
import textwrap
import uuid
from importlib.util import find_spec

import numpy as np
import pytest
from ase.build import fcc111, molecule
from ase.calculators.calculator import kptdensity2monkhorstpack
from omni_flows.db_schemas.identity import settings_id
from omni_flows.model.errors import OmniFlowsError
from omni_flows.workflows.dft.adsorbml import adsorbml_success, campaign_summary
from omni_flows.workflows.errors import WorkflowInputError
from omni_flows.workflows.dft.gpaw_runner import (
    MOLECULE,
    SLAB,
    GPAWSettings,
    gpaw_parameters,
    initial_magmoms,
    kpoint_grid,
    prepare_atoms,
)
from pymatgen.io.ase import AseAtomsAdaptor
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.stores import connect_database

runner = CliRunner()
GPAW_INSTALLED = find_spec("gpaw") is not None
needs_gpaw = pytest.mark.skipif(
    not GPAW_INSTALLED, reason="GPAW is not installed: apt-get install -y libxc-dev "
    "libopenblas-dev && CC=g++ pip install gpaw")


def slab_structure(symbol="Cu", size=(1, 1, 2), vacuum=6.0, **kw):
    return AseAtomsAdaptor.get_structure(fcc111(symbol, size, vacuum=vacuum, **kw))


@pytest.mark.parametrize("symbol, size, a", [("Cu", (1, 1, 2), None), ("Pt", (3, 3, 5), 4.02),
                                             ("Ag", (2, 2, 3), None)])
def test_kpoint_grid_from_density_matches_ase_with_one_kpoint_along_the_normal(symbol, size, a):
    atoms = fcc111(symbol, size, a=a, vacuum=10.0)
    settings = GPAWSettings(kpt_density=4.0)
    grid = kpoint_grid(prepare_atoms(AseAtomsAdaptor.get_structure(atoms), SLAB, settings),
                       settings, SLAB)
    atoms.pbc = (True, True, False)
    assert grid == tuple(kptdensity2monkhorstpack(atoms, 4.0, even=False))
    assert grid[2] == 1
    if size == (3, 3, 5):
        assert grid == (4, 4, 1)  # CHEAT's grid for its 3x3 cells
    assert kpoint_grid(atoms, GPAWSettings(kpts=(2, 2, 1)), SLAB) == (2, 2, 1)
    assert kpoint_grid(atoms, settings, MOLECULE) == (1, 1, 1)


def test_spin_is_polarised_for_odd_electrons_triplets_atoms_and_magnetic_metals():
    settings = GPAWSettings()

    def moments(structure, kind):
        atoms = prepare_atoms(structure, kind, settings)
        return initial_magmoms(atoms, settings, kind)

    h2, o2 = (AseAtomsAdaptor.get_molecule(molecule(m)) for m in ("H2", "O2"))
    assert moments(h2, MOLECULE) is None
    assert sum(moments(o2, MOLECULE)) == pytest.approx(2.0)  # triplet O2
    assert moments(AseAtomsAdaptor.get_molecule(molecule("O")), MOLECULE) == [2.0]  # Hund: 3P
    assert moments(slab_structure("Cu"), SLAB) is None  # 58 electrons, not magnetic
    cu_h = slab_structure("Cu")
    cu_h.append("H", cu_h.cart_coords[-1] + [0, 0, 1.0], coords_are_cartesian=True)
    assert moments(cu_h, SLAB) == [0.0, 0.0, 1.0]  # one unpaired electron, on H
    assert moments(slab_structure("Ni"), SLAB) == [0.7, 0.7]
    paired = GPAWSettings(spin="paired")
    assert initial_magmoms(prepare_atoms(o2, MOLECULE, paired), paired, MOLECULE) is None
    params = gpaw_parameters(prepare_atoms(cu_h, SLAB, settings), settings, SLAB)
    assert params["spinpol"] is True and params["poissonsolver"] == {"dipolelayer": "xy"}
    assert params["occupations"] == {"name": "fermi-dirac", "width": 0.1}
    assert params["mode"] == {"name": "pw", "ecut": 450.0} and params["kpts"]["size"][2] == 1


def test_slab_is_centred_along_z_with_the_dipole_layer_and_molecules_sit_in_their_box():
    settings = GPAWSettings(box=10.0)
    structure = slab_structure("Cu", (1, 1, 3), vacuum=0.0)
    structure.make_supercell([1, 1, 1])
    lattice = structure.lattice.matrix.copy()
    lattice[2, 2] += 12.0  # the screen's slabs: at the bottom of the cell, vacuum above
    from pymatgen.core import Structure
    bottom = Structure(lattice, structure.species, structure.cart_coords,
                       coords_are_cartesian=True)
    atoms = prepare_atoms(bottom, SLAB, settings)
    z = atoms.positions[:, 2]
    assert z.min() == pytest.approx(atoms.cell[2, 2] - z.max(), abs=1e-6)  # centred
    assert tuple(atoms.pbc) == (True, True, False)
    gaps = np.diff(np.sort(z))
    assert gaps.max() < 2.5  # in one piece
    box = prepare_atoms(AseAtomsAdaptor.get_molecule(molecule("H2O")), MOLECULE, settings)
    assert box.cell.lengths() == pytest.approx([10.0] * 3) and box.pbc.all()
    with pytest.raises(WorkflowInputError, match="larger box"):
        prepare_atoms(AseAtomsAdaptor.get_molecule(molecule("C6H6")), MOLECULE,
                      GPAWSettings(box=8.0))


def test_settings_identity_holds_every_setting_but_not_threads():
    base = GPAWSettings()
    assert base.key() == GPAWSettings(threads=4, timeout=60).key()
    for change in ({"ecut": 400.0}, {"xc": "RPBE"}, {"kpts": (4, 4, 1)}, {"smearing": 0.05},
                   {"dipole": False}, {"spin": "paired"}, {"box": 10.0},
                   {"convergence": {"energy": 1e-5}}):
        assert GPAWSettings(**change).key() != base.key(), change
    with pytest.raises(WorkflowInputError, match="xc must be one of"):
        GPAWSettings(xc="B3LYP")
    with pytest.raises(WorkflowInputError, match="three positive integers"):
        GPAWSettings(kpts=(4, 4))


def test_adsorbml_success_and_campaign_summary_worked_by_hand():
    assert adsorbml_success(-1.00, -1.09)  # 0.09 above the lowest: success
    assert not adsorbml_success(-1.00, -1.11)
    assert adsorbml_success(-1.30, -1.10)  # lower than the reference: success
    docs = [
        {"mlip_adsorption_energy": -1.0, "dft_adsorption_energy": -0.8,
         "adsorbml_success": True,
         "placements": [{"mlip_adsorption_energy": -1.0, "dft_adsorption_energy": -0.8},
                        {"mlip_adsorption_energy": -0.9, "dft_adsorption_energy": -0.85}]},
        {"mlip_adsorption_energy": 0.5, "dft_adsorption_energy": 0.6,
         "adsorbml_success": False,
         "placements": [{"mlip_adsorption_energy": 0.5, "dft_adsorption_energy": 0.6}]},
    ]
    summary = campaign_summary(docs, n_asked=4)  # two asked for without a result: failures
    assert summary["success_rate"] == pytest.approx(1 / 4)
    assert summary["mae"] == pytest.approx((0.2 + 0.05 + 0.1) / 3)
    assert summary["mae_best"] == pytest.approx((0.2 + 0.1) / 2)


@pytest.mark.parametrize("args, message", [
    (["--kpts", "4x4"], "--kpts '4x4'"),
    (["--xc", "B3LYP"], "xc must be one of PBE, RPBE, r2SCAN"),
    (["--top", "0"], "--top must be at least 1"),
])
def test_bad_gpaw_input_is_refused_before_the_database(args, message, tmp_path):
    env = {"OMNI_FLOWS_HOME": str(tmp_path), "OMNI_FLOWS_DB_PORT": "1",  # nothing listens
           "OMNI_FLOWS_MONGODB_URI": None, "OMNI_FLOWS_CONFIG": None}
    result = runner.invoke(app, ["validate", "--dft", "gpaw", *args], env=env)
    assert isinstance(result.exception, WorkflowInputError | OmniFlowsError), result.output
    assert message in str(result.exception)


def test_missing_gpaw_exits_2_naming_the_install_steps(tmp_path):
    """The console script in its own process, GPAW hidden from it."""
    code = ("import sys; sys.modules['gpaw'] = None; sys.argv = ['omni-flows'] + sys.argv[1:]; "
            "from omni_flows.cli import main; main()")
    env = {"PATH": "/usr/bin:/bin", "OMNI_FLOWS_HOME": str(tmp_path), "HOME": str(tmp_path),
           "OMNI_FLOWS_DB_PORT": "1"}
    result = subprocess.run([sys.executable, "-c", code, "validate", "--dft", "gpaw"],
                            capture_output=True, text=True, env=env, timeout=300)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert "GPAW is not installed" in message and "Traceback" not in message
    assert "apt-get install -y libxc-dev libopenblas-dev" in message
    assert "CC=g++ pip install gpaw" in message


# --- end to end: a tiny real screen (Cu(111) 1x1, 2 layers, H), then GPAW at low settings ---

SCREEN = ["screen", "surfaces", "--bulk", "Cu", "--facets", "111", "--adsorbates", "H",
          "--supercell", "1x1", "--layers", "2", "--fixed-layers", "1",
          "--max-placements", "3", "--n-random", "0", "--device", "cpu"]
# cheap, for a test (not converged): PW 250 eV, 3x3x1, H2 in a 7 A box
LOW = ["--ecut", "250", "--kpts", "3x3x1", "--box", "7"]

# The same single points made by hand with ASE and GPAW: the parameters are written out
# here, not taken from the package (its own process: GPAW is never imported in this one).
DIRECT = textwrap.dedent("""
    import json, sys
    from ase import Atoms
    from gpaw import GPAW, PW, FermiDirac
    data = json.load(open(sys.argv[1]))
    def energy(d, box=None, magmoms=None):
        atoms = Atoms(d["symbols"], d["positions"], cell=d.get("cell"))
        if box:
            atoms.set_cell([box] * 3); atoms.center(); atoms.pbc = True
            kw = dict(kpts=(1, 1, 1))
        else:
            atoms.center(axis=2); atoms.pbc = (True, True, False)
            kw = dict(kpts=(3, 3, 1), poissonsolver={"dipolelayer": "xy"})
        if magmoms:
            atoms.set_initial_magnetic_moments(magmoms)
        atoms.calc = GPAW(mode=PW(250), xc="PBE", occupations=FermiDirac(0.1),
                          spinpol=bool(magmoms), txt=None, **kw)
        return atoms.get_potential_energy()
    e_ads = (energy(data["placement"], magmoms=[0, 0, 1.0]) - energy(data["slab"])
             - 0.5 * energy(data["H2"], box=7.0))
    print(json.dumps({"adsorption_energy": e_ads}))
""")


def screen_and_validate_with_gpaw(db_server, tmp_path_factory):
    """The screen and its GPAW validation (conftest's session fixture ``gpaw_screen``, which
    tests/test_train_dft.py reads too): (settings, CLI env, validation JSON)."""
    if not GPAW_INSTALLED:
        pytest.skip("GPAW is not installed: apt-get install -y libxc-dev libopenblas-dev "
                    "&& CC=g++ pip install gpaw")
    database = f"t_gpaw_{uuid.uuid4().hex[:6]}"
    settings = db_server.model_copy(update={"database": database})
    env = {"OMNI_FLOWS_HOME": str(db_server.home), "OMNI_FLOWS_DB_PORT": str(db_server.db_port),
           "OMNI_FLOWS_DATABASE": database, "OMNI_FLOWS_MONGODB_URI": None,
           "OMNI_FLOWS_CONFIG": None}
    out = tmp_path_factory.mktemp("screen")
    result = runner.invoke(app, [*SCREEN, "--out", str(out)], env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    result = runner.invoke(app, ["validate", "--dft", "gpaw", "--top", "2", *LOW, "--json"],
                           env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return settings, env, _json(result.stdout)


def _json(stdout: str) -> dict:
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))


def _plain(structure) -> dict:
    d = {"symbols": [s.specie.symbol for s in structure], "positions": structure.cart_coords.tolist()}
    if hasattr(structure, "lattice"):
        d["cell"] = structure.lattice.matrix.tolist()
    return d


@needs_gpaw
def test_gpaw_validation_equals_gpaw_run_by_hand_and_h_on_cu111_binds_weakly(gpaw_screen,
                                                                           tmp_path):
    from omni_flows.db_schemas import AdsorptionPlacementDoc, MLIPCalculationDoc, SlabDoc

    settings, _, out = gpaw_screen
    assert set(out) >= {"success_rate", "targets", "mae"} and len(out["targets"]) == 1
    target = out["targets"][0]
    assert target["adsorbate"] == "H" and len(target["placements"]) == 2
    db = connect_database(settings)
    best = db["adsorption_best"].find_one({"adsorbate": "H"})
    assert target["mlip_adsorption_energy"] == pytest.approx(best["adsorption_energy"])
    # the MLIP's best placement, its clean slab and H2, as the screen stored them
    placement = AdsorptionPlacementDoc.model_validate(db["adsorption_placements"].find_one(
        {"adsorbate": "H", "placement_index": best["best_placement_index"]}, {"_id": 0}))
    slab = SlabDoc.model_validate(db["slabs"].find_one({}, {"_id": 0}))
    h2 = MLIPCalculationDoc.model_validate(db["calculations"].find_one({"label": "H2(g)"},
                                                                       {"_id": 0}))
    data = {"placement": _plain(placement.final_structure), "slab": _plain(slab.structure),
            "H2": _plain(h2.output.structure)}
    (tmp_path / "structures.json").write_text(json.dumps(data))
    (tmp_path / "direct.py").write_text(DIRECT)
    done = subprocess.run([sys.executable, "direct.py", "structures.json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    by_hand = _json(done.stdout)["adsorption_energy"]
    assert target["dft_adsorption_energy"] == pytest.approx(by_hand, abs=2e-3)
    # PBE: H in the hollow of Cu(111) binds weakly (about -0.2 eV against 1/2 H2)
    assert -0.6 < target["dft_adsorption_energy"] < 0.1
    for p in target["placements"]:  # same functional (PBE task): the model is close to DFT
        assert abs(p["mlip_adsorption_energy"] - p["dft_adsorption_energy"]) < 0.3
    lowest = min(p["dft_adsorption_energy"] for p in target["placements"])
    assert target["lowest_dft_adsorption_energy"] == pytest.approx(lowest)
    assert target["adsorbml_success"] == (target["dft_adsorption_energy"] - lowest <= 0.1)
    assert out["success_rate"] == float(target["adsorbml_success"])
    assert out["mae"] == pytest.approx(np.mean([abs(p["mlip_adsorption_energy"]
                                                    - p["dft_adsorption_energy"])
                                                for p in target["placements"]]))


@needs_gpaw
def test_gpaw_terms_are_stored_with_settings_and_a_rerun_or_other_k_reuses_them(gpaw_screen,
                                                                              monkeypatch):
    settings, env, out = gpaw_screen
    db = connect_database(settings)
    calcs = list(db["dft_calculations"].find({}, {"_id": 0}))
    assert sorted(c["kind"] for c in calcs) == ["molecule", "slab", "slab", "slab"]  # H2, 1+2
    for c in calcs:
        assert c["settings"]["ecut"] == 250 and c["settings"]["xc"] == "PBE"
        assert c["settings"]["versions"]["gpaw"] and c["versions"]["gpaw-data"]
        assert len(c["forces"]) == len(c["structure"]["sites"])
        # a DFT provenance: the code and functional, no checkpoint, the code's versions,
        # and the settings id of every DFT setting (db_schemas.identity)
        p = c["provenance"]
        assert (p["model_name"], p["task"], p["checkpoint_hash"]) == ("GPAW", "PBE", "")
        assert p["package_versions"]["gpaw"] == c["versions"]["gpaw"]
        assert c["settings_id"] == settings_id(p["settings"]) and len(c["settings_id"]) == 10
    assert {tuple(c["kpts"]) for c in calcs} == {(1, 1, 1), (3, 3, 1)}
    assert [c["spin_polarized"] for c in calcs if c["label"] == "H2(g)"] == [False]
    before = db["dft_validation"].find_one({}, {"_id": 0})

    def no_gpaw(*args, **kwargs):
        raise AssertionError("a stored GPAW single point ran again")

    monkeypatch.setattr("omni_flows.workflows.dft.gpaw_validation.run_gpaw", no_gpaw)
    again = runner.invoke(app, ["validate", "--dft", "gpaw", "--top", "2", *LOW, "--json"],
                          env=env)
    assert again.exit_code == 0, f"{again.output}\n{again.exception!r}"
    assert _json(again.stdout)["targets"] == out["targets"]
    one = runner.invoke(app, ["validate", "--dft", "gpaw", "--top", "1", *LOW, "--json"],
                        env=env)  # K = 1: another document, from the stored single points
    assert one.exit_code == 0, f"{one.output}\n{one.exception!r}"
    assert _json(one.stdout)["success_rate"] == 1.0
    docs = list(db["dft_validation"].find({}, {"_id": 0}))
    assert sorted(d["top_k"] for d in docs) == [1, 2]
    assert next(d for d in docs if d["top_k"] == 2) == before  # nothing replaced
