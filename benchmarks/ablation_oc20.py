"""Ablation: fine-tune 7net-mf-0 with a new task "oc20" (RPBE) copied from PBE, three ways.

(a) no regularization, (b) selective regularization of the interaction blocks'
task weights, (c) (b) plus a domain-bridging set (DBS) of bulk metals and clean
Xu & Kitchin fcc(111) slabs. The DBS has no DFT labels here: it is labelled by the
pretrained model's own PBE task (the reference task), and the table says so.

Measured on whole OC20 trajectories held out from training: force MAE on free
atoms (next to the zero-force baseline) and the MAE of energies relative to each
trajectory's first frame. Measured on the PBE task, before and after: the change
of its energies and forces on rattled bulk metals (not the DBS cells) and of its
energies and binding energies E(slab+X) - E(slab) on the Xu & Kitchin 0.25-ML
adsorbate slabs (not in the DBS), plus the binding-energy MAE against the
PBE DFT values after fitting one reference per adsorbate.

    python benchmarks/ablation_oc20.py                 # reduced CPU run (a few minutes)
    python benchmarks/ablation_oc20.py --full          # all trajectories, longer training (GPU)
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
from ase.io import read, write
from omni_flows.model import load_model
from omni_flows.model.graph import build_graph
from omni_flows.model.train import TrainConfig, Trainer

warnings.filterwarnings("ignore")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BULK_METALS = {
    "Pt": "fcc",
    "Pd": "fcc",
    "Au": "fcc",
    "Ag": "fcc",
    "Cu": "fcc",
    "Ni": "fcc",
    "Rh": "fcc",
    "Ir": "fcc",
    "Al": "fcc",
    "Fe": "bcc",
    "Mo": "bcc",
    "W": "bcc",
    "Ru": "hcp",
    "Os": "hcp",
}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/omni_flows_ablation_oc20"))
    p.add_argument("--model", default="7net-mf-0")
    p.add_argument(
        "--full", action="store_true", help="all trajectories and longer training (use a GPU)"
    )
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument(
        "--reg-weight", type=float, default=1e-4, help="lambda of the selective L2 penalty"
    )
    p.add_argument("--dbs-fraction", type=float, default=None)
    p.add_argument("--max-atoms", type=int, default=None, help="only trajectories up to this size")
    p.add_argument("--every", type=int, default=None, help="keep every n-th frame of a trajectory")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    a = p.parse_args()
    full = a.full
    a.steps = a.steps or (3000 if full else 25)
    a.dbs_fraction = a.dbs_fraction if a.dbs_fraction is not None else (0.001 if full else 0.1)
    a.max_atoms = a.max_atoms or (1000 if full else 60)
    a.every = a.every or (1 if full else 10)
    return a


def split_trajectories(folder: Path, max_atoms: int) -> tuple[list[Path], list[Path]]:
    """Whole trajectories: every 4th (by name) is held out."""
    files = [f for f in sorted(folder.glob("*.traj")) if len(read(f, 0)) <= max_atoms]
    test = files[1::4]
    return [f for f in files if f not in test], test


def xu_kitchin(folder: Path) -> tuple[list[Atoms], list[tuple[Atoms, Atoms, str, float]]]:
    """Clean slabs, and (slab+X, clean slab, adsorbate, DFT E_ads) at 0.25 ML."""
    structures = json.loads((folder / "structures.json").read_text())
    energies = json.loads((folder / "energies.json").read_text())

    def atoms(d):
        return Atoms(d["symbols"], positions=d["pos"], cell=d["cell"], pbc=True)

    clean, pairs = [], []
    for metal, by_ads in structures.items():
        slab = atoms(next(iter(by_ads.values()))["fcc"]["0.0"])
        clean.append(slab)
        for ads, by_site in by_ads.items():
            for site, by_cov in by_site.items():
                d, e = by_cov.get("0.25"), energies[metal][ads][site].get("0.25")
                if isinstance(d, dict) and isinstance(e, (int, float)):
                    pairs.append((atoms(d), slab, ads, float(e)))
    return clean, pairs


def bulk_cells(seed: int) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    out = []
    for el, kind in BULK_METALS.items():
        a = bulk(el, kind) * ((2, 2, 2) if kind != "hcp" else (2, 2, 1))
        a.set_cell(a.cell * (1 + 0.02 * rng.standard_normal()), scale_atoms=True)
        a.rattle(0.05, seed=int(rng.integers(1 << 30)))
        out.append(a)
    return out


def predict(
    model, structures: list[Atoms], task: str, stress: bool = False, batch: int = 8
) -> list[dict]:
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(structures), batch):
        chunk = structures[s : s + batch]
        graph = build_graph(
            chunk, model.config.species, model.config.cutoff, model.task_index(task), dtype
        ).to(device)
        res = model(graph, compute_forces=True, compute_stress=stress)
        ends = np.cumsum([len(a) for a in chunk])
        forces = np.split(res["forces"].detach().cpu().double().numpy(), ends[:-1])
        for k in range(len(chunk)):
            row = {"energy": float(res["energy"][k]), "forces": forces[k]}
            if stress:
                row["stress"] = res["stress"][k].detach().cpu().double().numpy()
            out.append(row)
    return out


def label_with_reference(model, structures: list[Atoms], task: str, stress: bool) -> list[Atoms]:
    """DBS labels from the pretrained model's reference task (no DFT at that level here)."""
    labelled = []
    for atoms, p in zip(structures, predict(model, structures, task, stress)):
        atoms = atoms.copy()
        res = {"energy": p["energy"], "forces": p["forces"]}
        if stress:
            s = p["stress"]
            res["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        atoms.calc = SinglePointCalculator(atoms, **res)
        labelled.append(atoms)
    return labelled


def oc20_metrics(model, trajs: list[Path], every: int) -> dict:
    """Held-out OC20: force MAE on free atoms, zero-force baseline, relative-energy MAE."""
    f_err, f_zero, e_rel = [], [], []
    for path in trajs:
        frames = read(path, f"::{every}")
        pred = predict(model, frames, "oc20")
        ref_e = np.array([a.calc.results["energy"] for a in frames])
        pred_e = np.array([p["energy"] for p in pred])
        e_rel.extend(np.abs((pred_e - pred_e[0]) - (ref_e - ref_e[0]))[1:])
        for atoms, p in zip(frames, pred):
            free = np.ones(len(atoms), bool)
            for c in atoms.constraints:
                if isinstance(c, FixAtoms):
                    free[c.index] = False
            ref_f = atoms.calc.results["forces"][free]
            f_err.extend(np.abs(p["forces"][free] - ref_f).ravel())
            f_zero.extend(np.abs(ref_f).ravel())
    return {
        "force_mae": 1000 * np.mean(f_err),
        "zero_force_mae": 1000 * np.mean(f_zero),
        "rel_energy_mae": 1000 * np.mean(e_rel),
    }


def pbe_snapshot(model, bulks, pairs) -> dict:
    bulk_pred = predict(model, bulks, "PBE")
    ads = predict(model, [p[0] for p in pairs], "PBE")
    slabs = list({id(p[1]): p[1] for p in pairs}.values())
    clean_e = {id(s): r["energy"] for s, r in zip(slabs, predict(model, slabs, "PBE"))}
    binding = np.array([a["energy"] - clean_e[id(p[1])] for a, p in zip(ads, pairs)])
    return {
        "bulk_e": np.array([r["energy"] / len(a) for r, a in zip(bulk_pred, bulks)]),
        "bulk_f": np.concatenate([r["forces"].ravel() for r in bulk_pred]),
        "xk_e": np.array([a["energy"] / len(p[0]) for a, p in zip(ads, pairs)]),
        "xk_bind": binding,
    }


def xk_dft_mae(snapshot, pairs) -> float:
    """Binding-energy MAE vs PBE DFT E_ads after one fitted reference per adsorbate (meV)."""
    names = [p[2] for p in pairs]
    diff = snapshot["xk_bind"] - np.array([p[3] for p in pairs])
    for ads in set(names):
        idx = [k for k, n in enumerate(names) if n == ads]
        diff[idx] -= diff[idx].mean()
    return 1000 * float(np.mean(np.abs(diff)))


def drift(before: dict, after: dict) -> dict:
    return {k: 1000 * float(np.mean(np.abs(after[k] - before[k]))) for k in before}


def main() -> None:
    a = parse()
    torch.set_num_threads(a.threads)
    oc20, xk = a.data_dir / "oc20_relaxations", a.data_dir / "xu_kitchin_2014"
    if not oc20.is_dir() or not xk.is_dir():
        raise SystemExit(f"needs {oc20} and {xk} (see the shared data README); pass --data-dir")
    work = a.work_dir
    shutil.rmtree(work / "runs", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    train, test = split_trajectories(oc20, a.max_atoms)
    print(
        f"OC20 (RPBE): train on {len(train)} trajectories, hold out {len(test)} whole trajectories "
        f"({', '.join(f.stem for f in test)}); every {a.every}th frame; <= {a.max_atoms} atoms"
    )

    base = load_model(a.model, device="cpu", dtype=torch.float32)
    clean, pairs = xu_kitchin(xk)
    dbs_bulk = label_with_reference(base, bulk_cells(seed=0), "PBE", stress=True)
    dbs_slabs = label_with_reference(base, clean, "PBE", stress=False)
    write(work / "dbs_bulk.extxyz", dbs_bulk)
    write(work / "dbs_slabs.extxyz", dbs_slabs)
    eval_bulk = bulk_cells(seed=1)
    before = pbe_snapshot(base, eval_bulk, pairs)
    rows = {
        "(0) pretrained, PBE task on OC20": {
            **oc20_metrics(_as_oc20(base), test, a.every),
            **{k: 0.0 for k in before},
            "xk_dft": xk_dft_mae(before, pairs),
        }
    }
    variants = {
        "(a) no regularization": (0.0, False),
        "(b) selective regularization": (a.reg_weight, False),
        "(c) selective reg. + DBS": (a.reg_weight, True),
    }
    for name, (reg, with_dbs) in variants.items():
        cfg = {
            "data": {
                "train": [{"path": str(f), "task": "oc20", "every": a.every} for f in train],
                "dbs": (
                    [
                        {"path": str(work / "dbs_bulk.extxyz"), "task": "PBE"},
                        {"path": str(work / "dbs_slabs.extxyz"), "task": "PBE"},
                    ]
                    if with_dbs
                    else []
                ),
                "dbs_fraction": a.dbs_fraction,
                "batch_size": a.batch_size,
                "cache_dir": str(work / "cache"),
            },
            "model": {
                "checkpoint": a.model,
                "append_tasks": [{"name": "oc20", "copy_from": "PBE"}],
                "use_statistics": True,
            },
            "regularization": {"weight": reg},
            "optim": {"lr": a.lr, "scheduler": "cosine", "warmup_fraction": 0.1, "ema_decay": 0.99},
            "loss": {"stress_weight": 0.01},
            "epochs": 1000,
            "max_steps": a.steps,
            "device": a.device,
            "output_dir": str(work / "runs" / name[:3].strip("()")),
            "progress": False,
        }
        t = time.time()
        trainer = Trainer(TrainConfig.from_dict(cfg))
        trainer.fit()
        with trainer.ema.applied() as model:
            model.eval()
            after = pbe_snapshot(model, eval_bulk, pairs)
            rows[name] = {
                **oc20_metrics(model, test, a.every),
                **drift(before, after),
                "xk_dft": xk_dft_mae(after, pairs),
            }
        print(f"{name}: {a.steps} steps in {time.time() - t:.0f} s", flush=True)
    print_table(rows, a)
    (work / "ablation.json").write_text(json.dumps(rows, indent=1))
    print(f"total {time.time() - t0:.0f} s; results in {work / 'ablation.json'}")


def _as_oc20(model):
    """The pretrained model with "oc20" appended as a copy of PBE: the zero-step baseline
    (modifies ``model``; call it last)."""
    model.append_task("oc20", copy_from="PBE")
    return model


def print_table(rows: dict, a) -> None:
    cols = [
        ("force_mae", "OC20 F MAE free"),
        ("zero_force_mae", "zero-F base"),
        ("rel_energy_mae", "OC20 dE_rel MAE"),
        ("bulk_e", "PBE bulk dE/atom"),
        ("bulk_f", "PBE bulk dF"),
        ("xk_e", "PBE XK dE/atom"),
        ("xk_bind", "PBE XK dE_bind"),
        ("xk_dft", "PBE XK E_bind vs DFT"),
    ]
    units = ["meV/A", "meV/A", "meV", "meV", "meV/A", "meV", "meV", "meV"]
    print()
    print(
        f"held-out OC20 (RPBE) and PBE-task drift; {a.steps} steps of batch {a.batch_size}, lr {a.lr}, "
        f"lambda {a.reg_weight}, DBS fraction {a.dbs_fraction}"
    )
    print(f"{'variant':34s}" + "".join(f"{c[1]:>21s}" for c in cols))
    print(f"{'':34s}" + "".join(f"{'(' + u + ')':>21s}" for u in units))
    for name, r in rows.items():
        print(f"{name:34s}" + "".join(f"{r[c[0]]:21.1f}" for c in cols))
    print(
        "DBS: bulk metals + clean Xu & Kitchin slabs, labelled by the pretrained model's PBE task "
        "(no DFT labels at the reference level); drift columns = mean |after - before| of the PBE "
        "task on different rattled bulk cells and on the 0.25-ML Xu & Kitchin adsorbate slabs."
    )


if __name__ == "__main__":
    main()
