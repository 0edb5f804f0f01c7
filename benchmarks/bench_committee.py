"""What a committee costs: predict with and without ``committee=True``, and the committee pass
against one relaxation of the same batch, all measured in the same run.

    OMP_NUM_THREADS=1 python benchmarks/bench_committee.py [--structures 5] [--size 4] [--steps 60]
        [--adapter-rank 4]

The batch: the first ``--structures`` O* geometries of quinary slab 0002 (GPAW RPBE, 46 atoms
each), omni-ads-0's gpaw_rpbe task with an untrained committee of ``--size`` members (the
cost does not depend on the members' values). Members run once per structure, at its final
geometry, energies only; a screen's relaxation runs its model once per optimizer step with
forces. So a screen with uncertainty costs (relaxation + committee pass) / relaxation of one
without. The relaxation starts at the DFT trajectories' first frames and stops at
fmax 0.05 eV/A or after ``--steps`` steps (a capped relaxation makes the ratio an upper
bound). Each timing is the fastest of ``--repeat`` runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ase.io import read

from omni_flows.model import load_model, predict
from omni_flows.model.batch_relax import relax_batch
from omni_flows.model.committee import committee_energies

QUINARY = Path(__file__).resolve().parents[2] / "shared" / "data" / "hea_gpaw_rpbe" / "hea_quinary"
TASK = "gpaw_rpbe"


def fastest(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", type=int, default=5)
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--adapter-rank", type=int, default=0,
                        help="give every task adapters of this rank first (members then differ "
                             "in adapters: the pass splits each adapted product per member)")
    args = parser.parse_args()

    files = sorted((QUINARY / "traj").glob("agirpdptru_0002_fcc_O_*.traj"))[: args.structures]
    final = [read(f, -1) for f in files]
    start = [read(f, 0) for f in files]
    model = load_model("omni-ads-0")
    if args.adapter_rank:
        model.add_adapters(args.adapter_rank)
    model.add_committee(TASK, args.size)
    predict(final, model, task=TASK)  # warm-up: first-call set-up is not what is measured

    plain = fastest(lambda: predict(final, model, task=TASK), args.repeat)
    both = fastest(lambda: predict(final, model, task=TASK, committee=True), args.repeat)
    members = fastest(lambda: committee_energies(model, final, TASK), args.repeat)
    t = time.perf_counter()
    relaxed = relax_batch(start, model, TASK, fmax=0.05, steps=args.steps)
    relax = time.perf_counter() - t
    steps = [r.nsteps for r in relaxed]
    converged = sum(r.converged for r in relaxed)
    atoms = sum(len(a) for a in final)
    print(f"{len(final)} structures, {atoms} atoms, committee of {args.size}, "
          f"adapter rank {args.adapter_rank}")
    print(f"predict (energy, forces, stress)       {plain:7.3f} s")
    print(f"predict(committee=True)                {both:7.3f} s   ratio {both / plain:.2f}")
    print(f"committee pass alone (energies only)   {members:7.3f} s   "
          f"= {members / plain:.2f} single points with forces")
    print(f"relaxation (fmax 0.05, <= {args.steps} steps)     {relax:7.3f} s   steps {steps}, "
          f"{converged} of {len(relaxed)} converged")
    print(f"relaxation + committee pass / relaxation: {(relax + members) / relax:.3f} "
          "(a screen with uncertainty vs without; target <= 1.5)")


if __name__ == "__main__":
    main()
