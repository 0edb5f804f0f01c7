"""The MLIP: a multi-task E(3)-equivariant NequIP-type network (SevenNet-Omni style).

Imports torch, e3nn, ase and numpy only. Public names are loaded lazily so that
``omni_flows.model.errors`` can be imported without torch.
"""

from importlib import import_module

_PUBLIC = {
    "ModelConfig": "config",
    "OmniNet": "network",
    "load_model": "pretrained",
    "available_models": "pretrained",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "OmniCalculator": "calculator",
    "predict": "inference",
    "out_of_domain": "header",
    "AtomGraph": "graph",
    "OmniFlowsError": "errors",
}

__all__ = list(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
