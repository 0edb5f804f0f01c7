"""Activation functions by name, with e3nn's second-moment normalisation.

e3nn scales every activation so that E[f(z)^2] = 1 for z ~ N(0, 1); SevenNet
inherits that, so the constants must match for the weights to mean the same.
"""

import math

import torch
from e3nn.math import normalize2mom


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.softplus(x) - math.log(2.0)


ACTIVATIONS = {
    "silu": torch.nn.functional.silu,
    "tanh": torch.tanh,
    "ssp": shifted_softplus,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "abs": torch.abs,
}


def activation(name: str):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None


def second_moment_constant(name: str) -> float:
    """The factor e3nn multiplies ``name`` by (1.0 when already normalised)."""
    norm = normalize2mom(activation(name))
    return 1.0 if norm._is_id else float(norm.cst)
