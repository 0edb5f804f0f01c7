"""What a checkpoint is, read from its header alone: no torch, no weights.

A native checkpoint is a safetensors file: 8 bytes (little-endian header length),
a JSON header whose ``__metadata__`` holds the config and the content hash, then
the tensors. Reading the header costs microseconds, so settings can be checked
against the model's tasks and elements, and results traced to its hash, without
building the network (loading 7net-mf-0 takes seconds and needs torch).

Also the one registry of the names a user may choose for the kernels and the
relaxation optimizers (their implementations live in ``backends`` and
``batch_relax``, which need torch).
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import CheckpointError

FORMAT = "omni-flows-checkpoint/1"
# the kernel backends of omni_flows.model.backends.apply_backend
BACKENDS = ("e3nn", "compile", "cueq")
# the optimizers of omni_flows.model.batch_relax.relax_batch (ASE's, run per structure)
OPTIMIZERS = ("BFGS", "FIRE")
# a header larger than this is not a checkpoint header (safetensors caps it at 100 MB)
MAX_HEADER_BYTES = 100_000_000


def read_header(path: str | os.PathLike) -> dict:
    """The ``__metadata__`` of a native checkpoint; raises :class:`CheckpointError`."""
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > MAX_HEADER_BYTES:
                raise ValueError(f"header of {size} bytes")
            meta = json.loads(f.read(size)).get("__metadata__") or {}
    except (OSError, ValueError, struct.error) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {exc}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an omni-flows checkpoint (format {meta.get('format')!r})")
    return meta


@dataclass(frozen=True)
class CheckpointHeader:
    """A model as settings see it: name, tasks (empty: single-task), elements, content hash,
    and the rank of its task adapters (0: none)."""

    path: str
    name: str
    content_hash: str
    tasks: tuple[str, ...]
    species: tuple[str, ...]
    cutoff: float
    adapter_rank: int = 0


@lru_cache(maxsize=32)
def checkpoint_header(name_or_path: str) -> CheckpointHeader:
    """The header of a pretrained name or a checkpoint path (a SevenNet ``.pth`` is
    converted once into the native format: that first time needs torch)."""
    from .pretrained import resolve

    path = resolve(name_or_path)
    meta = read_header(path)
    config = json.loads(meta["config"])
    return CheckpointHeader(
        path=str(Path(path)), name=config.get("name") or str(name_or_path),
        content_hash=meta["content_hash"], tasks=tuple(config.get("tasks") or ()),
        species=tuple(config["species"]), cutoff=float(config["cutoff"]),
        adapter_rank=int(config.get("adapter_rank", 0)),
    )
