"""The native checkpoint: one safetensors file, weights plus the config as metadata.

Loading never unpickles anything. The content hash (sha256 over the config and
every tensor) is stored in the file, checked on load, and recorded with every
result so a number can be traced to the exact weights that made it. Task adapters
are weights like any other (``...adapter_down.<irrep>``, ``...adapter_up.<irrep>``)
and their rank is part of the config; a config without adapters is written as it
was before they existed, so such models keep their content hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import ModelConfig
from .errors import CheckpointError
from .network import OmniNet

FORMAT = "omni-flows-checkpoint/1"


def content_hash(config: ModelConfig, state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(config.to_json().encode())
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def model_hash(model: OmniNet) -> str:
    return content_hash(model.config, model.state_dict())


def save_checkpoint(model: OmniNet, path: str | Path, extra: dict | None = None) -> str:
    """Write ``model`` to ``path`` (.safetensors); returns its content hash."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    digest = content_hash(model.config, state)
    meta = {"format": FORMAT, "config": model.config.to_json(), "content_hash": digest,
            "extra": json.dumps(extra or {})}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.{os.getpid()}.partial")  # unique: concurrent writers never mix
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)  # atomic: a crash never leaves a half-written checkpoint
    return digest


def read_metadata(path: str | Path) -> dict:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an omni-flows checkpoint (format {meta.get('format')!r})")
    return meta


def load_checkpoint(path: str | Path, verify: bool = True) -> OmniNet:
    """Build the model stored at ``path``; ``verify`` re-checks the content hash."""
    meta = read_metadata(path)
    config = ModelConfig.from_dict(json.loads(meta["config"]))
    state = {}
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            state[name] = f.get_tensor(name)
    if verify and content_hash(config, state) != meta["content_hash"]:
        raise CheckpointError(f"{path}: content hash mismatch, the file is corrupted; delete it and re-create it")
    model = OmniNet(config)
    model.load_state_dict(state, strict=True)
    model.checkpoint_hash = meta["content_hash"]
    return model
