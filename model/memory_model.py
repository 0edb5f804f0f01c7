"""Batch sizes from a measured memory model, so that a screen never runs out of memory.

Peak memory of one energy+forces call on a batched graph is linear in its size:

    bytes ~= a + b * atoms + c * slots,    slots = atoms * width

where ``width`` is the batch's largest neighbour count. The convolution lays the
edges out in a dense (atom, neighbour slot) grid (:class:`~.convolution.NeighborSlots`),
so the per-edge tensors grow with slots, not with edges; slots >= edges, so a model in
slots is never optimistic for a backend that works on the edges themselves. Above
``OmniNet.checkpoint_atoms`` the interaction blocks are recomputed in the backward
pass, a second linear regime with smaller b and c; both are fitted.

The coefficients come from a few probe calls on fcc cells at two densities (peak
``torch.cuda.max_memory_allocated`` on a GPU; peak resident memory on CPU, Linux)
and are cached per (model, backend, dtype, device). Batches are then filled greedily,
in input order, while the predicted peak stays below a fraction (``SAFETY``) of the
free memory. A batch that still runs out of memory is halved and retried: the last
line of defence, counted so a benchmark can report it.

On a GPU the model is fitted on first use. On CPU a batch keeps the cache-bound
``CPU_BATCH_ATOMS`` (memory is rarely the bound there); a model fitted explicitly
with :func:`fit_memory_model` caps it further.
"""

from __future__ import annotations

import ctypes
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk

from .evaluation import evaluate
from .graph import neighbor_list

if TYPE_CHECKING:  # annotations only (network -> committee -> memory_model at run time)
    from .network import OmniNet

# On CPU the cost per structure is lowest at 100-250 atoms per batch (measured on
# 28-atom slabs: 8 per batch best, 16 per batch 20% slower).
CPU_BATCH_ATOMS = 256
# Fraction of free memory a batch may be predicted to take: room for the caching
# allocator's fragmentation and for the fit's error (a few % on the probes).
SAFETY = 0.8
# Probe cells: fcc supercells (4 k^3 atoms) at the metal's density and stretched
# (fewer neighbours), so that atoms and slots vary independently.
PROBE_REPEATS = {"cuda": (4, 6, 8), "cpu": (2, 3)}
PROBE_LATTICE = (3.61, 4.4)  # Angstrom: fcc Cu, and a sparse cell of the same element

# The last fitted model per (model, backend, dtype, device); dropped with the model.
_FITTED: "weakref.WeakKeyDictionary[OmniNet, dict]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LinearMemory:
    """bytes = a + b * atoms + c * slots."""

    a: float
    b: float
    c: float

    def __call__(self, atoms: int, slots: int) -> float:
        return self.a + self.b * atoms + self.c * slots


@dataclass(frozen=True)
class MemoryModel:
    """Peak bytes of an energy+forces call, blocks kept or recomputed as the model
    decides for the batch's size."""

    kept: LinearMemory
    recomputed: LinearMemory
    checkpoint_atoms: int | None  # the model's threshold when this was fitted

    def regime(self, atoms: int) -> LinearMemory:
        recompute = self.checkpoint_atoms is not None and atoms > self.checkpoint_atoms
        return self.recomputed if recompute else self.kept

    def predict(self, atoms: int, width: int) -> float:
        return self.regime(atoms)(atoms, atoms * width)

    def max_atoms(self, width: int, budget: float) -> int:
        """Most atoms a batch of neighbour width ``width`` may hold within ``budget`` bytes."""
        def most(m: LinearMemory) -> int:
            per_atom = m.b + m.c * width
            return int((budget - m.a) // per_atom) if per_atom > 0 else 1 << 62

        kept = most(self.kept)
        if self.checkpoint_atoms is None:
            return max(kept, 0)
        rec = most(self.recomputed)
        return max(min(kept, self.checkpoint_atoms), rec if rec > self.checkpoint_atoms else 0)


def fit_linear(atoms, slots, measured) -> LinearMemory:
    """Least squares of ``measured`` on (1, atoms, slots), coefficients kept >= 0
    (a negative one, from noise, is set to 0 and the others refitted)."""
    x = np.column_stack([np.ones(len(atoms)), atoms, slots]).astype(float)
    y = np.asarray(measured, dtype=float)
    free = [0, 1, 2]
    coef = np.zeros(3)
    while free:
        sol, *_ = np.linalg.lstsq(x[:, free], y, rcond=None)
        if (sol >= 0).all():
            coef[free] = sol
            break
        free.pop(int(np.argmin(sol)))
    return LinearMemory(*map(float, coef))


# ----- measuring --------------------------------------------------------------

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak memory ``fn`` adds: ``torch.cuda.max_memory_allocated`` on a GPU, peak
    resident memory (``VmHWM``, reset through ``/proc/self/clear_refs``) on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give back what earlier calls kept
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # peak RSS := current RSS
        base = _status_kb("VmRSS")
    except (OSError, AttributeError, StopIteration) as exc:
        raise RuntimeError(f"peak memory on CPU needs Linux /proc and glibc: {exc}") from exc
    fn()
    return 1024 * max(_status_kb("VmHWM") - base, 0)


def structure_sizes(structures: list[Atoms], cutoff: float) -> list[tuple[int, int]]:
    """(atoms, largest neighbour count) of each structure."""
    sizes = []
    for atoms in structures:
        i = neighbor_list(atoms, cutoff)[0]
        sizes.append((len(atoms), int(np.bincount(i).max()) if i.size else 0))
    return sizes


def probe_structures(model: OmniNet, device: torch.device) -> list[Atoms]:
    species = model.config.species
    element = "Cu" if "Cu" in species else species[0]
    repeats = PROBE_REPEATS["cuda" if torch.device(device).type == "cuda" else "cpu"]
    cells = []
    for a in PROBE_LATTICE:
        for k in repeats:
            cell = bulk(element, "fcc", a=a, cubic=True) * (k, k, k)
            cell.rattle(0.02, seed=k)
            cells.append(cell)
    return cells


def fit_memory_model(model: OmniNet, probes: list[Atoms] | None = None,
                     measure: Callable | None = None) -> MemoryModel:
    """Fit (and cache for this model, backend, dtype and device) the memory model from
    probe calls, once with the blocks kept and once recomputed. ``measure(fn, device)``
    defaults to :func:`peak_bytes`."""
    param = next(model.parameters())
    probes = probes or probe_structures(model, param.device)
    measure = measure or peak_bytes
    sizes = structure_sizes(probes, model.config.cutoff)
    task = model.config.tasks[0] if model.config.tasks else None
    saved = model.checkpoint_atoms
    fits = {}
    try:
        evaluate(model, [probes[0]], task, stress=False)  # first-call allocations, not per batch
        for regime, threshold in (("kept", None), ("recomputed", 0)):
            model.checkpoint_atoms = threshold
            got = [measure(lambda s=s: evaluate(model, [s], task, stress=False), param.device)
                   for s in probes]
            fits[regime] = fit_linear([n for n, _ in sizes], [n * w for n, w in sizes], got)
    finally:
        model.checkpoint_atoms = saved
    memory = MemoryModel(fits["kept"], fits["recomputed"], saved)
    _FITTED.setdefault(model, {})[_key(model)] = memory
    return memory


def _key(model: OmniNet) -> tuple:
    param = next(model.parameters())
    return (getattr(model, "backend", "e3nn"), param.dtype, str(param.device), model.checkpoint_atoms)


def memory_model_for(model: OmniNet) -> MemoryModel | None:
    """The cached model; on a GPU fitted on first use, on CPU only if fitted explicitly."""
    memory = _FITTED.get(model, {}).get(_key(model))
    if memory is None and next(model.parameters()).device.type == "cuda":
        memory = fit_memory_model(model)
    return memory


def free_bytes(device: torch.device) -> int | None:
    """Memory a batch may use now: free device memory plus what PyTorch's caching
    allocator holds unused (GPU); available memory (CPU, Linux)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable"))
    except (OSError, StopIteration):
        return None


# ----- batching ---------------------------------------------------------------

def split_by_memory(sizes: list[tuple[int, int]], memory: MemoryModel, budget: float,
                    max_atoms: int | None = None) -> list[list[int]]:
    """Greedy, in order: a batch takes the next structure while its predicted peak
    (atoms, largest width) stays within ``budget`` bytes and its atoms within
    ``max_atoms``. A structure too large on its own gets a batch of its own."""
    batches, batch, n, width = [], [], 0, 0
    for k, (atoms, w) in enumerate(sizes):
        n2, w2 = n + atoms, max(width, w)
        if batch and (memory.predict(n2, w2) > budget or (max_atoms and n2 > max_atoms)):
            batches.append(batch)
            batch, n2, w2 = [], atoms, w
        batch.append(k)
        n, width = n2, w2
    if batch:
        batches.append(batch)
    return batches


def split_by_atoms(counts: list[int], max_atoms: int) -> list[list[int]]:
    batches, batch, n = [], [], 0
    for k, atoms in enumerate(counts):
        if batch and n + atoms > max_atoms:
            batches.append(batch)
            batch, n = [], 0
        batch.append(k)
        n += atoms
    if batch:
        batches.append(batch)
    return batches


def plan_batches(model: OmniNet, structures: list[Atoms],
                 max_atoms: int | None = None) -> list[list[int]]:
    """Indices of ``structures`` per batched graph (see the module docstring)."""
    device = next(model.parameters()).device
    if max_atoms is None and device.type == "cpu":
        max_atoms = CPU_BATCH_ATOMS
    memory = memory_model_for(model)
    budget = free_bytes(device) if memory is not None else None
    if memory is None or budget is None:
        return split_by_atoms([len(a) for a in structures], max_atoms or 1 << 62)
    sizes = structure_sizes(structures, model.config.cutoff)
    return split_by_memory(sizes, memory, SAFETY * budget, max_atoms)


def relaxation_batch_atoms(model: OmniNet, structures: list[Atoms], margin: float = 1.25) -> int:
    """Atoms per batch for a relaxation of ``structures``: planned once, with the widest
    neighbour count grown by ``margin`` (atoms move, cells change)."""
    device = next(model.parameters()).device
    cap = CPU_BATCH_ATOMS if device.type == "cpu" else None
    memory = memory_model_for(model)
    budget = free_bytes(device) if memory is not None else None
    if memory is None or budget is None or not structures:
        return cap or 1 << 62
    width = max(w for _, w in structure_sizes(structures, model.config.cutoff))
    most = max(memory.max_atoms(int(np.ceil(margin * width)), SAFETY * budget),
               max(len(a) for a in structures))
    return min(most, cap) if cap else most


def evaluate_or_split(model: OmniNet, structures: list[Atoms], task: str | None = None,
                      stress: bool = True, stats: dict | None = None, **kwargs) -> list[dict]:
    """``evaluate``, halving the batch on out-of-memory (counted in ``stats["oom_splits"]``)."""
    try:
        return evaluate(model, structures, task, stress, **kwargs)
    except torch.OutOfMemoryError:
        if len(structures) == 1:
            raise
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if stats is not None:
        stats["oom_splits"] = stats.get("oom_splits", 0) + 1
    half = len(structures) // 2
    return (evaluate_or_split(model, structures[:half], task, stress, stats, **kwargs)
            + evaluate_or_split(model, structures[half:], task, stress, stats, **kwargs))


def evaluate_in_batches(model: OmniNet, structures: list[Atoms], task: str | None = None,
                        stress: bool = True, max_atoms: int | None = None,
                        stats: dict | None = None) -> list[dict]:
    """Results of every structure, in order, from batches planned by :func:`plan_batches`."""
    batches = plan_batches(model, structures, max_atoms)
    if stats is not None:
        stats["batches"] = stats.get("batches", 0) + len(batches)
    results: list[dict] = []
    for batch in batches:
        results += evaluate_or_split(model, [structures[k] for k in batch], task, stress, stats)
    return results
