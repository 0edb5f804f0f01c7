"""The packaged models omni-ads-0 and omni-ads-1: shipped weights, tasks, card, licences,
and held-out checks.

References: the content hashes pinned in ``model/pretrained.py`` (recomputed from the file's
tensors on load); the CHEAT DFT energies (GPAW RPBE) of structures the models never saw;
7net-mf-0 itself for omni-ads-1's frozen PBE and R2SCAN tasks.
"""

import fnmatch
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.db import connect
from ase.io import read
from pymatgen.io.ase import AseAtomsAdaptor
from omni_flows.db_schemas.fingerprint import structure_fingerprint
from omni_flows.model import OmniCalculator, load_model
from omni_flows.model.checkpoint import read_metadata
from omni_flows.model.header import checkpoint_header, out_of_domain
from omni_flows.model.inference import predict
from omni_flows.model.pretrained import (
    PACKAGED_WEIGHTS,
    _lookup,
    available_models,
    model_card,
    resolve,
)
from omni_flows.model.train.config import TrainConfig
from structures import co_on_pt111, cu_o_slab

ROOT = Path(__file__).resolve().parents[1]
HEA = ROOT.parent / "shared" / "data" / "hea_gpaw_rpbe"
FOLDER = PACKAGED_WEIGHTS / "omni-ads-0"


def test_omni_ads_0_is_packaged_with_its_hash_tasks_and_card(tmp_path):
    entry = _lookup("omni-ads-0")
    path = resolve("omni-ads-0", cache_dir=tmp_path)  # no conversion, no download
    assert path == FOLDER / "model.safetensors" and not list(tmp_path.iterdir())
    assert read_metadata(path)["content_hash"] == entry.content_hash != ""
    model = load_model("omni-ads-0")  # verifies the hash over every tensor
    assert model.checkpoint_hash == entry.content_hash
    assert model.config.tasks == ["R2SCAN", "PBE", "gpaw_rpbe", "oc20"]
    assert "omni-ads-0" in [m.name for m in available_models()]
    assert path.stat().st_size < 12 << 20  # 10.6 MB: rank-32 adapters, 4 committee members
    card = model_card("omni-ads-0")
    for needed in ("gpaw_rpbe", "oc20", "GPAW", "VASP", "Held out", "omni-flows train recipes/",
                   "not for", "benchmarks/ablation_omni_ads.py"):
        assert needed in card, needed
    assert model_card("7net-0") is None
    for name in ("LICENSE-SevenNet", "LICENSE-CHEAT", "NOTICE"):
        assert (FOLDER / name).stat().st_size > 0
    notice = (FOLDER / "NOTICE").read_text()
    assert "CC BY 4.0" in notice and "doi:10.1021/acs.jctc.4c00190" in notice
    # every shipped file is package data of the wheel
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["omni_flows.model"]
    for f in FOLDER.iterdir():
        rel = f.relative_to(PACKAGED_WEIGHTS.parent).as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel


@pytest.mark.skipif(not HEA.is_dir(), reason=f"CHEAT data not found at {HEA}")
def test_omni_ads_0_gpaw_rpbe_beats_7net_mf_0_on_held_out_metals():
    """O* on Au, Cu, Re (held out of training and of the DBS): E(slab+O) - E(slab) -
    (E(H2O) - E(H2)) against CHEAT's adsorption energy ``e`` (GPAW RPBE). Clean slab: the
    H row's slab without H (its DFT energy is implied by ``e``; gas molecules by the model).
    Measured at shipping: mean |error| 0.129 eV (gpaw_rpbe; Cu -0.059, Au -0.245, Re -0.083)
    vs 0.205 eV (7net-mf-0/PBE; Cu 0.212, Au -0.152, Re 0.250): Au alone got worse."""

    def mean_error(model, task):
        calc = OmniCalculator(model=model, task=task, device="cpu")

        def e(atoms):
            atoms = atoms.copy()
            atoms.calc = calc
            return atoms.get_potential_energy()

        ref = e(read(HEA / "gas" / "h2o.traj", -1)) - e(read(HEA / "gas" / "h2.traj", -1))
        errors = []
        for metal in ("Au", "Cu", "Re"):
            rows = {r.ads: r for r in connect(HEA / "pure_metals.db").select(element=metal)}
            slab = rows["H"].toatoms()[:45]
            errors.append(e(rows["O"].toatoms()) - e(slab) - ref - rows["O"].e)
        return sum(abs(x) for x in errors) / len(errors)

    new, old = mean_error("omni-ads-0", "gpaw_rpbe"), mean_error("7net-mf-0", "PBE")
    assert new == pytest.approx(0.129, abs=0.01)  # the shipped weights, measured
    assert new < old - 0.03, (new, old)


def _fingerprint(atoms: Atoms) -> str:
    """The project's identity of a structure (species, cell, wrapped positions, rounded)."""
    return structure_fingerprint(AseAtomsAdaptor.get_structure(atoms))


@pytest.mark.skipif(not HEA.is_dir(), reason=f"CHEAT data not found at {HEA}")
def test_omni_ads_0_recipe_files_hold_no_held_out_structure():
    """Held out means absent: no structure of the recipe's derived files (clean slabs, DBS)
    is one of the held-out set's: CHEAT Au/Cu/Re rows and their clean slabs, any frame of
    HEA slab 0001, Xu & Kitchin Au and Cu slabs. Controls: the same check finds the
    training metals' rows and the Xu & Kitchin Pt slabs, which are in the DBS."""
    recipe = yaml.safe_load((ROOT / "recipes" / "omni-ads-0.yaml").read_text())
    cfg = TrainConfig.from_dict(recipe)  # the shipped recipe parses
    assert cfg.optim.universal_lr_ratio == 0.2 and cfg.data.dbs_fraction == 0.3
    held_out = set()
    for row in connect(HEA / "pure_metals.db").select():
        if row.element in ("Au", "Cu", "Re"):
            atoms = row.toatoms()
            held_out |= {_fingerprint(atoms), _fingerprint(atoms[:45])}
    for traj in (HEA / "hea_example" / "traj").glob("example_project_0001_*.traj"):
        held_out |= {_fingerprint(a) for a in read(traj, ":")}
    xk = json.loads((ROOT.parent / "shared/data/xu_kitchin_2014/structures.json").read_text())

    def xk_slabs(metal):
        return {
            _fingerprint(Atoms(e["symbols"], positions=e["pos"], cell=e["cell"]))
            for sites in xk[metal].values()
            for coverages in sites.values()
            for e in coverages.values()
            if isinstance(e, dict)
        }

    held_out |= xk_slabs("Au") | xk_slabs("Cu")
    derived = [
        a
        for name in ("clean_slabs", "dbs_pbe", "dbs_r2scan")
        for a in read(ROOT / "recipes" / "omni-ads-0" / f"{name}.extxyz", ":")
    ]
    assert len(derived) == 9 + 485 + 243
    assert not {_fingerprint(a) for a in derived} & held_out
    training_rows = {_fingerprint(r.toatoms()) for r in connect(HEA / "pure_metals.db").select(
        "element!=Au,element!=Cu,element!=Re")}
    derived_set = {_fingerprint(a) for a in derived}
    assert len(derived_set & training_rows) == 45  # controls: the check finds what is there
    assert len(derived_set & xk_slabs("Pt")) > 100


# ----- omni-ads-1 ------------------------------------------------------------------------
FOLDER_1 = PACKAGED_WEIGHTS / "omni-ads-1"


def test_omni_ads_1_is_packaged_with_adapters_tasks_elements_and_card(tmp_path):
    entry = _lookup("omni-ads-1")
    path = resolve("omni-ads-1", cache_dir=tmp_path)
    assert path == FOLDER_1 / "model.safetensors" and not list(tmp_path.iterdir())
    assert read_metadata(path)["content_hash"] == entry.content_hash != ""
    header = checkpoint_header("omni-ads-1")
    assert header.tasks == ("R2SCAN", "PBE", "gpaw_rpbe", "oc20") and header.adapter_rank == 32
    # the elements each new task was trained on: Au, Cu, Re are held out of gpaw_rpbe
    assert out_of_domain(["Pt", "Au", "Cu", "Re", "O"], "omni-ads-1", "gpaw_rpbe") == [
        "Au", "Cu", "Re"]
    assert out_of_domain(["Pt"], "omni-ads-1", "PBE") is None  # 7net-mf-0's: not recorded
    assert {"omni-ads-0", "omni-ads-1"} <= {m.name for m in available_models()}
    assert path.stat().st_size < 12 << 20  # 10.6 MB: rank-32 adapters, 4 committee members
    card = model_card("omni-ads-1")
    for needed in ("gpaw_rpbe", "oc20", "Held out", "omni-flows train recipes/omni-ads-1.yaml",
                   "benchmarks/omni_ads_fit.py", "not for", "bit for bit", "not reached",
                   "omni-ads-1-ship.yaml"):
        assert needed in card, needed
    for name in ("LICENSE-SevenNet", "LICENSE-CHEAT", "NOTICE"):
        assert (FOLDER_1 / name).stat().st_size > 0
    assert "CC BY 4.0" in (FOLDER_1 / "NOTICE").read_text()
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["omni_flows.model"]
    for f in FOLDER_1.iterdir():
        rel = f.relative_to(PACKAGED_WEIGHTS.parent).as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel


def test_omni_ads_1_pbe_and_r2scan_are_7net_mf_0_bit_for_bit():
    """Universal weights frozen, PBE's adapters zero: the pretrained tasks give 7net-mf-0's
    numbers exactly (energy, forces, stress), on Pt and on Cu (a metal held out of it)."""
    new, ref = load_model("omni-ads-1"), load_model("7net-mf-0")
    structures = [co_on_pt111(), cu_o_slab()]
    for task in ("PBE", "R2SCAN"):
        for got, want in zip(predict(structures, new, task), predict(structures, ref, task)):
            assert got["energy"] == want["energy"]
            assert np.array_equal(got["forces"], want["forces"])
            assert np.array_equal(got["stress"], want["stress"])
    got = predict(structures[:1], new, "gpaw_rpbe")[0]["energy"]
    assert abs(got - predict(structures[:1], ref, "PBE")[0]["energy"]) > 1.0  # a task of its own


@pytest.mark.skipif(not HEA.is_dir(), reason=f"CHEAT data not found at {HEA}")
def test_omni_ads_1_meets_pt111_goal_and_beats_omni_ads_0_on_a_held_out_quinary_slab():
    """Against GPAW RPBE (CHEAT), single points at the DFT geometries, each model's own gas
    references (O* vs H2O - H2, OH* vs H2O - H2/2). Pt(111) O* and OH*, the training cell,
    within the issue's +-0.10 eV (measured at shipping, benchmarks/results/omni_ads_fit.txt:
    +0.011 / +0.017; omni-ads-0 +0.385 / -0.063). Held-out quinary slab 0002 (never trained
    on), its 9 O* and 9 OH* sites against gas: MAE 0.148 / 0.065 eV against omni-ads-0's
    0.648 / 0.111."""

    def energies(model, structures):
        return np.array([r["energy"] for r in predict(structures, model, "gpaw_rpbe")])

    gas = [read(HEA / "gas" / f"{g}.traj", -1) for g in ("h2", "h2o")]
    refs = {"O": np.array([-1.0, 1.0]), "OH": np.array([-0.5, 1.0])}

    def pt_errors(model):
        rows = {r.ads: r for r in connect(HEA / "pure_metals.db").select(element="Pt")}
        e = energies(model, [rows["O"].toatoms(), rows["OH"].toatoms(),
                             rows["H"].toatoms()[:45]] + gas)
        return [e[i] - e[2] - refs[a] @ e[3:] - rows[a].e for i, a in enumerate(("O", "OH"))]

    o, oh = pt_errors("omni-ads-1")
    assert o == pytest.approx(0.011, abs=0.005) and oh == pytest.approx(0.017, abs=0.005)
    assert abs(o) < 0.10 and abs(oh) < 0.10  # the goal
    q = HEA / "hea_quinary" / "traj"
    slab = read(q / "agirpdptru_0002_slab.traj", -1)

    def mae(model, ads, site):
        sites = sorted(q.glob(f"agirpdptru_0002_{site}_{ads}_*.traj"))
        frames = [read(p, -1) for p in sites] + [slab] + gas
        e = energies(model, frames) - np.array([a.get_potential_energy() for a in frames])
        assert len(sites) == 9
        return float(np.abs(e[:-3] - e[-3] - refs[ads] @ e[-2:]).mean())

    new = [mae("omni-ads-1", "O", "fcc"), mae("omni-ads-1", "OH", "ontop")]
    old = [mae("omni-ads-0", "O", "fcc"), mae("omni-ads-0", "OH", "ontop")]
    assert new == pytest.approx([0.148, 0.065], abs=0.005)
    assert old == pytest.approx([0.648, 0.111], abs=0.005)


def test_a_screen_outside_the_tasks_training_elements_warns_before_it_runs():
    """omni-ads-1's gpaw_rpbe never saw Au (held out; its card says so): a screen's plan of
    Au and Pt with H names Au, one of Pt alone names nothing, and a checkpoint that records
    no training elements (7net-mf-0) says nothing either way."""
    from rich.console import Console

    from omni_flows.screening import warn_out_of_domain
    from omni_flows.workflows import MLIPSettings, PlacementSettings, SurfaceCampaign

    mlip = MLIPSettings(model="omni-ads-1", task="gpaw_rpbe", device="cpu")
    plan = SurfaceCampaign(bulks=["Au", "Pt"], facets=["111"], adsorbates=["H"], mlip=mlip,
                           placements=PlacementSettings(max_placements=1)).plan()
    assert plan.elements() == ["Au", "H", "Pt"]
    assert out_of_domain(plan.elements(), "omni-ads-1", "gpaw_rpbe") == ["Au"]
    assert out_of_domain(["H", "Pt"], "omni-ads-1", "gpaw_rpbe") == []
    assert out_of_domain(plan.elements(), "7net-mf-0", "PBE") is None
    console = Console(record=True, width=200)
    warn_out_of_domain(console, plan.elements(), mlip)
    assert "outside the training data of omni-ads-1/gpaw_rpbe: Au;" in console.export_text()
    console = Console(record=True, width=200)
    warn_out_of_domain(console, ["H", "Pt"], mlip)
    assert console.export_text() == ""
