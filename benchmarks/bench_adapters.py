"""What task adapters cost: 7net-mf-0 with adapters of rank 0 (none), 8 and 16, on CPU.

Prints the adapters' parameters per task and, per rank, the median time of
  - an energy+forces call (inference) on the 38-atom Pt(111)+CO slab, one task;
  - a training step on it (energy, forces with create_graph, backward of an energy+force
    loss to the weights);
  - the training step on a batch of two such slabs with two tasks (PBE and R2SCAN), which
    takes the several-task path (one product per task's nodes);
each as a ratio to rank 0 measured in the same run, calls interleaved so that background
load hits all ranks alike.

    OMP_NUM_THREADS=2 python benchmarks/bench_adapters.py [--repeat 10] [--threads 2]
"""

import argparse
import copy
import statistics
import time

import torch
from ase import Atoms
from ase.build import add_adsorbate, fcc111

from omni_flows.model import load_model
from omni_flows.model.graph import build_graph


def slab() -> Atoms:
    atoms = fcc111("Pt", (3, 3, 4), vacuum=8.0)
    add_adsorbate(atoms, Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]]), 1.85, "ontop")
    atoms.rattle(0.03, seed=0)
    return atoms  # 38 atoms


def inference(model, graph):
    model.eval()
    out = model(graph, compute_forces=True)
    return float(out["energy"].detach().sum())


def train_step(model, graph):
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(graph, compute_forces=True)
    loss = out["energy"].pow(2).sum() + out["forces"].pow(2).sum()
    loss.backward()
    return float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base = load_model("7net-mf-0")
    models = {0: base}
    for rank in (8, 16):
        torch.manual_seed(0)
        m = copy.deepcopy(base)
        m.add_adapters(rank)
        with torch.no_grad():  # nonzero corrections, as after training
            for name, p in m.named_parameters():
                if ".adapter_up." in name:
                    p.normal_(0, 0.01)
        models[rank] = m
    c = base.config
    for rank in (8, 16):
        n = sum(p[0].numel() for name, p in models[rank].named_parameters() if ".adapter_" in name)
        print(f"rank {rank:2d}: {n:,} adapter parameters per task "
              f"(7net-mf-0 without them: {sum(p.numel() for p in base.parameters()):,} in all)")
    atoms = slab()
    one = build_graph([atoms], c.species, c.cutoff, base.task_index("PBE"))
    two = build_graph([atoms, atoms.copy()], c.species, c.cutoff,
                      [base.task_index("PBE"), base.task_index("R2SCAN")])
    cases = {"energy+forces, 1 task": (inference, one),
             "train step, 1 task": (train_step, one),
             "train step, 2 tasks": (train_step, two)}
    print(f"{'case':24s}" + "".join(f"{'r=' + str(r) + ' ms':>12s}" for r in models)
          + "".join(f"{'r=' + str(r) + '/r=0':>12s}" for r in models if r))
    for label, (fn, graph) in cases.items():
        times = {r: [] for r in models}
        for _ in range(2):  # warm-up
            for m in models.values():
                fn(m, graph)
        for _ in range(args.repeat):
            for r, m in models.items():
                t = time.perf_counter()
                fn(m, graph)
                times[r].append(time.perf_counter() - t)
        med = {r: statistics.median(v) for r, v in times.items()}
        print(f"{label:24s}" + "".join(f"{1e3 * med[r]:12.1f}" for r in models)
              + "".join(f"{med[r] / med[0]:12.3f}" for r in models if r))


if __name__ == "__main__":
    main()
