"""The speed acceptance benchmark in one run: model calls against sevenn on CPU at 38,
200 and 500 atoms (bench_model_cpu.py), then batched against sequential relaxation
of 64 placements (bench_relax.py). Each part runs in its own process, so that the
memory one keeps does not weigh on the other; their outputs are printed as they come.

    python benchmarks/bench_speed.py [--threads 2] [--n 64]
"""

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n", type=int, default=64, help="placements to relax")
    args = p.parse_args()
    threads = ["--threads", str(args.threads)]
    for script, extra in (("bench_model_cpu.py", []), ("bench_relax.py", ["--n", str(args.n)])):
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *threads, *extra], check=True)


if __name__ == "__main__":
    main()
