"""Training throughput (structures per second) on CPU: omni-flows' trainer vs sevenn's.

Same data (OC20 relaxation frames from the shared data folder, or EMT-labelled
Cu/Pt cells when that folder is absent), same model size (both start from the
7net-0 weights), same batch size, Adam, MSE on per-atom energy and forces.
Ours runs with its defaults (gradient clipping, EMA); sevenn's
``Trainer.run_one_epoch`` has neither. The first optimisation steps of each are
warm-up and not timed. Prints both rates and the ratio (ours / sevenn).

    python benchmarks/bench_train.py [--threads 2] [--steps 8] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase.io import read, write

warnings.filterwarnings("ignore")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "oc20_relaxations"


def frames(n: int, max_atoms: int):
    if DATA.is_dir():
        out = []
        for f in sorted(DATA.glob("*.traj")):
            if len(read(f, 0)) <= max_atoms:
                out.extend(read(f, "::7"))
        return out[:n], "OC20 relaxation frames"
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    for k in range(n):
        a = bulk(["Cu", "Pt"][k % 2], "fcc", a=[3.6, 3.92][k % 2], cubic=True) * (2, 2, 2)
        a.rattle(0.05, seed=k)
        a.calc = EMT()
        a.calc = SinglePointCalculator(a, energy=a.get_potential_energy(), forces=a.get_forces())
        out.append(a)
    return out, "EMT-labelled Cu/Pt cells (shared OC20 data not found)"


def ours(path: Path, work: Path, batch: int, steps: int, warmup: int) -> float:
    from omni_flows.model.train import TrainConfig, Trainer

    cfg = TrainConfig.from_dict(
        {
            "data": {
                "train": [{"path": str(path), "task": "default"}],
                "batch_size": batch,
                "cache_dir": str(work / "cache"),
                "free_atoms_only": False,
            },
            "model": {"checkpoint": "7net-0"},
            "optim": {"lr": 1e-4},
            "loss": {"kind": "mse"},
            "epochs": 1000,
            "output_dir": str(work / "ours"),
            "progress": False,
        }
    )
    trainer = Trainer(cfg)  # graphs are built and cached here, as sevenn's graph_build below
    for _ in range(warmup):
        trainer.train_step(_next(trainer))
    batches = [_next(trainer) for _ in range(steps)]
    t = time.perf_counter()
    for items in batches:
        trainer.train_step(items)
    return steps * batch / (time.perf_counter() - t)


def _next(trainer):
    items = trainer.sampler.next_batch()
    if items is None or len(items) < trainer.cfg.data.batch_size:
        trainer.sampler.new_epoch()
        items = trainer.sampler.next_batch()
    return items


def sevenn(structures, batch: int, steps: int, warmup: int) -> float:
    import sevenn._keys as KEY
    from sevenn.train.dataload import graph_build
    from sevenn.train.loss import get_loss_functions_from_config
    from sevenn.train.trainer import Trainer
    from sevenn.util import load_checkpoint
    from torch_geometric.loader import DataLoader

    cp = load_checkpoint("7net-0")
    model = cp.build_model()
    cutoff = cp.config[KEY.CUTOFF]
    graphs = graph_build(structures, cutoff, y_from_calc=True)
    config = {KEY.LOSS: "mse", KEY.FORCE_WEIGHT: 1.0, KEY.IS_TRAIN_STRESS: False}
    trainer = Trainer(
        model, get_loss_functions_from_config(config), torch.optim.Adam, {"lr": 1e-4}, device="cpu"
    )
    loader = DataLoader(graphs, batch_size=batch, shuffle=True)
    batches = []
    while len(batches) < warmup + steps:
        batches.extend(loader)
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
    p.add_argument("--max-atoms", type=int, default=60)
    p.add_argument("--ours-first", action="store_true", help="run ours before sevenn")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/omni_flows_bench_train"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    shutil.rmtree(a.work_dir, ignore_errors=True)
    a.work_dir.mkdir(parents=True)
    structures, what = frames(a.batch_size * (a.steps + a.warmup), a.max_atoms)
    path = a.work_dir / "data.extxyz"
    write(path, structures)
    natoms = np.mean([len(s) for s in structures])
    print(
        f"data: {len(structures)} {what}, {natoms:.0f} atoms on average; model size: 7net-0; "
        f"batch {a.batch_size}; {a.threads} threads; {a.steps} timed steps after {a.warmup} warm-up"
    )
    runs = {
        "sevenn": lambda: sevenn(structures, a.batch_size, a.steps, a.warmup),
        "ours": lambda: ours(path, a.work_dir, a.batch_size, a.steps, a.warmup),
    }
    rate = {}
    for name in ("ours", "sevenn") if a.ours_first else ("sevenn", "ours"):
        rate[name] = runs[name]()
    rate_sevenn, rate_ours = rate["sevenn"], rate["ours"]
    print(f"sevenn {__import__('sevenn').__version__} Trainer : {rate_sevenn:7.2f} structures/s")
    print(f"omni-flows Trainer    : {rate_ours:7.2f} structures/s")
    print(f"ratio ours / sevenn   : {rate_ours / rate_sevenn:7.2f}x")


if __name__ == "__main__":
    main()
