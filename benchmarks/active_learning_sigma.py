"""What is a DFT point worth in the fine-tune loop: chosen by committee sigma, or at random?

    OMP_NUM_THREADS=1 python benchmarks/active_learning_sigma.py [--k 6] [--steps 150]
        [--random-seeds 0 1 2] [--json benchmarks/results/active_learning_sigma.json]

Our own GPAW RPBE data (CHEAT layout, ../shared/data/hea_gpaw_rpbe), split as omni-ads-1's
recipe splits it (recipes/omni_ads_1_data.py):

1. The model: omni-ads-0 with rank-4 adapters on every task (B = 0: its numbers unchanged)
   and a committee of 4 on gpaw_rpbe, trained as benchmarks/train_committee.py does (30
   steps, bootstrap resamples of omni-ads-0's own gpaw_rpbe data).
2. Pool (DFT labels hidden until a point is chosen): the O*/OH* final frames of quinary slabs
   0000-0001 (36), never trained on by omni-ads-0. Held-out test: quinary slab 0002 (18),
   omni-ads-1's held-out slab. E_ads at the DFT final geometries with the model's own H2,
   H2O references: O* = H2O - H2, OH* = H2O - H2/2.
3. K points by the largest sigma of the members' own E_ads, and K at random (each seed).
4. Per choice the same fine-tune of the gpaw_rpbe task with omni_flows.model.train
   (Trainer): energy only, universal weights frozen, total energies (not per atom: an
   adsorption energy is a difference of totals), the K chosen structures and both pool
   slabs' clean final frames as training data, omni-ads-0's own data as replay (half of
   every batch, dbs_fraction 0.5), batch 4, ``--steps`` steps, lr 1e-3, no EMA, seed 0.
5. Held-out MAE of E_ads before and after each, and per DFT point (MAE drop / K).

An energy-only step costs ~0.26 s of CPU (recipes/omni-ads-1.yaml): the default run is
about 2 min of committee training plus 4 x 150 steps.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.io import read, write

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from train_committee import GAS, HEA, TASK, training_data  # noqa: E402  (one committee recipe)

from omni_flows.model import load_model, predict, save_checkpoint  # noqa: E402
from omni_flows.model.committee import spread  # noqa: E402
from omni_flows.model.train.committee import train_committee  # noqa: E402

QUINARY = HEA / "hea_quinary" / "traj"
POOL_SLABS, TEST_SLAB = (0, 1), 2  # recipes/omni_ads_1_data.py: HELD_OUT_QUINARY_SLAB = 2


def points(slab: int) -> list[tuple[str, Path, Path]]:
    """(adsorbate, adsorbate+slab trajectory, clean slab trajectory) of one quinary slab."""
    clean = QUINARY / f"agirpdptru_{slab:04d}_slab.traj"
    return [(ads, p, clean) for ads, pattern in (("O", "fcc_O"), ("OH", "ontop_OH"))
            for p in sorted(QUINARY.glob(f"agirpdptru_{slab:04d}_{pattern}_*.traj"))]


def adsorption_energies(model, rows, committee: bool = False):
    """DFT and model E_ads of ``rows`` at the DFT final geometries (and the members' (n, K))."""
    gas = {g: read(HEA / "gas" / f"{g}.traj", -1) for g in ("h2", "h2o")}
    files = sorted({f for _, a, s in rows for f in (a, s)})
    structures = [read(f, -1) for f in files] + list(gas.values())
    keys = files + list(gas)
    results = predict(structures, model, task=TASK, committee=committee, stress=False)
    dft = {k: a.get_potential_energy() for k, a in zip(keys, structures)}
    main = {k: r["energy"] for k, r in zip(keys, results)}

    def e_ads(table, ads, a, s):
        return table[a] - table[s] - sum(n * table[g] for g, n in GAS[ads].items())

    out = [np.array([e_ads(dft, *r) for r in rows]), np.array([e_ads(main, *r) for r in rows])]
    if committee:
        members = {k: np.array(r["committee_energies"]) for k, r in zip(keys, results)}
        out.append(np.array([e_ads(members, *r) for r in rows]))
    return out


def fine_tune(checkpoint: Path, chosen: list[Path], replay: Path, steps: int, work: Path):
    """The gpaw_rpbe task fine-tuned on the chosen final frames (see the module)."""
    from omni_flows.model.train.config import TrainConfig
    from omni_flows.model.train.trainer import Trainer

    work.mkdir(parents=True, exist_ok=True)
    data = work / "chosen.extxyz"
    write(data, [read(p, -1) for p in chosen])
    cfg = TrainConfig.from_dict({
        "data": {"train": [{"path": str(data), "task": TASK, "force_weight": 0.0}],
                 "dbs": [{"path": str(replay), "task": TASK, "force_weight": 0.0}],
                 "dbs_fraction": 0.5, "batch_size": 4, "cache_dir": str(work / "cache"),
                 "group_energy_only": True},
        "model": {"checkpoint": str(checkpoint), "freeze_universal": True},
        "loss": {"energy_per_atom": False, "force_weight": 0.0, "stress_weight": 0.0},
        "optim": {"lr": 1e-3, "ema_decay": None},
        "epochs": 10_000, "max_steps": steps, "seed": 0, "device": "cpu",
        "output_dir": str(work / "out"), "progress": False, "checkpoint_every": 10_000,
    })
    trainer = Trainer(cfg)
    trainer.fit()
    return trainer.model.eval()


def mae(model, rows) -> dict[str, float]:
    dft, pred = adsorption_energies(model, rows)
    err = np.abs(pred - dft)
    ads = np.array([r[0] for r in rows])
    return {"all": float(err.mean()), **{a: float(err[ads == a].mean()) for a in sorted(set(ads))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--committee-steps", type=int, default=30)
    parser.add_argument("--random-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results"
                                              / "active_learning_sigma.json"))
    args = parser.parse_args()
    start = time.perf_counter()

    model = load_model("omni-ads-0")
    model.add_adapters(4)
    replay_data = training_data()
    train_committee(model, TASK, replay_data, size=4, steps=args.committee_steps, lr=2e-3)
    pool = [r for s in POOL_SLABS for r in points(s)]
    test = points(TEST_SLAB)
    _, _, members = adsorption_energies(model, pool, committee=True)
    sigma = spread(members)  # raw: the ranking needs no scale

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plain = copy.deepcopy(model)
        del plain.config.committees[TASK]  # the fine-tuned task's committee would be stale
        checkpoint = tmp / "start.safetensors"
        save_checkpoint(plain, checkpoint)
        replay = tmp / "replay.extxyz"
        write(replay, replay_data)
        slabs = sorted({r[2] for r in pool})
        choices = {"sigma": list(np.argsort(-sigma)[:args.k])}
        for seed in args.random_seeds:
            choices[f"random_seed{seed}"] = list(
                np.random.default_rng(seed).choice(len(pool), args.k, replace=False))
        report = {"k": args.k, "steps": args.steps, "pool": len(pool), "test": len(test),
                  "before": mae(model, test), "arms": {}}
        for name, picked in choices.items():
            tuned = fine_tune(checkpoint, [pool[i][1] for i in picked] + slabs, replay,
                              args.steps, tmp / name)
            after = mae(tuned, test)
            report["arms"][name] = {
                "picked": [f"{pool[i][0]} {pool[i][1].stem}" for i in picked],
                "picked_sigma_mean_meV": float(1000 * sigma[picked].mean()),
                "mae_after": after,
                "mae_drop_per_point": (report["before"]["all"] - after["all"]) / args.k}
            print(name, json.dumps(report["arms"][name]), flush=True)
    randoms = [a["mae_after"]["all"] for n, a in report["arms"].items() if n.startswith("random")]
    report["random_mean_mae_after"] = float(np.mean(randoms))
    report["seconds"] = time.perf_counter() - start
    print(json.dumps(report, indent=1))
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
