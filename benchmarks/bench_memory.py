"""Peak memory per atom of one energy+forces call, with and without block recomputation.

Each size runs in a fresh process (peak RSS on CPU, torch.cuda.max_memory_allocated on
a GPU) on a rattled fcc Cu supercell, 7net-mf-0 PBE, float32.

    python benchmarks/bench_memory.py [--atoms 500 2000 4000] [--device cpu]
    python benchmarks/bench_memory.py --atoms 10000 --recompute-only   # fits in 24 GB
"""

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
from ase.build import bulk
from omni_flows.model import load_model
from omni_flows.model.inference import evaluate
n, device, recompute = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
torch.set_num_threads(2)
model = load_model("7net-mf-0", device=device)
model.checkpoint_atoms = 0 if recompute else None
reps = round((n / 4) ** (1 / 3))
atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (reps, reps, reps)
atoms.rattle(0.05, seed=0)
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
(r,) = evaluate(model, [atoms], "PBE", stress=False)
seconds = time.perf_counter() - t
peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
        else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
print(json.dumps({"atoms": len(atoms), "recompute": recompute, "peak_mb": peak,
                  "seconds": seconds, "energy": r["energy"]}))
"""


def measure(n: int, device: str, recompute: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), device, str(int(recompute))],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--atoms", type=int, nargs="+", default=[500, 2000, 4000])
    p.add_argument("--device", default="cpu")
    p.add_argument("--recompute-only", action="store_true",
                   help="skip the run that keeps the blocks (sizes where it would not fit)")
    args = p.parse_args()
    print(f"{'atoms':>7s} {'MB kept':>9s} {'MB/atom':>8s} {'s':>6s} | {'MB recomp.':>10s} "
          f"{'MB/atom':>8s} {'s':>6s} | memory ratio, time ratio, |dE| eV")
    for n in args.atoms:
        b = measure(n, args.device, True)
        if args.recompute_only:
            print(f"{b['atoms']:7d} {'-':>9s} {'-':>8s} {'-':>6s} | {b['peak_mb']:10.0f} "
                  f"{b['peak_mb'] / b['atoms']:8.2f} {b['seconds']:6.1f} |", flush=True)
            continue
        a = measure(n, args.device, False)
        print(f"{a['atoms']:7d} {a['peak_mb']:9.0f} {a['peak_mb'] / a['atoms']:8.2f} "
              f"{a['seconds']:6.1f} | {b['peak_mb']:10.0f} {b['peak_mb'] / b['atoms']:8.2f} "
              f"{b['seconds']:6.1f} | {a['peak_mb'] / b['peak_mb']:.2f}x less, "
              f"{b['seconds'] / a['seconds']:.2f}x time, {abs(a['energy'] - b['energy']):.1e}",
              flush=True)


if __name__ == "__main__":
    main()
