"""Held-out metrics of omni-ads-0 (or any fine-tuned checkpoint) and the (a)/(b)/(c) ablation.

    python benchmarks/ablation_omni_ads.py eval [--model omni-ads-0] [--json out.json]
    python benchmarks/ablation_omni_ads.py ablation [--work-dir DIR] [--variants a_no_reg ...]
        [--json FILE]   # trains (a), (b), (c); FILE keeps each finished variant

``eval`` measures, on data held out of ``recipes/omni-ads-0.yaml`` (see
``recipes/omni_ads_0_data.py``), the fine-tuned model next to the pretrained ones:

1. HEA slab ``example_project_0001`` (every trajectory held out): O*, OH*, H* adsorption
   energies at the DFT geometries, relative to Pt(111) (refs built from the CHEAT
   pure-metal Pt rows: O, OH, and the clean slab whose energy follows from their key
   ``e``) and against the gas molecules; task ``gpaw_rpbe`` vs ``7net-mf-0``/PBE.
2. Pure metals Au, Cu, Re (held out): E_ads = E(slab+X) - E(slab) - E_ref(X) of H, O, OH,
   CO, NO against the CHEAT value ``e``; the clean slab is the H row's slab without H at the
   DFT energy derived from ``e`` (not relaxed: a few 10 meV of slab relaxation are in the
   error of every model alike). Also the MAE after removing each model's mean error per
   adsorbate (the metal trend, fair to a PBE model).
3. OC20 trajectories held out: force MAE on free atoms (task ``oc20`` vs ``7net-0`` and
   ``7net-mf-0``/PBE) next to the zero-force baseline.
4. PBE drift on Xu & Kitchin 0.25 ML single points of Au and Cu (held out of the DBS):
   MAE of E_ads after fitting one reference per adsorbate on Pt, Ag, Pd (the metals in the
   DBS), and the mean change of E(slab+X) - E(slab) from 7net-mf-0's PBE task, on Au and
   Cu and on each of the five metals; and that change for the R2SCAN task (no r2SCAN
   reference data here).

``ablation`` trains the recipe three ways into ``--work-dir``: (a) no regularization and
no DBS, (b) selective regularization, (c) selective regularization plus the DBS (the
recipe), then runs ``eval`` on each.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import yaml
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "recipes"))
from omni_ads_0_data import (  # noqa: E402
    HELD_OUT_METALS,
    HELD_OUT_OC20,
    clean_slab_energies,
    gas_references,
)

HEA_HELD_OUT_SLAB_ID = 1  # example_project_0001
XK_FIT, XK_TEST = ("Pt", "Ag", "Pd"), ("Au", "Cu")


def pt111_refs_folder(target: Path, data: Path = DATA) -> Path:
    """hea_example's databases plus refs/ with the CHEAT Pt(111) rows (O, OH, clean slab)."""
    hea = data / "hea_gpaw_rpbe"
    target.mkdir(parents=True, exist_ok=True)
    for db in (hea / "hea_example").glob("*.db"):
        shutil.copy(db, target / db.name)
    refs = target / "refs"
    refs.mkdir(exist_ok=True)
    energies = clean_slab_energies(hea / "pure_metals.db", gas_references(hea / "gas"))
    energy, slab = energies["Pt"]
    slab.calc = SinglePointCalculator(slab, energy=energy)
    for name, atoms in (("3x3x5_pt111_slab.db", slab),):
        with connect(refs / name, append=False) as db:
            db.write(atoms, relaxed=1)
    for ads, name in (("O", "3x3x5_pt111_fcc_O.db"), ("OH", "3x3x5_pt111_ontop_OH.db")):
        row = next(connect(hea / "pure_metals.db").select(element="Pt", ads=ads))
        with connect(refs / name, append=False) as db:
            db.write(row.toatoms(), relaxed=1)
    return target


def hea_metrics(model: str, task: str | None, folder: Path, gas: Path) -> dict:
    from omni_flows.accuracy.hea import run_hea

    rel, _ = run_hea(model, task, folder, slab_ids=[HEA_HELD_OUT_SLAB_ID], device="cpu")
    plain = folder.parent / (folder.name + "-gas")
    if not plain.exists():
        shutil.copytree(folder, plain, ignore=shutil.ignore_patterns("refs"))
    gas_m, _ = run_hea(model, task, plain, gas_dir=gas, slab_ids=[HEA_HELD_OUT_SLAB_ID],
                       device="cpu")
    return {"vs_pt111": rel, "vs_gas": gas_m}


def pure_metal_metrics(model: str, task: str | None) -> dict:
    from ase.io import read
    from omni_flows.model.inference import predict
    from omni_flows.workflows.relax import get_calculator

    hea = DATA / "hea_gpaw_rpbe"
    slabs = clean_slab_energies(hea / "pure_metals.db", gas_references(hea / "gas"))
    gas = {k: read(hea / "gas" / f"{k}.traj", -1) for k in ("h2", "h2o", "co", "no")}
    rows = [r for r in connect(hea / "pure_metals.db").select() if r.element in HELD_OUT_METALS]
    structures = [r.toatoms() for r in rows] + [slabs[m][1] for m in HELD_OUT_METALS]
    structures += list(gas.values())
    calc = get_calculator(model, task, "cpu")
    e = [r["energy"] for r in predict(structures, calc.model, task, stress=False)]
    n = len(rows)
    slab_e = dict(zip(HELD_OUT_METALS, e[n : n + len(HELD_OUT_METALS)]))
    g = dict(zip(gas, e[n + len(HELD_OUT_METALS) :]))
    ref = {"H": 0.5 * g["h2"], "O": g["h2o"] - g["h2"], "OH": g["h2o"] - 0.5 * g["h2"],
           "CO": g["co"], "NO": g["no"]}
    err = {}
    for r, energy in zip(rows, e[:n]):
        err.setdefault(r.ads, []).append(energy - slab_e[r.element] - ref[r.ads] - r.e)
    all_err = np.concatenate([np.array(v) for v in err.values()])
    centred = np.concatenate([np.array(v) - np.mean(v) for v in err.values()])
    return {
        "metals": list(HELD_OUT_METALS),
        "mae": float(np.abs(all_err).mean()),
        "mean_error": float(all_err.mean()),
        "mae_per_adsorbate_offset_removed": float(np.abs(centred).mean()),
        **{f"{a}_mae": float(np.abs(v).mean()) for a, v in sorted(err.items())},
        "n": len(all_err),
    }


def oc20_metrics(model: str, task: str | None, stride: int) -> dict:
    from omni_flows.accuracy.oc20 import run_oc20

    m, _ = run_oc20(model, task, trajectories=list(HELD_OUT_OC20), stride=stride, device="cpu")
    return m


def xu_kitchin_metrics(model: str, task: str | None, base: str = "7net-mf-0") -> dict:
    from omni_flows.accuracy.xu_kitchin import ADSORBATES, load_reference
    from omni_flows.model.inference import predict
    from omni_flows.workflows.relax import get_calculator

    metals = XK_FIT + XK_TEST
    dft, adsorbed, clean = load_reference(None, "0.25", list(ADSORBATES), list(metals))
    keys = list(dft)
    structures = [adsorbed[k] for k in keys] + [clean[m] for m in metals]

    def binding(name, t):
        calc = get_calculator(name, t, "cpu")
        e = [r["energy"] for r in predict(structures, calc.model, t, stress=False)]
        slab = dict(zip(metals, e[len(keys) :]))
        return {k: v - slab[k[0]] for k, v in zip(keys, e)}

    out = {}
    for label, (name, t) in {"model": (model, task), "7net-mf-0/PBE": (base, "PBE")}.items():
        b = binding(name, t)
        mu = {a: np.mean([dft[k] - b[k] for k in keys if k[1] == a and k[0] in XK_FIT])
              for a in ADSORBATES}
        errors = [b[k] + mu[k[1]] - dft[k] for k in keys if k[0] in XK_TEST]
        out[label] = {"binding": b, "mae_test": float(np.mean(np.abs(errors))),
                      "n_test": len(errors)}
    change = {k: abs(out["model"]["binding"][k] - out["7net-mf-0/PBE"]["binding"][k])
              for k in keys}
    drift = [change[k] for k in keys if k[0] in XK_TEST]
    # no r2SCAN reference here: only how far the R2SCAN task moved, on all five metals
    model_r2scan, base_r2scan = binding(model, "R2SCAN"), binding(base, "R2SCAN")
    return {
        "r2scan_binding_energy_drift_mean_abs": float(
            np.mean([abs(model_r2scan[k] - base_r2scan[k]) for k in keys])
        ),
        # the DBS holds Pt, Ag, Pd slabs; Au and Cu are in no training or DBS file
        "binding_energy_drift_mean_abs_by_metal": {
            m: float(np.mean([change[k] for k in keys if k[0] == m])) for m in metals
        },
        "mae_on_Au_Cu_model_PBE": out["model"]["mae_test"],
        "mae_on_Au_Cu_7net-mf-0_PBE": out["7net-mf-0/PBE"]["mae_test"],
        "binding_energy_drift_mean_abs": float(np.mean(drift)),
        "binding_energy_drift_max_abs": float(np.max(drift)),
        "n_test": out["model"]["n_test"],
        "split": f"mu_X fitted on {' '.join(XK_FIT)}, MAE on {' '.join(XK_TEST)} (0.25 ML)",
    }


def evaluate(model: str, oc20_stride: int = 5) -> dict:
    work = Path(tempfile.mkdtemp(prefix="omni_ads_eval_"))
    try:
        folder = pt111_refs_folder(work / "hea")
        gas = DATA / "hea_gpaw_rpbe" / "gas"
        res = {
            "hea_heldout_slab": {
                f"{model}/gpaw_rpbe": hea_metrics(model, "gpaw_rpbe", folder, gas),
                "7net-mf-0/PBE": hea_metrics("7net-mf-0", "PBE", folder, gas),
            },
            "pure_metals_heldout": {
                f"{model}/gpaw_rpbe": pure_metal_metrics(model, "gpaw_rpbe"),
                "7net-mf-0/PBE": pure_metal_metrics("7net-mf-0", "PBE"),
            },
            "oc20_heldout": {
                f"{model}/oc20": oc20_metrics(model, "oc20", oc20_stride),
                "7net-0": oc20_metrics("7net-0", None, oc20_stride),
                "7net-mf-0/PBE": oc20_metrics("7net-mf-0", "PBE", oc20_stride),
            },
            "xu_kitchin_pbe": xu_kitchin_metrics(model, "PBE"),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res


VARIANTS = {
    "a_no_reg": {"regularization": {"weight": 0.0}, "dbs": False},
    "b_selective_reg": {"regularization": None, "dbs": False},
    "c_selective_reg_dbs": {"regularization": None, "dbs": True},
    # stronger penalties than the recipe's 1e-6, to find where (b) leaves (a)
    "b_selective_reg_1e-5": {"regularization": {"weight": 1e-5}, "dbs": False},
    "b_selective_reg_1e-4": {"regularization": {"weight": 1e-4}, "dbs": False},
}


def ablation(work: Path, variants: list[str], oc20_stride: int, out: Path | None,
             recipe_path: Path = ROOT / "recipes" / "omni-ads-0.yaml") -> dict:
    """Train and evaluate each variant of ``recipe_path``; with ``out``, every finished
    variant is written at once (a re-run skips those already there)."""
    recipe = yaml.safe_load(recipe_path.read_text())
    results = json.loads(out.read_text()) if out and out.exists() else {}
    for name in variants:
        if name in results:
            continue
        change = VARIANTS[name]
        cfg = json.loads(json.dumps(recipe))
        if change["regularization"] is not None:
            cfg["regularization"].update(change["regularization"])
        if not change["dbs"]:
            cfg["data"]["dbs"] = []
        cfg["output_dir"] = str(work / name)
        path = work / f"{name}.yaml"
        work.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg))
        subprocess.run(["omni-flows", "train", str(path), "--no-progress"], cwd=ROOT, check=True)
        results[name] = _strip(evaluate(str(work / name / "model.safetensors"), oc20_stride))
        if out:
            out.write_text(json.dumps(results, indent=1, default=float))
    return results


def _strip(obj):
    if isinstance(obj, dict):
        return {str(k): _strip(v) for k, v in obj.items() if k != "binding"}
    return obj


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["eval", "ablation"])
    p.add_argument("--model", default="omni-ads-0")
    p.add_argument("--oc20-stride", type=int, default=5)
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/omni_ads_ablation"))
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS)[:3])
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "omni-ads-0.yaml",
                   help="the recipe whose variants the ablation trains")
    a = p.parse_args()
    res = evaluate(a.model, a.oc20_stride) if a.what == "eval" else ablation(
        a.work_dir, a.variants, a.oc20_stride, a.json, a.recipe)
    text = json.dumps(_strip(res), indent=1, default=float)
    print(text)
    if a.json:
        a.json.write_text(text)


if __name__ == "__main__":
    main()
