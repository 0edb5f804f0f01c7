"""Training throughput on CPU: this tree's trainer vs an earlier commit's (and sevenn's).

The fine-tuning case of ``omni-ads-0``: ``7net-mf-0`` with an appended task
``gpaw_rpbe`` copied from PBE, trained on the CHEAT GPAW relaxation frames of
an Ag-Ir-Pd-Pt-Ru slab (46-47 atoms), energies and forces, batch 4, Adam, EMA,
gradient clipping, selective regularization. Every trainer runs in its own
process (the current trainer changes the process's allocator), one after the
other, in the same run; the baseline is the trainer of ``--baseline`` (default:
the last commit before the speed work), checked out with ``git worktree`` into a
temporary folder and imported from there. The first steps are warm-up and not
timed. Prints structures/s and atoms/s of each and the ratio new / old.

    python benchmarks/bench_train.py [--threads 2] [--steps 8] [--baseline a22fc35] [--sevenn]

With ``--sevenn`` sevenn's ``Trainer.run_one_epoch`` on the same frames and
7net-0 weights runs as well (it has no EMA, clipping or tasks).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "hea_gpaw_rpbe" / "hea_example" / "traj"
BASELINE = "a22fc356a69efef45734096b54237d3d7594d7c9"  # before the trainer speed-up

RUN_TRAINER = textwrap.dedent(
    """
    import json, sys, time, torch
    from omni_flows.model.train import TrainConfig, Trainer
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    import omni_flows.model.train as train_pkg
    cfg = TrainConfig.from_dict({
        "data": {"train": [{"path": args["data"], "task": "gpaw_rpbe"}],
                 "batch_size": args["batch"], "cache_dir": args["cache"]},
        "model": {"checkpoint": "7net-mf-0",
                  "append_tasks": [{"name": "gpaw_rpbe", "copy_from": "PBE"}]},
        "regularization": {"weight": 1.0e-4},
        "optim": {"lr": 1.0e-4},
        "epochs": 1000, "output_dir": args["out"], "progress": False})
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    start = time.perf_counter() - t0
    def batch():
        items = trainer.sampler.next_batch()
        if items is None or len(items) < args["batch"]:
            trainer.sampler.new_epoch()
            items = trainer.sampler.next_batch()
        return items
    for _ in range(args["warmup"]):
        trainer.train_step(batch())
    batches = [batch() for _ in range(args["steps"])]
    atoms = sum(len(trainer.sources[i.source][0][i.index]["numbers"]) for b in batches for i in b)
    t = time.perf_counter()
    for items in batches:
        trainer.train_step(items)
    dt = time.perf_counter() - t
    print(json.dumps({"structures_per_s": args["steps"] * args["batch"] / dt,
                      "atoms_per_s": atoms / dt, "start_s": start, "file": train_pkg.__file__}))
    """
)


def package_root(tree: Path, work: Path) -> Path:
    """A folder from which ``import omni_flows`` gives ``tree``'s code (its folder mapping)."""
    root = work / "pkg"
    pkg = root / "omni_flows"
    shutil.copytree(tree / "omni_flows", pkg)
    for sub in ("model", "workflows", "db_schemas"):
        (pkg / sub).symlink_to(tree / sub)
    return root


def run_trainer(pythonpath: Path | None, args: dict) -> dict:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    res = subprocess.run(
        [sys.executable, "-c", RUN_TRAINER, json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        cwd=args["cwd"],
    )
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def sevenn_rate(path: str, batch: int, steps: int, warmup: int) -> float:
    import sevenn._keys as KEY
    import torch
    from ase.io import read
    from sevenn.train.dataload import graph_build
    from sevenn.train.loss import get_loss_functions_from_config
    from sevenn.train.trainer import Trainer
    from sevenn.util import load_checkpoint
    from torch_geometric.loader import DataLoader

    cp = load_checkpoint("7net-0")
    model = cp.build_model()
    graphs = graph_build(read(path, ":"), cp.config[KEY.CUTOFF], y_from_calc=True)
    config = {KEY.LOSS: "mse", KEY.FORCE_WEIGHT: 1.0, KEY.IS_TRAIN_STRESS: False}
    trainer = Trainer(
        model, get_loss_functions_from_config(config), torch.optim.Adam, {"lr": 1e-4}, device="cpu"
    )
    batches = []
    while len(batches) < warmup + steps:
        batches.extend(DataLoader(graphs, batch_size=batch, shuffle=True))
    trainer.run_one_epoch(batches[:warmup], is_train=True)
    t = time.perf_counter()
    trainer.run_one_epoch(batches[warmup : warmup + steps], is_train=True)
    return steps * batch / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2, help="alternate old/new this many times")
    p.add_argument("--baseline", default=BASELINE, help="git revision of the old trainer")
    p.add_argument("--sevenn", action="store_true", help="also time sevenn's trainer")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        from ase.io import read, write

        frames = [f for t in sorted(DATA.glob("example_project_0001_*.traj")) for f in read(t, ":")]
        data = work / "frames.traj"
        write(data, frames)
        tree = work / "old-tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), a.baseline],
            check=True,
            capture_output=True,
        )
        old_path = package_root(tree, work)
        common = {
            "threads": a.threads,
            "batch": a.batch_size,
            "steps": a.steps,
            "warmup": a.warmup,
            "data": str(data),
            "cwd": str(work),
        }
        print(
            f"data: {len(frames)} CHEAT GPAW RPBE relaxation frames (slab 0001, 46-47 atoms); "
            f"7net-mf-0 + task gpaw_rpbe; batch {a.batch_size}; {a.threads} threads; "
            f"{a.steps} timed steps after {a.warmup} warm-up; {a.rounds} rounds old/new"
        )
        results: dict[str, list[dict]] = {"old": [], "new": []}
        for r in range(a.rounds):
            for name, path in (("old", old_path), ("new", None)):
                out = run_trainer(
                    path, {**common, "cache": str(work / f"cache-{name}"), "out": str(work / name)}
                )
                results[name].append(out)
                print(
                    f"  round {r + 1} {name}: {out['structures_per_s']:.3f} structures/s, "
                    f"{out['atoms_per_s']:.1f} atoms/s (start-up {out['start_s']:.1f} s; "
                    f"{out['file']})"
                )
        best = {k: max(v, key=lambda o: o["structures_per_s"]) for k, v in results.items()}
        print(
            f"old trainer ({a.baseline[:7]}): {best['old']['structures_per_s']:7.3f} structures/s"
        )
        print(f"new trainer (this tree): {best['new']['structures_per_s']:7.3f} structures/s")
        ratio = best["new"]["structures_per_s"] / best["old"]["structures_per_s"]
        print(f"ratio new / old (best of {a.rounds}): {ratio:7.2f}x")
        if a.sevenn:
            rate = sevenn_rate(str(data), a.batch_size, a.steps, a.warmup)
            print(f"sevenn Trainer (7net-0): {rate:7.3f} structures/s")
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "old-tree")],
            capture_output=True,
        )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
