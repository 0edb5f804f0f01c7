"""Every check of issue 18 in one run, one JSON file of figures (docs/gpu.md).

Sections, each time-boxed within one global budget (what a box cuts is recorded
under ``skipped``; the JSON is rewritten after every section, so a killed run keeps
what it measured):

- ``parity``: e3nn, compile and cueq backends against sevenn (e3nn, same weights,
  same device) in float32 and float64; 7net-0, 7net-mf-0 (PBE, R2SCAN) and a 13-task
  Omni-like model with random weights built by sevenn's own builder.
- ``speed``: time per energy+forces call (ASE calculators, neighbour list included)
  at 38, 500, 2,000 and 10,000 atoms, ours per backend against sevenn with its best
  accelerator (cuEquivariance when it builds and runs, else e3nn); ratio = sevenn / ours.
- ``memory``: largest fcc Cu cell that fits per backend under a memory cap (80 GB on a
  GPU, enforced by the allocator), 7net-mf-0 and the SevenNet-MF-ompa architecture
  (random weights); the goal cell of 10,000 atoms is probed first.
- ``relax``: 256 placements of ~38 atoms relaxed batched and one by one (ASE BFGS,
  same model); the one-by-one run is timed on as many as its time box allows.
- ``screen``: the memory model (model/memory_model.py) fitted, its predictions
  against measured peaks, and a mixed-size screen under a capped budget: batches,
  out-of-memory splits (the goal: none), measured peak per batch.
- ``train``: training throughput, ours against sevenn's Trainer on the device (the
  set-up bench_train.py had: 7net-0 weights, OC20 frames, Adam, MSE).

    python benchmarks/gpu_suite.py --device cuda --out gpu_suite.json          # <= ~8 min
    OMP_NUM_THREADS=1 python benchmarks/gpu_suite.py --device cpu --toy --out toy.json
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # sevenn_reference, structures

warnings.filterwarnings("ignore")

# parity acceptance (issue 13, tests/test_parity_sevenn.py): eV/atom, eV/A, eV/A^3
TOL = {"energy_per_atom": 1e-5, "forces": 1e-4, "stress": 1e-5}
GOALS = {"speed_ratio_vs_sevenn_cueq": 1.5, "memory_atoms": 10_000, "memory_cap_gb": 80,
         "relax_ratio": 5.0}
# share of the global budget per section (leftover time passes to later sections)
SHARES = {"parity": 0.17, "speed": 0.24, "memory": 0.2, "relax": 0.17, "screen": 0.1, "train": 0.12}
BACKENDS = ("e3nn", "cueq", "compile")


class Box:
    """A section's time box, a share of what is left of the global budget."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.skipped: list[str] = []

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def allows(self, seconds: float, what: str) -> bool:
        if seconds <= self.left():
            return True
        self.skipped.append(f"{what} (needs ~{seconds:.0f} s, {max(self.left(), 0):.0f} s left)")
        return False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def environment(device: torch.device) -> dict:
    import e3nn
    import sevenn

    from omni_flows.model import cueq

    env = {"python": platform.python_version(), "host": platform.node(), "cpus": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
           "cuda_runtime": torch.version.cuda, "e3nn": e3nn.__version__, "sevenn": sevenn.__version__,
           "cuequivariance_torch": getattr(cueq.cuet, "__version__", None),
           "cuequivariance_ops": cueq.cuda_kernels_available(), "device": str(device),
           "float32_matmul_precision": torch.get_float32_matmul_precision(),
           "dynamo_cache_size_limit": torch._dynamo.config.cache_size_limit}
    try:
        env["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, text=True,
                                           capture_output=True).stdout.strip()
    except OSError:
        pass
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gb=props.total_memory / 1e9,
                   capability=f"{props.major}.{props.minor}")
        try:
            env["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                text=True, capture_output=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            env["driver"] = None
    else:
        env["cpu"] = platform.processor() or platform.machine()
    return env


# ----- models ---------------------------------------------------------------

def omni13_checkpoint(toy: bool) -> dict:
    """sevenn's builder, random weights: 13 tasks, lmax 3, partial parity, 12 layers of
    32 channels (tests/sevenn_reference.OMNI_I12); 3 layers of 16 channels for --toy."""
    from sevenn_reference import OMNI_I12, build_sevenn_checkpoint

    arch = dict(OMNI_I12)
    if toy:
        arch.update(channel=16, num_convolution_layer=3,
                    irreps_manual=["16x0e"] + ["16x0e+8x1o+4x2e+4x3o"] * 2 + ["16x0e"])
    return build_sevenn_checkpoint(arch)


def mf_ompa_checkpoint() -> dict:
    from sevenn_reference import MF_OMPA, build_sevenn_checkpoint

    return build_sevenn_checkpoint(MF_OMPA)


def ours(source, device, dtype=torch.float32, backend="e3nn"):
    """Our model from a pretrained name or a sevenn checkpoint dict (random weights)."""
    from omni_flows.model import load_model
    from omni_flows.model.backends import apply_backend
    from omni_flows.model.sevenn_import import model_from_sevenn

    if isinstance(source, dict):
        model = model_from_sevenn(source, name="random").to(device=device, dtype=dtype).eval()
        return apply_backend(model, backend)
    return load_model(source, device=device, dtype=dtype, backend=backend)


def sevenn_model(source, device, dtype=torch.float32, enable_cueq=False):
    from sevenn.util import load_checkpoint

    if isinstance(source, dict):  # through a file, as sevenn loads user checkpoints
        with tempfile.NamedTemporaryFile(suffix=".pth", delete=False) as f:
            torch.save(source, f.name)
        cp = load_checkpoint(f.name)
    else:
        cp = load_checkpoint(source)
    model = cp.build_model(enable_cueq=enable_cueq)
    model.set_is_batch_data(False)
    if dtype != torch.float32:  # sevenn's one-hot embedding is float32 whatever the model's dtype
        from sevenn.nn.node_embedding import OnehotEmbedding

        def cast(module, args, data):  # 0/1 values: exact in any dtype
            for key in {module.key_output, module.key_additional_output} - {None}:
                data[key] = data[key].to(dtype)
            return data

        for m in model.modules():
            if isinstance(m, OnehotEmbedding):
                m.register_forward_hook(cast)
    return model.to(device=device, dtype=dtype).eval(), cp.config


def sevenn_call(model, config, atoms, task, device, dtype):
    """Energy, forces, ASE-Voigt stress through sevenn's calculator path."""
    import sevenn._keys as KEY
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph

    data = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, config[KEY.CUTOFF],
                                                                  with_shift=False))
    if task is not None:
        data[KEY.DATA_MODALITY] = task
    for k, v in data.items():
        if torch.is_tensor(v) and v.is_floating_point():
            data[k] = v.to(dtype)
    data.to(device)
    out = model(data)
    stress = -out[KEY.PRED_STRESS].detach().double().cpu().numpy().reshape(-1)[[0, 1, 2, 4, 5, 3]]
    return (float(out[KEY.PRED_TOTAL_ENERGY].detach().double().cpu()),
            out[KEY.PRED_FORCE].detach().double().cpu().numpy(), stress)


def backend_available(backend: str, device: torch.device, toy: bool) -> str | None:
    """Why ``backend`` is not run here, or None."""
    from omni_flows.model import cueq

    if backend == "cueq" and (cueq.cuet is None or (device.type == "cuda"
                                                     and not cueq.cuda_kernels_available())):
        return "cuEquivariance (with its CUDA kernels on a GPU) is not installed"
    if backend == "compile" and device.type == "cpu":
        return "torch.compile takes minutes per model on CPU"
    return None


# ----- structures -----------------------------------------------------------

def cu_cell(reps, a=3.61, seed=0) -> Atoms:
    atoms = bulk("Cu", "fcc", a=a, cubic=True) * reps
    atoms.rattle(0.03, seed=seed)
    return atoms


def pt111_co() -> Atoms:
    from structures import co_on_pt111

    return co_on_pt111()


def placement(k: int, layers: int, size: int) -> Atoms:
    adsorbates = ["O", "H", "C", "N", Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]])]
    sites = ["fcc", "hcp", "ontop", "bridge"]
    from ase.constraints import FixAtoms

    slab = fcc111(["Pt", "Cu"][k % 2], (size, size, layers), vacuum=7.0)
    add_adsorbate(slab, adsorbates[k % 5], 1.6 if k % 5 != 4 else 1.9, sites[(k // 2) % 4])
    slab.set_constraint(FixAtoms(indices=[a.index for a in slab if a.tag == layers]))
    slab.rattle(0.05, seed=k)
    return slab


# ----- sections -------------------------------------------------------------

def section_parity(box: Box, device, toy: bool) -> dict:
    from structures import cu_bulk, cu_o_slab, water

    from omni_flows.model.inference import evaluate

    structures = [pt111_co(), water()] if toy else [pt111_co(), cu_bulk(), water(), cu_o_slab()]
    omni = omni13_checkpoint(toy)
    omni_tasks = list(omni["config"]["_modal_map"])
    cases = [("7net-mf-0", "7net-mf-0", ["PBE", "R2SCAN"]), ("7net-0", "7net-0", [None]),
             ("omni13-random", omni, [omni_tasks[0], omni_tasks[-1]])]
    dtypes = (torch.float32, torch.float64)
    refs, rows, backends_run = {}, [], {}
    for dtype in dtypes:  # sevenn first: every backend is compared with the same numbers
        for label, source, tasks in cases:
            if box.allows(2 if toy else 5, f"sevenn {label} {dtype}"):
                ref_model, ref_cfg = sevenn_model(source, device, dtype)
                refs[label, dtype] = {t: [sevenn_call(ref_model, ref_cfg, s, t, device, dtype)
                                          for s in structures] for t in tasks}
                del ref_model
    release(device)
    # backend by backend, so that a slow one (compile) cannot crowd out the others
    for backend in BACKENDS:
        why = backend_available(backend, device, toy)
        if why:
            backends_run[backend] = f"skipped: {why}"
            continue
        for dtype in dtypes:
            for label, source, tasks in cases:
                if (label, dtype) not in refs or not box.allows(
                        3 if backend != "compile" else 60, f"{label} {dtype} {backend}"):
                    continue
                head = {"model": label, "dtype": str(dtype).split(".")[-1], "backend": backend}
                t0 = time.perf_counter()
                try:
                    model = ours(source, device, dtype, backend)
                    for task in tasks:
                        got = evaluate(model, structures, task)  # one batched graph
                        rows.append(parity_row(head, task, structures, got, refs[label, dtype][task], t0))
                    backends_run.setdefault(backend, "run")
                    del model
                except Exception as exc:  # noqa: BLE001 - recorded as a failed check
                    rows.append({**head, "error": f"{type(exc).__name__}: {exc}"[:500],
                                 "within_tolerance": False})
                forget_compiled(backend)
                release(device)
    return {"tolerance": TOL, "reference": "sevenn (e3nn), same weights, same device and dtype",
            "structures": [f"{s.get_chemical_formula()} ({len(s)} atoms)" for s in structures],
            "backends": backends_run, "rows": rows,
            "all_within_tolerance": bool(rows) and all(r["within_tolerance"] for r in rows)}


def parity_row(head: dict, task, structures, got, refs, t0: float) -> dict:
    de, df, ds = [], [], []
    for s, g, (e, f, st) in zip(structures, got, refs):
        de.append(abs(g["energy"] - e) / len(s))
        df.append(float(np.abs(g["forces"] - f).max()))
        if "stress" in g:
            ds.append(float(np.abs(g["stress"] - st).max()))
    row = {**head, "task": task, "structures": len(structures), "max_dE_per_atom": max(de),
           "max_dF": max(df), "max_dS": max(ds) if ds else None, "seconds": time.perf_counter() - t0}
    row["within_tolerance"] = bool(
        row["max_dE_per_atom"] <= TOL["energy_per_atom"] and row["max_dF"] <= TOL["forces"]
        and (row["max_dS"] is None or row["max_dS"] <= TOL["stress"]))
    return row


def forget_compiled(backend: str) -> None:
    """Drop torch.compile's caches once a compiled model is gone: the blocks of every
    model share one code object, and its recompilations count against one limit."""
    if backend == "compile":
        torch._dynamo.reset()


def timed_calls(calc, atoms, box: Box, repeat: int, min_seconds: float) -> tuple[float, int]:
    """Median seconds per energy+forces call after one warm-up call."""
    def call():
        calc.results = {}
        calc.calculate(atoms, ["energy", "forces"], ["positions"])

    call()  # warm-up: kernels, compilation, allocator
    times = []
    while len(times) < repeat and (len(times) < 2 or sum(times) < min_seconds):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
        if box.left() < 0:
            break
    return statistics.median(times), len(times)


def section_speed(box: Box, device, toy: bool) -> dict:
    from sevenn.calculator import SevenNetCalculator

    from omni_flows.model import OmniCalculator

    name, task = "7net-mf-0", "PBE"
    cells = {4: cu_cell((1, 1, 1)), 32: cu_cell((2, 2, 2))} if toy else {38: pt111_co()}
    for n, reps in () if toy else ((500, (5, 5, 5)), (2000, (10, 10, 5)), (10000, (10, 10, 25))):
        cells[n] = cu_cell(reps)
    repeat, min_seconds = (2, 0.0) if toy else (10, 1.0)
    calcs, notes = {}, {}
    for backend in BACKENDS:
        why = backend_available(backend, device, toy)
        if why:
            notes[f"ours_{backend}"] = f"skipped: {why}"
        else:
            calcs[f"ours_{backend}"] = lambda b=backend: OmniCalculator(name, task=task, device=str(device),
                                                                        backend=b)
    # sevenn's best accelerator: cuEquivariance when it builds and runs here, else e3nn
    sevenn_best = "e3nn"
    try:
        c = SevenNetCalculator(name, device=str(device), modal=task, enable_cueq=True)
        uses_cueq = any("cuequivariance" in type(m).__module__ for m in c.model.modules())
        if uses_cueq:
            a = cells[min(cells)].copy()
            c.calculate(a, ["energy", "forces"], ["positions"])
            sevenn_best = "cueq"
            calcs["sevenn_cueq"] = lambda: SevenNetCalculator(name, device=str(device), modal=task,
                                                              enable_cueq=True)
        else:
            notes["sevenn_cueq"] = "sevenn built no cuEquivariance modules (fell back to e3nn)"
        del c
    except Exception as exc:  # noqa: BLE001 - recorded: why sevenn's accelerator did not run
        notes["sevenn_cueq"] = f"failed: {type(exc).__name__}: {exc}"[:300]
    calcs["sevenn_e3nn"] = lambda: SevenNetCalculator(name, device=str(device), modal=task)
    table: dict[str, dict] = {}
    order = ["sevenn_" + sevenn_best] + [k for k in calcs if k != "sevenn_" + sevenn_best]
    for key in order:
        table[key] = {}
        try:
            calc = calcs[key]()
        except Exception as exc:  # noqa: BLE001 - recorded
            notes[key] = f"failed: {type(exc).__name__}: {exc}"[:300]
            continue
        last = None  # (atoms, seconds per call) of the previous size: predicts the next
        for n, atoms in cells.items():
            if last:  # a warm-up call and the timed calls, from the last size's time per atom
                per_call = last[1] * n / last[0]
                calls = 1 + max(2, min(repeat, int(np.ceil(min_seconds / per_call))))
                guess = per_call * calls + 1
            else:
                guess = 60 if "compile" in key else 5
            if not box.allows(guess, f"{key} at {n} atoms"):
                continue
            try:
                sec, reps = timed_calls(calc, atoms, box, repeat, min_seconds)
            except torch.OutOfMemoryError:
                table[key][str(n)] = {"oom": True}
                release(device)
                continue
            except Exception as exc:  # noqa: BLE001 - recorded
                table[key][str(n)] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                release(device)
                continue
            table[key][str(n)] = {"ms": 1e3 * sec, "calls": reps}
            last = (n, sec)
        del calc
        forget_compiled("compile" if "compile" in key else key)
        release(device)
    ref = table.get("sevenn_" + sevenn_best, {})
    ratios = {k: {n: ref[n]["ms"] / v[n]["ms"] for n in v if "ms" in v[n] and "ms" in ref.get(n, {})}
              for k, v in table.items() if k.startswith("ours_")}
    return {"model": f"{name}:{task}", "dtype": "float32", "sevenn_best": sevenn_best,
            "atoms": {str(n): f"{a.get_chemical_formula()}" for n, a in cells.items()},
            "ms_per_call": table, "ratio_sevenn_best_over_ours": ratios, "notes": notes,
            "goal": f">= {GOALS['speed_ratio_vs_sevenn_cueq']}x sevenn with cuEquivariance at every size"}


def section_memory(box: Box, device, toy: bool) -> dict:
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        cap = min(GOALS["memory_cap_gb"] * 1e9, total)
        torch.cuda.set_per_process_memory_fraction(cap / total, device)
        goal_reps, first_k, max_k = (10, 10, 25), 14, 48
    else:  # toy: a synthetic cap on the measured peak resident memory
        cap = 0.2e9
        goal_reps, first_k, max_k = (2, 2, 2), 3, 4
    out = {"cap_gb": cap / 1e9, "cell": "fcc Cu, (k, k, k) cubic cells of 4 k^3 atoms, rattled",
           "measure": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "peak RSS",
           "models": {}}
    ompa = mf_ompa_checkpoint()
    models = [("7net-mf-0", "7net-mf-0", "PBE"), ("mf-ompa-random", ompa, list(ompa["config"]["_modal_map"])[0])]
    try:
        for backend in BACKENDS:  # e3nn and cueq of both models before compile
            for label, source, task in models:
                why = backend_available(backend, device, toy)
                if why is None and toy and backend != "e3nn":
                    why = "toy run: e3nn only"
                if why:
                    out["models"].setdefault(label, {})[backend] = {"skipped": why}
                    continue
                if not box.allows(10, f"{label} {backend}"):
                    continue
                try:
                    res = largest_cell(box, device, source, task, backend, cap, goal_reps, first_k, max_k,
                                       f"{label} {backend}")
                except Exception as exc:  # noqa: BLE001 - recorded
                    res = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                out["models"].setdefault(label, {})[backend] = res
                forget_compiled(backend)
                release(device)
    finally:
        if device.type == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0, device)
    return out


def largest_cell(box: Box, device, source, task, backend, cap, goal_reps, first_k, max_k, what) -> dict:
    """Probe the goal cell, then grow (k, k, k) cells until one fails and bisect on k."""
    from omni_flows.model.inference import evaluate
    from omni_flows.model.memory_model import peak_bytes

    model = ours(source, device, torch.float32, backend)
    probes, per_atom_s = [], 0.0

    def probe(atoms: Atoms) -> bool:
        nonlocal per_atom_s
        t = time.perf_counter()
        try:
            peak = peak_bytes(lambda: evaluate(model, [atoms], task, stress=False), device)
            fits = peak <= cap
        except torch.OutOfMemoryError:
            peak, fits = None, False
        release(device)
        sec = time.perf_counter() - t
        per_atom_s = max(per_atom_s, sec / len(atoms))
        probes.append({"atoms": len(atoms), "fits": fits, "seconds": sec,
                       "peak_gb": None if peak is None else peak / 1e9})
        return fits

    goal = int(np.prod(goal_reps)) * 4
    res = {"goal_atoms": goal, "goal_fits": probe(cu_cell(goal_reps))}
    lo, hi, k = 0, None, first_k
    if not res["goal_fits"]:  # a cell as large as the goal fails too: search below it
        hi = max((j for j in range(1, max_k + 1) if 4 * j**3 < goal), default=0) + 1
        k = hi - 1
    while 1 <= k <= max_k:
        if not box.allows(per_atom_s * 4 * k**3 * 1.5 + 1, f"{what} k={k}"):
            break
        if 4 * k**3 == goal:  # the goal cell's size: its result stands
            fits = res["goal_fits"]
        else:
            fits = probe(cu_cell((k, k, k)))
        if fits:
            lo = k
        else:
            hi = k
        if hi is None:
            k += max(1, k // 4)
        elif hi - lo <= 1:
            break
        else:
            k = (lo + hi) // 2 if lo else hi // 2
            if k < 1:
                break
    fitting = [p["atoms"] for p in probes if p["fits"]]
    res.update(largest_fitting_atoms=max(fitting) if fitting else 0,
               first_failing_atoms=4 * hi**3 if hi else None, probes=probes,
               bounded_by="memory" if hi and hi - lo <= 1 else "time or size limit")
    return res


def section_relax(box: Box, device, toy: bool) -> dict:
    from ase.optimize import BFGS
    from threadpoolctl import threadpool_limits

    from omni_flows.model import OmniCalculator, load_model
    from omni_flows.model.batch_relax import relax_batch

    n, layers, size, steps = (4, 2, 2, 40) if toy else (256, 4, 3, 300)
    structures = [placement(k, layers, size) for k in range(n)]
    model = load_model("7net-mf-0", device=device)
    calc = OmniCalculator(model, task="PBE", device=str(device))
    with threadpool_limits(limits=1, user_api="blas"):
        # warm-up (kernels; on a GPU the memory model is fitted here, not in the timing)
        relax_batch(structures[:4], model, "PBE", steps=2, optimizer="BFGS")
        calc.get_potential_energy(structures[0].copy())
        t = time.perf_counter()
        batched = relax_batch(structures, model, "PBE", fmax=0.05, steps=steps, optimizer="BFGS")
        t_batch = time.perf_counter() - t
        seq_t, seq_steps, seq = 0.0, 0, []
        for k, s in enumerate(structures):
            per = seq_t / k if k else t_batch / n * 3
            if not box.allows(per, f"sequential placements {k}..{n - 1}"):
                break
            a = s.copy()
            a.calc = calc
            t = time.perf_counter()
            opt = BFGS(a, logfile=None)
            conv = opt.run(fmax=0.05, steps=steps)
            seq_t += time.perf_counter() - t
            seq_steps += opt.nsteps
            seq.append((a, conv))
    m = len(seq)
    steps_b = sum(b.nsteps for b in batched)
    both = [k for k in range(m) if batched[k].converged and seq[k][1]]
    out = {"placements": n, "atoms_each": sorted({len(s) for s in structures}), "optimizer": "BFGS",
           "fmax": 0.05, "batched_seconds": t_batch, "batched_steps": steps_b,
           "batched_converged": sum(b.converged for b in batched),
           "sequential_placements_timed": m, "sequential_seconds": seq_t, "sequential_steps": seq_steps,
           "sequential_converged": int(sum(bool(c) for _, c in seq))}
    if m:
        out["throughput_ratio"] = (seq_t / m) / (t_batch / n)
        out["per_step_ratio"] = (seq_t / seq_steps) / (t_batch / steps_b)
        out["max_dE_same_minima"] = max((abs(batched[k].energy - seq[k][0].get_potential_energy())
                                         for k in both), default=None)
        if m < n:
            out["note"] = (f"one-by-one timed on the first {m} of {n} placements (time box); "
                           "throughput ratio = seconds per placement, one by one / batched")
    out["goal"] = f">= {GOALS['relax_ratio']}x"
    return out


def section_screen(box: Box, device, toy: bool) -> dict:
    from structures import water

    from omni_flows.model import load_model
    from omni_flows.model import memory_model as mm
    from omni_flows.model.inference import evaluate

    model = load_model("7net-mf-0", device=device)
    t = time.perf_counter()
    memory = mm.fit_memory_model(model)
    out = {"fit_seconds": time.perf_counter() - t,
           "coefficients": {"kept": memory.kept.__dict__, "recomputed": memory.recomputed.__dict__,
                            "checkpoint_atoms": memory.checkpoint_atoms,
                            "units": "bytes = a + b atoms + c atoms*width"}}
    # predictions against measured peaks, cells not among the probes
    checks = [cu_cell((2, 2, 2), a=3.9)] if toy else [
        cu_cell((7, 7, 7), a=3.9), cu_cell((12, 12, 12)), pt111_co(), cu_cell((16, 16, 16), a=4.0)]
    errs = []
    for atoms in checks:
        if not box.allows(3, f"check {len(atoms)} atoms"):
            break
        ((n, w),) = mm.structure_sizes([atoms], model.config.cutoff)
        got = mm.peak_bytes(lambda: evaluate(model, [atoms], "PBE", stress=False), device)
        pred = memory.predict(n, w)
        errs.append({"atoms": n, "width": w, "measured_mb": got / 2**20, "predicted_mb": pred / 2**20,
                     "relative_error": (pred - got) / max(got, 1)})
        release(device)
    out["prediction_checks"] = errs
    # a mixed-size screen under a capped budget
    rng = np.random.default_rng(0)
    if toy:
        budget, shapes = 0.25e9, [(1, 1, 1), (2, 2, 2), (2, 2, 1), (2, 1, 1)]
        screen = [water() if k % 5 == 0 else cu_cell(shapes[rng.integers(len(shapes))], seed=k)
                  for k in range(12)]
    else:
        budget, shapes = 16e9, [(2, 2, 2), (4, 4, 4), (6, 6, 6), (8, 8, 8), (10, 10, 10), (12, 12, 12)]
        screen = [pt111_co() if k % 4 == 0 else water() if k % 7 == 0
                  else cu_cell(shapes[rng.integers(len(shapes))], seed=k) for k in range(120)]
    if device.type == "cuda":  # the allocator enforces the budget: exceeding it is an OOM
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction((budget + torch.cuda.memory_allocated(device)) / total,
                                                   device)
    try:
        sizes = mm.structure_sizes(screen, model.config.cutoff)
        batches = mm.split_by_memory(sizes, memory, mm.SAFETY * budget,
                                     mm.CPU_BATCH_ATOMS if device.type == "cpu" else None)
        stats, rows, results = {}, [], {}
        t = time.perf_counter()
        for batch in batches:
            if not box.allows(1, f"screen batch of {len(batch)}"):
                break
            part = [screen[k] for k in batch]
            got = {}
            n = sum(sizes[k][0] for k in batch)
            w = max(sizes[k][1] for k in batch)
            row = {"structures": len(batch), "atoms": n, "width": w,
                   "predicted_mb": memory.predict(n, w) / 2**20}
            try:
                peak = mm.peak_bytes(lambda: got.setdefault("r", mm.evaluate_or_split(
                    model, part, "PBE", False, stats)), device)
                results.update(zip(batch, got["r"]))
                row["measured_mb"] = peak / 2**20
            except torch.OutOfMemoryError:  # one structure alone did not fit: a failed check
                row["oom"] = True
            rows.append(row)
            release(device)
        seconds = time.perf_counter() - t
    finally:
        if device.type == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0, device)
    # the batched numbers are the one-by-one numbers
    spot = [k for k in range(0, len(screen), max(1, len(screen) // 6)) if k in results]
    de = max((abs(results[k]["energy"] - evaluate(model, [screen[k]], "PBE", stress=False)[0]["energy"])
              / len(screen[k]) for k in spot), default=None)
    old = mm.split_by_atoms([len(s) for s in screen], 8192 if device.type == "cuda" else 256)
    out["screen"] = {"structures": len(screen), "atoms": sum(len(s) for s in screen),
                     "evaluated": len(results), "budget_gb": budget / 1e9, "safety": mm.SAFETY,
                     "batches": rows, "oom_splits": stats.get("oom_splits", 0),
                     "unsplittable_ooms": sum(1 for r in rows if r.get("oom")),
                     "max_measured_over_budget": max((r["measured_mb"] * 2**20 / budget for r in rows
                                                      if "measured_mb" in r), default=None),
                     "seconds": seconds, "batches_by_fixed_atoms_rule": len(old),
                     "max_dE_per_atom_vs_one_by_one": de}
    return out


def training_frames(n: int, max_atoms: int = 60) -> tuple[list[Atoms], str]:
    """OC20 relaxation frames of at most ``max_atoms`` atoms from the shared data folder,
    else EMT-labelled Cu/Pt cells."""
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import read

    data = HERE.parents[1] / "shared" / "data" / "oc20_relaxations"
    out = []
    for f in sorted(data.glob("*.traj")) if data.is_dir() else []:
        if len(read(f, 0)) <= max_atoms:
            out.extend(read(f, "::7"))
    if len(out) >= n:
        return out[:n], "OC20 relaxation frames"
    out = []
    for k in range(n):
        a = bulk(["Cu", "Pt"][k % 2], "fcc", a=[3.6, 3.92][k % 2], cubic=True) * (2, 2, 2)
        a.rattle(0.05, seed=k)
        a.calc = EMT()
        a.calc = SinglePointCalculator(a, energy=a.get_potential_energy(), forces=a.get_forces())
        out.append(a)
    return out, "EMT-labelled Cu/Pt cells (shared OC20 data not found)"


def section_train(box: Box, device, toy: bool) -> dict:
    from ase.io import write

    steps, warmup, batch = (2, 1, 2) if toy else (20, 3, 8)
    work = Path(tempfile.mkdtemp(prefix="gpu_suite_train_"))
    structures, what = training_frames(batch * (steps + warmup))

    path = work / "data.extxyz"
    write(path, structures)
    out = {"data": what, "structures": len(structures), "batch_size": batch, "timed_steps": steps,
           "mean_atoms": float(np.mean([len(s) for s in structures])), "model_size": "7net-0"}
    if box.allows(10, "sevenn trainer"):
        out["sevenn_structures_per_s"] = _train_sevenn(structures, batch, steps, warmup, device)
    release(device)
    if box.allows(10, "our trainer"):
        out["ours_structures_per_s"] = _train_ours(path, work, batch, steps, warmup, device)
    if "sevenn_structures_per_s" in out and "ours_structures_per_s" in out:
        out["ratio_ours_over_sevenn"] = out["ours_structures_per_s"] / out["sevenn_structures_per_s"]
    return out


def _next_batch(trainer):
    items = trainer.sampler.next_batch()
    if items is None or len(items) < trainer.cfg.data.batch_size:
        trainer.sampler.new_epoch()
        items = trainer.sampler.next_batch()
    return items


def _train_ours(path, work, batch, steps, warmup, device) -> float:
    """Our Trainer with its defaults (EMA, gradient clipping), 7net-0 weights."""
    from omni_flows.model.train import TrainConfig, Trainer

    cfg = TrainConfig.from_dict({
        "data": {"train": [{"path": str(path), "task": "default"}], "batch_size": batch,
                 "cache_dir": str(work / "cache"), "free_atoms_only": False},
        "model": {"checkpoint": "7net-0"}, "optim": {"lr": 1e-4}, "loss": {"kind": "mse"},
        "epochs": 1000, "output_dir": str(work / "ours"), "progress": False, "device": str(device)})
    trainer = Trainer(cfg)
    for _ in range(warmup):
        trainer.train_step(_next_batch(trainer))
    batches = [_next_batch(trainer) for _ in range(steps)]
    sync(device)
    t = time.perf_counter()
    for items in batches:
        trainer.train_step(items)
    sync(device)
    return steps * batch / (time.perf_counter() - t)


def _train_sevenn(structures, batch, steps, warmup, device) -> float:
    """sevenn's Trainer.run_one_epoch (no EMA or clipping), 7net-0 weights, same frames."""
    import sevenn._keys as KEY
    from sevenn.train.dataload import graph_build
    from sevenn.train.loss import get_loss_functions_from_config
    from sevenn.train.trainer import Trainer
    from sevenn.util import load_checkpoint
    from torch_geometric.loader import DataLoader

    cp = load_checkpoint("7net-0")
    model = cp.build_model()
    graphs = graph_build(structures, cp.config[KEY.CUTOFF], y_from_calc=True)
    config = {KEY.LOSS: "mse", KEY.FORCE_WEIGHT: 1.0, KEY.IS_TRAIN_STRESS: False}
    trainer = Trainer(model, get_loss_functions_from_config(config), torch.optim.Adam, {"lr": 1e-4},
                      device=str(device))
    loader = DataLoader(graphs, batch_size=batch, shuffle=True)
    batches = []
    while len(batches) < warmup + steps:
        batches.extend(loader)
    trainer.run_one_epoch(batches[:warmup], is_train=True)
    sync(device)
    t = time.perf_counter()
    trainer.run_one_epoch(batches[warmup:warmup + steps], is_train=True)
    sync(device)
    return steps * batch / (time.perf_counter() - t)


SECTIONS = {"parity": section_parity, "speed": section_speed, "memory": section_memory,
            "relax": section_relax, "screen": section_screen, "train": section_train}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    p.add_argument("--toy", action="store_true", help="tiny sizes: seconds per section on CPU")
    p.add_argument("--out", type=Path, default=Path("gpu_suite.json"))
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for all sections (default 420; --toy 600)")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if bad := [s for s in sections if s not in SECTIONS]:
        print(f"unknown section(s) {bad}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here (torch.cuda.is_available() is False); "
              "use --device cpu --toy to test the suite", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    # every compiled block shares one code object; the default limit of 8 recompilations
    # would silently send later models back to eager
    torch._dynamo.config.cache_size_limit = 64
    budget = args.budget or (600.0 if args.toy else 420.0)
    device = torch.device(args.device)
    start = time.perf_counter()
    deadline = start + budget
    report = {"command": shlex.join(["python", "benchmarks/gpu_suite.py",
                                     *(sys.argv[1:] if argv is None else argv)]),
              "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "toy": args.toy, "budget_s": budget, "environment": environment(device),
              "goals": GOALS, "sections": {}}

    def write() -> None:
        report["elapsed_s"] = time.perf_counter() - start
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(json.dumps(report, indent=1, default=str))
        tmp.replace(args.out)

    def overtime(signum, frame):  # a section ran far past its box: keep what exists
        report["aborted"] = "global time limit (budget + 60 s) reached"
        write()
        os._exit(3)

    signal.signal(signal.SIGALRM, overtime)
    signal.alarm(int(budget + 60))
    for k, name in enumerate(sections):
        now = time.perf_counter()
        shares = [SHARES[s] for s in sections[k:]]
        box = Box(now + (deadline - now) * shares[0] / sum(shares))
        t = time.perf_counter()
        print(f"== {name} ({box.left():.0f} s box)", flush=True)
        try:
            result = SECTIONS[name](box, device, args.toy)
            result["status"] = "partial" if box.skipped else "ok"
        except Exception as exc:  # noqa: BLE001 - one failing check must not lose the others
            result = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc()[-3000:]}
        result["seconds"] = time.perf_counter() - t
        result["skipped"] = box.skipped
        report["sections"][name] = result
        release(device)
        write()
        print(f"   {result['status']} in {result['seconds']:.1f} s"
              + (f", skipped {len(box.skipped)}" if box.skipped else ""), flush=True)
    signal.alarm(0)
    write()
    print(f"wrote {args.out} ({report['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
