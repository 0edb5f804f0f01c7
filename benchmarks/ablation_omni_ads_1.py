"""omni-ads-1's ablation: variants of recipes/omni-ads-1.yaml, trained and measured.

    OMP_NUM_THREADS=1 python benchmarks/ablation_omni_ads_1.py fit [--variants NAME ...]
    OMP_NUM_THREADS=1 python benchmarks/ablation_omni_ads_1.py full --variants forces_off r8 \
        [--recipe FILE]
    python benchmarks/ablation_omni_ads_1.py table NAME=FIT.json ...   # one row per model

``fit`` (the diagnostic of the recipe's header, about 3 CPU-minutes a variant): the recipe's
45 training pure-metal rows, their 9 clean slabs and the gas molecules, energies only, 20
epochs (700 steps of 4), then the training fit of each variant: adsorption energies H*, O*,
OH*, CO*, NO* against the task's own gas references and O*/OH* relative to Pt(111), MAE over
the training metals (single points at the DFT geometries). It resolves what the loss, the
learning rate and the adapters' rank do to the fit; it says nothing of transfer.

``full``: the whole recipe with one change (FULL_VARIANTS: ``forces_off``, every force weight
0, so the run is energy-only and ~8x cheaper a step; or the adapters' rank, or selective
regularization off, as in ``fit``), into train_out/ablation/<variant>; measure it with
``benchmarks/omni_ads_fit.py <dir>/model.safetensors:gpaw_rpbe``.
Results: printed, and appended to benchmarks/results/ablation_omni_ads_1.txt.

``table``: the card's ablation table (markdown) from ``omni_ads_fit.py --json`` files, one
row per model (a file's first model): training fit, held-out slabs and metals, Pt(111),
held-out forces.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import yaml
from ase.db import connect
from ase.io import read

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
HEA = ROOT.parent / "shared" / "data" / "hea_gpaw_rpbe"
sys.path.insert(0, str(ROOT / "recipes"))
from omni_ads_1_data import HELD_OUT_METALS, clean_slab_energies, gas_references  # noqa: E402

RECIPE = ROOT / "recipes" / "omni-ads-1.yaml"
GAS = {"H": {"h2": .5}, "O": {"h2o": 1, "h2": -1}, "OH": {"h2o": 1, "h2": -.5},
       "CO": {"co": 1}, "NO": {"no": 1}}

# variant -> (loss, optim, model) overrides of the recipe
FIT_VARIANTS = {
    "per_atom_lr1e-3_r8": dict(loss={"energy_per_atom": True, "energy_weight": 50.0},
                               optim={"lr": 1e-3}, model={"adapter_rank": 8}),
    "total_lr1e-3_r8": dict(optim={"lr": 1e-3}, model={"adapter_rank": 8}),
    "adapters_off": dict(model={"adapter_rank": 0}),
    "r8": dict(model={"adapter_rank": 8}),
    "r32": {},
    "full_rank": dict(model={"adapter_rank": 4096}),  # capped per irrep at min(m_in, m_out)
    "r32_no_selective_reg": dict(regularization={"weight": 0.0}),
    "r8_lr1e-2": dict(optim={"lr": 1e-2}, model={"adapter_rank": 8}),
}


def fit_config(name: str, over: dict, out: Path, recipe: Path = RECIPE) -> dict:
    cfg = yaml.safe_load(recipe.read_text())
    keep = ("pure_metals", "clean_slabs", "/gas/")
    cfg["data"]["train"] = [dict(d, force_weight=0.0) for d in cfg["data"]["train"]
                            if any(k in d["path"] for k in keep)]
    cfg["data"]["valid"] = []
    cfg["data"]["cache_dir"] = "graph_cache/ablation-fit"
    cfg["model"]["append_tasks"] = [{"name": "gpaw_rpbe", "copy_from": "PBE"}]
    cfg["regularization"]["tasks"] = ["gpaw_rpbe"]
    for section, values in over.items():
        cfg[section].update(copy.deepcopy(values))
    cfg.update(epochs=20, checkpoint_every=1000, output_dir=str(out / name))
    return cfg


FULL_VARIANTS = ("forces_off", "adapters_off", "r8", "full_rank", "r32_no_selective_reg")


def full_config(name: str, out: Path, recipe: Path = RECIPE) -> dict:
    """The whole recipe with one change: its forces off, or one of FIT_VARIANTS' model or
    regularization overrides (the same step count, data and seed as the recipe)."""
    if name not in FULL_VARIANTS:
        raise SystemExit(f"unknown full variant {name!r}: use one of {', '.join(FULL_VARIANTS)}")
    cfg = yaml.safe_load(recipe.read_text())
    if name == "forces_off":
        for d in cfg["data"]["train"]:
            d["force_weight"] = 0.0
    for section, values in FIT_VARIANTS.get(name, {}).items():
        cfg[section].update(copy.deepcopy(values))
    cfg["output_dir"] = str(out / name)
    return cfg


def training_fit(checkpoint: Path) -> dict[str, float]:
    """MAE of the training pure-metal rows' E_ads (eV), per adsorbate and vs Pt(111)."""
    from omni_flows.model import load_model, predict

    model = load_model(str(checkpoint))

    def energies(structures):
        return [r["energy"] for r in predict(structures, model, "gpaw_rpbe", stress=False)]

    gas = {k: read(HEA / "gas" / f"{k}.traj", -1) for k in ("h2", "h2o", "co", "no")}
    g_model = dict(zip(gas, energies(list(gas.values()))))
    g_dft = {k: a.get_potential_energy() for k, a in gas.items()}
    slabs = clean_slab_energies(HEA / "pure_metals.db", gas_references(HEA / "gas"))
    metals = sorted(slabs)
    rows = list(connect(HEA / "pure_metals.db").select())
    e = energies([r.toatoms() for r in rows] + [slabs[m][1] for m in metals])
    slab_model = dict(zip(metals, e[len(rows):]))
    err = {}
    for r, energy in zip(rows, e):
        ref_dft = sum(c * g_dft[m] for m, c in GAS[r.ads].items())
        ref_model = sum(c * g_model[m] for m, c in GAS[r.ads].items())
        err[r.element, r.ads] = ((energy - slab_model[r.element] - ref_model)
                                 - (r.energy - slabs[r.element][0] - ref_dft))
    train = [k for k in err if k[0] not in HELD_OUT_METALS]
    out = {a: float(np.mean([abs(err[k]) for k in train if k[1] == a])) for a in GAS}
    for a in ("O", "OH"):
        out[f"{a}/Pt111"] = float(np.mean([abs(err[k] - err["Pt", a]) for k in train
                                           if k[1] == a and k[0] != "Pt"]))
    return out


TABLE_HEAD = ("| variant | training O* / OH* rel. Pt(111) | held-out quinary 0002 O* MAE / rho "
              "| OH* MAE / rho | HEA 0001 O* / OH* | Au/Cu/Re O* vs gas | Pt(111) O* / OH* vs GPAW "
              "| held-out forces quinary / HEA / OC20, eV/A |")


def table_row(name: str, fit: dict) -> str:
    """One markdown row of the ablation table from an omni_ads_fit.py JSON entry."""
    sets, forces = fit["sets"], fit["forces"]

    def rel(group: str, ads: str, key: str = "mae") -> float:
        return sets[group]["vs_pt111"][ads][key]

    cells = [
        f"{rel('all_training_rows', 'O'):.3f} / {rel('all_training_rows', 'OH'):.3f}",
        f"{rel('quinary_heldout', 'O'):.3f} / {rel('quinary_heldout', 'O', 'spearman'):.2f}",
        f"{rel('quinary_heldout', 'OH'):.3f} / {rel('quinary_heldout', 'OH', 'spearman'):.2f}",
        f"{rel('hea_example_heldout', 'O'):.3f} / {rel('hea_example_heldout', 'OH'):.3f}",
        f"{sets['pure_metals_heldout']['vs_gas']['O']['mae']:.3f}",
        "{O:+.3f} / {OH:+.3f}".format(**fit["pt111_vs_gas_error"]),
        " / ".join(f"{forces[k]['force_mae']:.3f}"
                   for k in ("quinary_heldout", "hea_example_heldout", "oc20_heldout")),
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    if sys.argv[1:2] == ["table"]:
        print(TABLE_HEAD + "\n|" + "---|" * 8)
        for arg in sys.argv[2:]:
            name, path = arg.split("=", 1)
            fit = next(iter(json.loads(Path(path).read_text()).values()))  # its first model
            print(table_row(name, fit))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scale", choices=("fit", "full"))
    p.add_argument("--variants", nargs="+", default=None)
    p.add_argument("--out", type=Path, default=ROOT / "train_out" / "ablation")
    p.add_argument("--recipe", type=Path, default=RECIPE,
                   help="the recipe varied (default: %(default)s)")
    args = p.parse_args()
    names = args.variants or (list(FIT_VARIANTS) if args.scale == "fit" else ["forces_off"])
    results = ROOT / "benchmarks" / "results" / "ablation_omni_ads_1.txt"
    for name in names:
        cfg = (fit_config(name, FIT_VARIANTS[name], args.out, args.recipe) if args.scale == "fit"
               else full_config(name, args.out, args.recipe))
        path = args.out / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        subprocess.run(["omni-flows", "train", str(path), "--no-progress"], check=True, cwd=ROOT)
        if args.scale == "fit":
            fit = training_fit(Path(cfg["output_dir"]) / "model.safetensors")
            line = f"fit  {name:24s} " + "  ".join(f"{k} {v:.3f}" for k, v in fit.items())
            print(line, flush=True)
            with results.open("a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
