"""Which devices this machine has: the one check, made before any model is loaded.

``check_device`` imports torch only when a GPU (``cuda``, ``cuda:N``, ``mps``) is
asked for, so settings that name ``auto`` or ``cpu`` validate without torch
(building a Flow needs none). ``resolve_device`` turns the name into a
``torch.device`` after the same check.
"""

from __future__ import annotations

import re

from .errors import DeviceUnavailableError

DEVICES = "auto, cpu, cuda, cuda:N or mps"
DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"


def check_device(device: str) -> str:
    """``device`` if this machine has it; else :class:`DeviceUnavailableError` saying why."""
    name = str(device)
    if not re.match(DEVICE_PATTERN, name):
        raise DeviceUnavailableError(f"unknown device {name!r}; use {DEVICES}")
    if name.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceUnavailableError(
                f"device {name!r}: this machine has no CUDA GPU that torch "
                f"{torch.__version__} can use; choose cpu, or auto (CUDA when present)"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= count:
            raise DeviceUnavailableError(
                f"device {name!r}: this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}"
            )
    elif name == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise DeviceUnavailableError(
                f"device {name!r}: Apple's MPS is not available on this machine; "
                "choose cpu, or auto"
            )
    return name


def resolve_device(device=None):
    """The ``torch.device`` for ``device`` (default and ``auto``: CUDA if present, else CPU)."""
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    name = check_device(device or "auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
