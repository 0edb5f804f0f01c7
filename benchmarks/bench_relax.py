"""Throughput of batched against sequential relaxation of adsorbate placements.

Relaxes the same placements (O, H, C, N, CO on Pt(111) and Cu(111) 3x3x3 slabs,
bottom layer fixed) with ``relax_batch`` (one batched graph per optimizer step) and
with the same ASE optimizer one structure at a time, and prints placements/minute
of each, the ratio (in throughput, and per optimizer step: batching alone), and that
both reach the same minima. BFGS is the workflows' default (fewer steps than FIRE on
adsorbate relaxations); the batched BFGS skips Hessian updates of non-positive
curvature, which ASE's does not, so a placement on which ASE's stalls is listed.

    python benchmarks/bench_relax.py [--n 64] [--threads 2] [--device cpu] [--optimizer BFGS]
"""

import argparse
import time
import warnings

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from ase import Atoms
from ase.build import add_adsorbate, fcc111
from ase.constraints import FixAtoms
from ase.optimize import BFGS, FIRE

from omni_flows.model import OmniCalculator, load_model
from omni_flows.model.batch_relax import relax_batch

warnings.filterwarnings("ignore")


def placements(n: int) -> list[Atoms]:
    adsorbates = ["O", "H", "C", "N", Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]])]
    sites = ["fcc", "hcp", "ontop", "bridge"]
    out = []
    for k in range(n):
        metal = ["Pt", "Cu"][k % 2]
        slab = fcc111(metal, (3, 3, 3), vacuum=7.0)
        add_adsorbate(slab, adsorbates[k % 5], 1.6 if k % 5 != 4 else 1.9, sites[(k // 2) % 4])
        slab.set_constraint(FixAtoms(indices=[a.index for a in slab if a.tag == 3]))
        slab.rattle(0.05, seed=k)
        out.append(slab)
    return out


def main() -> None:
    # numpy's BLAS on one thread for both runs, as in the workflows: OpenBLAS threads that
    # spin after each BFGS eigh would otherwise halve the speed of the sequential model calls
    with threadpool_limits(limits=1, user_api="blas"):
        run()


def run() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--fmax", type=float, default=0.05)
    p.add_argument("--optimizer", choices=["BFGS", "FIRE"], default="BFGS")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("7net-mf-0", device=args.device)
    structures = placements(args.n)
    print(f"{args.n} placements of {len(structures[0])} atoms, 7net-mf-0 PBE, {args.device}, "
          f"{args.threads} threads, fmax {args.fmax}, {args.optimizer}")

    calc = OmniCalculator(model, task="PBE", device=args.device)
    # warm-up outside the timings: the first model calls of a process allocate and
    # initialise kernels, and would otherwise be charged to whichever run goes first
    relax_batch(structures[:4], model, "PBE", steps=2, optimizer=args.optimizer)
    calc.get_potential_energy(structures[0].copy())

    t = time.perf_counter()
    batched = relax_batch(structures, model, "PBE", fmax=args.fmax, steps=300,
                          optimizer=args.optimizer)
    t_batch = time.perf_counter() - t

    t = time.perf_counter()
    sequential, seq_steps, seq_converged = [], 0, []
    for s in structures:
        a = s.copy()
        a.calc = calc
        opt = {"BFGS": BFGS, "FIRE": FIRE}[args.optimizer](a, logfile=None)
        seq_converged.append(opt.run(fmax=args.fmax, steps=300))
        seq_steps += opt.nsteps
        sequential.append(a)
    t_seq = time.perf_counter() - t

    both = [k for k, b in enumerate(batched) if b.converged and seq_converged[k]]
    de = max(abs(batched[k].energy - sequential[k].get_potential_energy()) for k in both)
    dx = max(np.abs(batched[k].atoms.positions - sequential[k].positions).max() for k in both)
    steps = sum(b.nsteps for b in batched)
    print(f"batched    {60 * args.n / t_batch:8.1f} placements/min ({t_batch:.1f} s, {steps} steps, "
          f"{1e3 * t_batch / steps:.0f} ms/step), converged {sum(b.converged for b in batched)}/{args.n}")
    print(f"sequential {60 * args.n / t_seq:8.1f} placements/min ({t_seq:.1f} s, {seq_steps} steps, "
          f"{1e3 * t_seq / seq_steps:.0f} ms/step), converged {sum(seq_converged)}/{args.n}")
    print(f"speed-up {t_seq / t_batch:.2f}x in throughput, {(t_seq / seq_steps) / (t_batch / steps):.2f}x "
          f"per step; same minima where both converged ({len(both)}): max |dE| {de:.2e} eV, "
          f"max |dx| {dx:.2e} A")
    for k, b in enumerate(batched):
        if b.converged != seq_converged[k]:
            print(f"  placement {k} ({b.atoms.get_chemical_formula()}): converged batched "
                  f"{b.converged} in {b.nsteps} steps, sequential {seq_converged[k]}; E batched "
                  f"{b.energy:.3f}, sequential {sequential[k].get_potential_energy():.3f} eV")


if __name__ == "__main__":
    main()
