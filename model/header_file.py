"""The header of a native checkpoint file, read without torch: its format tag and metadata.

A native checkpoint is a safetensors file: 8 bytes (little-endian header length), a JSON
header whose ``__metadata__`` holds the config and the content hash, then the tensors.
"""

from __future__ import annotations

import json
import os
import struct

from .errors import CheckpointError

FORMAT = "omni-flows-checkpoint/1"
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
