"""Kernel backends, chosen per calculator or Maker: ``"e3nn" | "compile" | "cueq"``.

- ``e3nn``: the default eager implementation (e3nn irreps, dense neighbour-slot
  convolution); runs everywhere.
- ``compile``: ``torch.compile`` of every interaction block with dynamic shapes.
  Same numbers; the first call compiles (minutes on CPU), later calls are faster.
- ``cueq``: the convolutions on cuEquivariance (the ``cueq`` extra,
  ``pip install cuequivariance-torch``; on a GPU also ``cuequivariance-ops-torch-cu12``
  for the CUDA kernels). Same weights and numbers; the kernel is picked from the
  model's device when the backend is applied, so move the model first. Without a
  GPU it runs cuEquivariance's PyTorch reference method, which is not faster.
  The linear layers stay as they are: on a CPU a cuEquivariance linear cannot pay.

Applying a backend changes the model in place; applying another switches back.
"""

import torch

from .errors import OmniFlowsError
from .defaults import BACKENDS  # the one list of names, readable without torch
from .network import OmniNet


class BackendUnavailableError(OmniFlowsError, RuntimeError):
    """A kernel backend that cannot run here."""


def _check_cueq(device: torch.device) -> None:
    from .cueq import cuda_kernels_available, cuet

    if cuet is None:
        raise BackendUnavailableError(
            "backend='cueq' needs cuEquivariance: pip install cuequivariance-torch"
            + (" cuequivariance-ops-torch-cu12" if device.type == "cuda" else "")
            + " (or use backend='e3nn')"
        )
    if device.type == "cuda" and not cuda_kernels_available():
        raise BackendUnavailableError(
            "backend='cueq' on a GPU needs cuEquivariance's CUDA kernels: "
            "pip install cuequivariance-ops-torch-cu12 (or use backend='e3nn')"
        )


def apply_backend(model: OmniNet, backend: str = "e3nn") -> OmniNet:
    if backend not in BACKENDS:
        raise BackendUnavailableError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == getattr(model, "backend", "e3nn") != "cueq":  # cueq: re-pick the kernel
        return model
    if backend == "cueq":
        _check_cueq(next(model.parameters()).device)
    from .cueq import CueqConvolution  # imports without the package; only "cueq" needs it

    for block in model.interactions:
        block.__dict__.pop("forward", None)  # undo an earlier "compile"
        conv = block.convolution
        if isinstance(conv, CueqConvolution):
            # its coefficient buffers did not follow later .to() calls; the radial MLP did
            conv = conv.e3nn.to(next(conv.radial.parameters()))
        block.convolution = CueqConvolution(conv) if backend == "cueq" else conv
        if backend == "compile":
            block.forward = torch.compile(block.forward, dynamic=True)
    model.backend = backend
    return model
