"""Kernel backends, chosen per calculator or Maker: ``"e3nn" | "compile" | "cueq"``.

- ``e3nn``: the default eager implementation (e3nn irreps, dense neighbour-slot
  convolution); runs everywhere.
- ``compile``: ``torch.compile`` of every interaction block with dynamic shapes.
  Same numbers; the first call compiles (minutes on CPU), later calls are faster.
- ``cueq``: cuEquivariance kernels; not implemented yet, so it fails clearly.
"""

import torch

from .errors import OmniFlowsError
from .network import OmniNet

BACKENDS = ("e3nn", "compile", "cueq")


class BackendUnavailableError(OmniFlowsError, RuntimeError):
    """A kernel backend that cannot run here."""


def apply_backend(model: OmniNet, backend: str = "e3nn") -> OmniNet:
    if backend not in BACKENDS:
        raise BackendUnavailableError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "cueq":
        raise BackendUnavailableError(
            "the cueq backend (cuEquivariance kernels) is not implemented yet; "
            "use backend='e3nn' or 'compile'"
        )
    if backend == "compile" and not getattr(model, "_compiled", False):
        for block in model.interactions:
            block.forward = torch.compile(block.forward, dynamic=True)
        model._compiled = True
    model.backend = backend
    return model
