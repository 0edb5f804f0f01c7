"""Evaluate structures: many at once, in batches sized by the memory model (``predict``);
one batched graph is :func:`.evaluation.evaluate`."""

from __future__ import annotations

import ctypes
import functools
import sys

from ase import Atoms

from .device import resolve_device  # noqa: F401  (its home before model/device.py)
from .evaluation import evaluate  # noqa: F401  (its home before model/evaluation.py)
from .memory_model import evaluate_in_batches
from .network import OmniNet


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc keep freed memory in the process instead of returning it to the OS.

    A model call allocates and frees tensors of several MB each (per-edge features).
    By default glibc serves such blocks with fresh mmaps and unmaps them when freed,
    so every call pays page faults on zeroed pages: at 100-500 atoms on CPU the
    element-wise kernels ran 2-3x slower than on warm memory. Keeping freed memory
    (as PyTorch's CUDA caching allocator does) makes batched graphs cheaper per atom.
    Blocks above 32 MiB (cells of thousands of atoms) are kept too, by not using mmap
    at all: 2,048 atoms ran in 3.2 s instead of 6.7 s per call, at 10% higher peak.
    The process then holds on to its peak memory. Other C libraries: left alone.

    This changes the allocator of the whole process, so no library call makes it:
    the caller opts in (the ``omni-flows`` CLI does, for the commands that run the
    model). Returns True once the setting holds; calling again changes nothing.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold, m_mmap_max = -1, -3, -4  # glibc's malloc.h
        # 32 MiB is the largest mmap threshold glibc accepts on 64-bit systems;
        # m_mmap_max = 0 keeps even larger blocks on the heap
        return all(libc.mallopt(option, value) for option, value in (
            (m_mmap_threshold, 32 << 20), (m_mmap_max, 0), (m_trim_threshold, 1 << 30)))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


def predict(
    structures: list[Atoms],
    model: OmniNet | str = "7net-mf-0",
    task: str | None = None,
    max_atoms_per_batch: int | None = None,
    device: str = "auto",
    stress: bool = True,
    committee: bool = False,
) -> list[dict]:
    """Evaluate many structures in batched graphs sized by the device's memory
    (see :mod:`.memory_model`; on CPU up to 256 atoms), at most ``max_atoms_per_batch``
    atoms each when given; the numbers equal one-by-one evaluation.

    ``committee=True`` adds ``committee_energies``, the K energies (eV) of ``task``'s
    committee members (:mod:`.committee`), from one more energy-only pass; ``energy`` is
    the same number as without it. A task without a committee raises UnknownTaskError."""
    from .committee import committee_energies
    from .pretrained import load_model

    if not isinstance(model, OmniNet):
        model = load_model(model, device=resolve_device(device))
    if committee:
        model.committee(task)  # no committee: fails before any compute
    results = evaluate_in_batches(model, structures, task, stress, max_atoms_per_batch)
    if committee:
        members = committee_energies(model, structures, task, max_atoms_per_batch)
        for r, energies in zip(results, members):
            r["committee_energies"] = energies.tolist()
    return results
