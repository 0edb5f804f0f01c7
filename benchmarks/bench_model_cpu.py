"""Time per energy+forces call: omni-flows vs sevenn with the same weights, on CPU.

Prints, from one run: per size (38-atom Pt(111)+CO slab, 200- and 500-atom cells)
the median time of each and the ratio (sevenn / ours, > 1 means we are faster);
batched throughput of 64 small structures against one-by-one calls; and the peak
resident memory of each size, measured in a fresh process.

    python benchmarks/bench_model_cpu.py [--threads 2] [--model 7net-mf-0] [--task PBE]
"""

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111, molecule

warnings.filterwarnings("ignore")


def structures() -> dict[str, Atoms]:
    slab = fcc111("Pt", (3, 3, 4), vacuum=8.0)
    add_adsorbate(slab, Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]]), 1.85, "ontop")
    pt200 = bulk("Pt", "fcc", a=3.97, cubic=True) * (5, 5, 2)
    cu500 = bulk("Cu", "fcc", a=3.61, cubic=True) * (5, 5, 5)
    for a in (slab, pt200, cu500):
        a.rattle(0.03, seed=0)
    return {"pt111_co_38": slab, "pt_bulk_200": pt200, "cu_bulk_500": cu500}


def median_time(fn, repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def paired_median_times(fa, fb, repeat: int, warmup: int = 2) -> tuple[float, float]:
    """Alternate the two calls so that background load hits both alike."""
    for _ in range(warmup):
        fa(), fb()
    ta, tb = [], []
    for _ in range(repeat):
        for f, times in ((fa, ta), (fb, tb)):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def ours_and_sevenn(model_name: str, task: str | None):
    from sevenn.calculator import SevenNetCalculator

    from omni_flows.model import OmniCalculator

    ours = OmniCalculator(model_name, task=task, device="cpu")
    ref = SevenNetCalculator(model_name, device="cpu", **({"modal": task} if task else {}))
    return ours, ref


def call(calc, atoms):
    def run():
        calc.results = {}
        calc.calculate(atoms, ["energy", "forces"], ["positions"])
    return run


def memory_child(which: str, size: str, model: str, task: str | None, threads: int) -> None:
    torch.set_num_threads(threads)
    ours, ref = ours_and_sevenn(model, task)
    calc = ours if which == "ours" else ref
    atoms = structures()[size]
    call(calc, molecule("CO", vacuum=5.0))()  # warm up the code paths, small
    # give back what the warm-up freed (the model keeps freed memory, see keep_freed_memory)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark (Linux)
        f.write("5")
    base = _rss_kb("VmRSS")
    call(calc, atoms)()
    peak = _rss_kb("VmHWM")
    print(json.dumps({"peak_mb": (peak - base) / 1024, "atoms": len(atoms)}))


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="7net-mf-0")
    p.add_argument("--task", default="PBE")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--_memory", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    task = args.task or None
    if args._memory:
        memory_child(*args._memory, args.model, task, args.threads)
        return
    torch.set_num_threads(args.threads)
    ours, ref = ours_and_sevenn(args.model, task)
    print(f"model {args.model} task {task}, CPU, {args.threads} threads, float32, torch {torch.__version__}")
    print(f"{'structure':14s} {'atoms':>5s} {'ours ms':>9s} {'sevenn ms':>10s} {'speed-up':>9s}")
    for name, atoms in structures().items():
        t_ours, t_ref = paired_median_times(call(ours, atoms), call(ref, atoms), args.repeat)
        print(f"{name:14s} {len(atoms):5d} {1e3 * t_ours:9.1f} {1e3 * t_ref:10.1f} {t_ref / t_ours:8.2f}x")

    # batched against one-by-one: 64 small structures (adsorbates on small Pt slabs)
    from omni_flows.model.inference import evaluate

    rng = np.random.default_rng(0)
    small = []
    for k in range(64):
        s = fcc111("Pt", (2, 2, 3), vacuum=6.0)
        add_adsorbate(s, ["O", "H", "C", "N"][k % 4], 1.4, "fcc")
        s.positions += rng.normal(scale=0.02, size=s.positions.shape)
        small.append(s)
    model = ours.model
    t_batch = median_time(lambda: evaluate(model, small, task, stress=False), 3, warmup=1)
    t_single = median_time(lambda: [evaluate(model, [s], task, stress=False) for s in small], 3, warmup=1)
    print(f"64 structures of {len(small[0])} atoms: batched {64 / t_batch:.1f} structures/s, "
          f"one-by-one {64 / t_single:.1f} structures/s, ratio {t_single / t_batch:.2f}x")

    print(f"{'peak memory':14s} {'atoms':>5s} {'ours MB':>9s} {'sevenn MB':>10s} {'ours kB/atom':>13s}")
    for name in structures():
        mem = {}
        for which in ("ours", "sevenn"):
            out = subprocess.run([sys.executable, __file__, "--_memory", which, name, "--model", args.model,
                                  "--task", args.task, "--threads", str(args.threads)],
                                 capture_output=True, text=True, check=True)
            mem[which] = json.loads(out.stdout.strip().splitlines()[-1])
        n = mem["ours"]["atoms"]
        print(f"{name:14s} {n:5d} {mem['ours']['peak_mb']:9.1f} {mem['sevenn']['peak_mb']:10.1f} "
              f"{1024 * mem['ours']['peak_mb'] / n:13.1f}")


if __name__ == "__main__":
    main()
