"""torchrun / DDP plumbing: process group from the environment and sum-reductions.

Without a process group every helper degrades to the single-process identity,
so the trainer has one code path.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env(device: torch.device) -> None:
    """Join the process group torchrun describes (WORLD_SIZE > 1); gloo on CPU, nccl on GPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (in place and returned)."""
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if active():
        dist.barrier()
