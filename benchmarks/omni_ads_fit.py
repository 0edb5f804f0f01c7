"""Training fit and held-out figures of a model's GPAW RPBE task (the omni-ads-1 split).

    OMP_NUM_THREADS=1 python benchmarks/omni_ads_fit.py 7net-mf-0:PBE omni-ads-0:gpaw_rpbe \
        [--json benchmarks/results/omni_ads_fit.json] [--force-stride 1] [--oc20-stride 10]

For each ``model:task``, at the DFT geometries (single points), the adsorption energies
H*, O*, OH*, CO*, NO* against the task's OWN gas references, E(slab+X) - E(slab) - E_ref(X)
with E_ref(H) = H2/2, E_ref(O) = H2O - H2, E_ref(OH) = H2O - H2/2, E_ref(CO) = CO,
E_ref(NO) = NO computed by the model (the DFT side from the same molecules in
``hea_gpaw_rpbe/gas``), and O*/OH* relative to Pt(111) (the CHEAT Pt row, gas references
cancel), on the sets of ``recipes/omni_ads_1_data.py``:

- training: pure metals (9 metals x 5 adsorbates; the clean slab is the H row's slab without
  H at the energy CHEAT's ``e`` implies), HEA slab 0000 and quinary slabs 0000/0001 (last
  frames of their relaxation trajectories);
- held out, each apart: quinary slab 0002, HEA slab 0001, metals Au/Cu/Re.

MAE, mean error (model - DFT), Spearman rho and n per adsorbate and set, each pure metal's
errors, and the force MAE on the free atoms of the held-out trajectories (GPAW: quinary
0002 and HEA 0001, every ``--force-stride``-th frame; OC20: HELD_OUT_OC20 with the oc20 task
where the model has it) next to the error of predicting zero force.

``--pbe-check`` also compares the model's PBE and R2SCAN tasks with 7net-mf-0's on the Xu &
Kitchin 0.25 ML slabs (fcc site, 8 adsorbates) and clean slabs of Pt, Ag, Au, Pd, Cu: how
many energies and force arrays are bitwise equal, and the largest difference (a model
fine-tuned with frozen universal weights must give 7net-mf-0's numbers exactly).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from ase.db import connect
from ase.io import read

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
HEA = DATA / "hea_gpaw_rpbe"
sys.path.insert(0, str(ROOT / "recipes"))
from omni_ads_1_data import (  # noqa: E402
    HELD_OUT_HEA_SLAB,
    HELD_OUT_METALS,
    HELD_OUT_OC20,
    HELD_OUT_QUINARY_SLAB,
    QUINARY,
    clean_slab_energies,
    gas_references,
)

from omni_flows.accuracy.hea import GAS_REFERENCES, spearman  # noqa: E402

ADSORBATES = ("H", "O", "OH", "CO", "NO")
# hea_example trajectories: adsN -> adsorbate (the relaxed rows' adsId in its databases)
HEA_EXAMPLE_ADS = {"ads0": "O", "ads1": "O", "ads2": "H", "ads3": "H", "ads4": "OH", "ads5": "OH"}


def sites(folder_glob: str, slab_traj: Path, name_to_ads) -> list[tuple[str, str, Path, Path]]:
    """(site id, adsorbate, adsorbate trajectory, slab trajectory) of one alloy slab."""
    out = []
    for p in sorted(slab_traj.parent.glob(folder_glob)):
        if p == slab_traj:
            continue
        out.append((p.stem, name_to_ads(p.stem), p, slab_traj))
    return out


def alloy_sites(kind: str, slab: int):
    traj = HEA / ("hea_quinary" if kind == "quinary" else "hea_example") / "traj"
    if kind == "quinary":
        prefix = f"{QUINARY}_{slab:04d}"
        return sites(f"{prefix}_*.traj", traj / f"{prefix}_slab.traj",
                     lambda s: s.split("_")[-2])
    prefix = f"example_project_{slab:04d}"
    return sites(f"{prefix}_*.traj", traj / f"{prefix}_slab.traj",
                 lambda s: HEA_EXAMPLE_ADS[s.split("_")[-1]])


def summary(dft: dict, model: dict, ads_of: dict) -> dict:
    out = {}
    for ads in ADSORBATES:
        ids = [k for k in dft if ads_of[k] == ads]
        if not ids:
            continue
        x, y = np.array([dft[k] for k in ids]), np.array([model[k] for k in ids])
        rho = spearman(x, y)
        out[ads] = {"mae": float(np.abs(y - x).mean()), "mean_error": float((y - x).mean()),
                    "spearman": None if rho is None else float(rho), "n": len(ids)}
    return out


def force_errors(frames, results) -> tuple[np.ndarray, np.ndarray]:
    err, zero = [], []
    for atoms, r in zip(frames, results):
        free = np.ones(len(atoms), bool)
        for c in atoms.constraints:
            free[c.get_indices()] = False
        f = atoms.calc.results["forces"]
        err.append(np.abs(r["forces"][free] - f[free]).ravel())
        zero.append(np.abs(f[free]).ravel())
    return np.concatenate(err), np.concatenate(zero)


def evaluate(spec: str, force_stride: int, oc20_stride: int) -> dict:
    from omni_flows.model.inference import predict
    from omni_flows.workflows.relax import get_calculator

    name, _, task = spec.partition(":")
    task = task or None
    calc = get_calculator(name, task, "cpu")

    def run(structures, forces=False):
        return predict(structures, calc.model, task, stress=False)

    # gas references, DFT and model
    gas = {k: read(HEA / "gas" / f"{k}.traj", -1) for k in ("h2", "h2o", "co", "no")}
    g_model = dict(zip(gas, (r["energy"] for r in run(list(gas.values())))))
    g_dft = {k: a.get_potential_energy() for k, a in gas.items()}

    def ref(ads, g):
        return sum(c * g[m] for m, c in GAS_REFERENCES[ads].items())

    # pure metals
    slabs = clean_slab_energies(HEA / "pure_metals.db", gas_references(HEA / "gas"))
    metals = sorted(slabs)
    rows = list(connect(HEA / "pure_metals.db").select())
    e = [r["energy"] for r in run([r.toatoms() for r in rows] + [slabs[m][1] for m in metals])]
    slab_model = dict(zip(metals, e[len(rows):]))
    pure_dft, pure_model, pure_ads = {}, {}, {}
    for r, en in zip(rows, e):
        k = f"{r.element}/{r.ads}"
        pure_dft[k] = r.energy - slabs[r.element][0] - ref(r.ads, g_dft)
        pure_model[k] = en - slab_model[r.element] - ref(r.ads, g_model)
        pure_ads[k] = r.ads
    if max(abs(pure_dft[f"{r.element}/{r.ads}"] - r.e) for r in rows) > 1e-6:
        raise SystemExit("error: the gas files do not reproduce CHEAT's key e")
    pt = {a: (pure_dft[f"Pt/{a}"], pure_model[f"Pt/{a}"]) for a in ("O", "OH")}

    # alloy slabs: last frames
    alloy = {
        "quinary_train": [s for n in (0, 1, 2) if n != HELD_OUT_QUINARY_SLAB
                          for s in alloy_sites("quinary", n)],
        "quinary_heldout": alloy_sites("quinary", HELD_OUT_QUINARY_SLAB),
        "hea_example_train": alloy_sites("example", 0),
        "hea_example_heldout": alloy_sites("example", int(HELD_OUT_HEA_SLAB[-4:])),
    }
    paths = sorted({p for ss in alloy.values() for s in ss for p in s[2:]})
    last = {p: read(p, -1) for p in paths}
    e_last = dict(zip(paths, (r["energy"] for r in run([last[p] for p in paths]))))

    def alloy_energies(ss):
        dft, model, ads_of = {}, {}, {}
        for sid, ads, p, slab in ss:
            dft[sid] = (last[p].get_potential_energy() - last[slab].get_potential_energy()
                        - ref(ads, g_dft))
            model[sid] = e_last[p] - e_last[slab] - ref(ads, g_model)
            ads_of[sid] = ads
        return dft, model, ads_of

    sets = {}

    def add(label, dft, model, ads_of):
        vs_pt = {}
        for a in ("O", "OH"):
            ids = [k for k in dft if ads_of[k] == a and k != f"Pt/{a}"]
            if ids:
                x = np.array([dft[k] - pt[a][0] for k in ids])
                y = np.array([model[k] - pt[a][1] for k in ids])
                rho = spearman(x, y)
                vs_pt[a] = {"mae": float(np.abs(y - x).mean()), "mean_error": float((y - x).mean()),
                            "spearman": None if rho is None else float(rho), "n": len(ids)}
        sets[label] = {"vs_gas": summary(dft, model, ads_of), "vs_pt111": vs_pt}

    train_keys = [k for k in pure_dft if k.split("/")[0] not in HELD_OUT_METALS]
    held_keys = [k for k in pure_dft if k.split("/")[0] in HELD_OUT_METALS]
    for label, keys in (("pure_metals_train", train_keys), ("pure_metals_heldout", held_keys)):
        add(label, {k: pure_dft[k] for k in keys}, {k: pure_model[k] for k in keys}, pure_ads)
    for label, ss in alloy.items():
        add(label, *alloy_energies(ss))
    # all training rows together (the fit goal: MAE <= 0.05 eV)
    d_all, m_all, a_all = {}, {}, dict(pure_ads)
    for label in ("quinary_train", "hea_example_train"):
        d, m, a = alloy_energies(alloy[label])
        d_all |= d
        m_all |= m
        a_all |= a
    d_all |= {k: pure_dft[k] for k in train_keys}
    m_all |= {k: pure_model[k] for k in train_keys}
    add("all_training_rows", d_all, m_all, a_all)

    per_metal = {m: {a: round(pure_model[f"{m}/{a}"] - pure_dft[f"{m}/{a}"], 4)
                     for a in ADSORBATES} for m in metals}
    for m in metals:
        for a in ("O", "OH"):
            per_metal[m][f"{a}_vs_pt111"] = round(
                (pure_model[f"{m}/{a}"] - pt[a][1]) - (pure_dft[f"{m}/{a}"] - pt[a][0]), 4)

    # forces on free atoms of held-out trajectories
    forces = {}
    for label, ss in (("quinary_heldout", alloy["quinary_heldout"]),
                      ("hea_example_heldout", alloy["hea_example_heldout"])):
        trajs = sorted({p for s in ss for p in s[2:]})
        frames = [f for p in trajs for f in read(p, f"::{force_stride}")]
        err, zero = force_errors(frames, run(frames))
        forces[label] = {"force_mae": float(err.mean()), "zero_force_baseline": float(zero.mean()),
                         "n_frames": len(frames)}
    oc20_task = "oc20" if task and "oc20" in (calc.model.config.tasks or []) else task
    from omni_flows.accuracy.oc20 import run_oc20

    m, _ = run_oc20(name, oc20_task, trajectories=list(HELD_OUT_OC20), stride=oc20_stride,
                    device="cpu")
    forces["oc20_heldout"] = {"task": oc20_task, "force_mae": m["force_mae"],
                              "zero_force_baseline": m["force_mae_zero_force_baseline"],
                              "n_frames": m["n_frames"]}
    return {
        "pt111_vs_gas_error": {a: float(pt[a][1] - pt[a][0]) for a in ("O", "OH")},
        "gas_reference_error": {a: float(ref(a, g_model) - ref(a, g_dft)) for a in ADSORBATES},
        "sets": sets,
        "pure_metal_errors": per_metal,
        "forces": forces,
    }


def pbe_unchanged(name: str) -> dict:
    """PBE and R2SCAN of ``name`` against 7net-mf-0 on Xu & Kitchin slabs, bit for bit."""
    from ase import Atoms

    from omni_flows.model.inference import predict
    from omni_flows.model.pretrained import load_model

    xk = json.loads((DATA / "xu_kitchin_2014" / "structures.json").read_text())
    slabs = [
        Atoms(e["symbols"], positions=e["pos"], cell=e["cell"], pbc=True)
        for metal in xk.values()
        for ads, sites in metal.items()
        for coverage, e in sites["fcc"].items()
        if coverage == "0.25" or (coverage == "0.0" and ads == "O")
    ]
    model, ref = load_model(name), load_model("7net-mf-0")
    out = {"n": len(slabs)}
    for task in ("PBE", "R2SCAN"):
        a, b = predict(slabs, model, task, stress=False), predict(slabs, ref, task, stress=False)
        out[task] = {
            "energy_bitwise": sum(x["energy"] == y["energy"] for x, y in zip(a, b)),
            "forces_bitwise": sum(np.array_equal(x["forces"], y["forces"]) for x, y in zip(a, b)),
            "max_energy_difference": max(abs(x["energy"] - y["energy"]) for x, y in zip(a, b)),
        }
    return out


def table(results: dict) -> str:
    lines = []
    for spec, r in results.items():
        lines.append(f"== {spec}   Pt(111) O* {r['pt111_vs_gas_error']['O']:+.3f}  "
                     f"OH* {r['pt111_vs_gas_error']['OH']:+.3f} eV vs its GPAW RPBE numbers "
                     "(vs H2O/H2)")
        lines.append(f"{'set':22s} {'ref':6s} {'ads':3s} {'MAE':>6s} {'ME':>7s} {'rho':>5s} {'n':>3s}")
        for label, s in r["sets"].items():
            for ref, block in (("gas", s["vs_gas"]), ("Pt111", s["vs_pt111"])):
                for ads, v in block.items():
                    rho = "" if v["spearman"] is None else f"{v['spearman']:.2f}"
                    lines.append(f"{label:22s} {ref:6s} {ads:3s} {v['mae']:6.3f} "
                                 f"{v['mean_error']:+7.3f} {rho:>5s} {v['n']:3d}")
        lines.append("per metal, model - DFT (eV): " + "  ".join(ADSORBATES) + "  O/Pt OH/Pt"
                     + "   (* held out)")
        for m, v in r["pure_metal_errors"].items():
            star = "*" if m in HELD_OUT_METALS else " "
            lines.append(f"  {m}{star} " + " ".join(f"{v[a]:+6.2f}" for a in ADSORBATES)
                         + f" {v['O_vs_pt111']:+6.2f} {v['OH_vs_pt111']:+6.2f}")
        for label, f in r["forces"].items():
            lines.append(f"forces {label:20s} MAE {f['force_mae']:.3f} eV/A  "
                         f"(zero force {f['zero_force_baseline']:.3f}; {f['n_frames']} frames)")
        for task, c in r.get("pbe_check", {}).items():
            if task != "n":
                lines.append(f"{task} vs 7net-mf-0 on {r['pbe_check']['n']} Xu & Kitchin slabs: "
                             f"energies bitwise {c['energy_bitwise']}, forces bitwise "
                             f"{c['forces_bitwise']}, max |dE| {c['max_energy_difference']:.2e} eV")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="model:task, e.g. omni-ads-0:gpaw_rpbe")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--force-stride", type=int, default=1)
    p.add_argument("--oc20-stride", type=int, default=10)
    p.add_argument("--pbe-check", action="store_true",
                   help="PBE and R2SCAN vs 7net-mf-0 on Xu & Kitchin slabs, bit for bit")
    a = p.parse_args()
    if a.force_stride < 1 or a.oc20_stride < 1:
        sys.exit("error: --force-stride and --oc20-stride must be at least 1")
    if not HEA.is_dir():
        sys.exit(f"error: {HEA} does not exist (the shared CHEAT data)")
    results = {s: evaluate(s, a.force_stride, a.oc20_stride) for s in a.models}
    if a.pbe_check:
        for s in a.models:
            if s.partition(":")[0] != "7net-mf-0":
                results[s]["pbe_check"] = pbe_unchanged(s.partition(":")[0])
    print(table(results))
    if a.json:
        a.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
