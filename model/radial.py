"""Edge-length features: Bessel basis times a smooth cutoff envelope, and the radial MLP."""

import math

import torch
from torch import nn

from .activations import activation, second_moment_constant


class BesselBasis(nn.Module):
    """(2 / r_c) sin(k_n r) / r with k_n = n pi / r_c, n = 1..num_basis; k_n trainable."""

    def __init__(self, cutoff: float, num_basis: int = 8, trainable: bool = True) -> None:
        super().__init__()
        self.prefactor = 2.0 / cutoff
        freqs = torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi / cutoff
        self.frequencies = nn.Parameter(freqs, requires_grad=trainable)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.frequencies * r) / r


class PolynomialEnvelope(nn.Module):
    """DimeNet's polynomial envelope of degree p: smooth to second order at r_c."""

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        self.cutoff, self.p = cutoff, float(p)
        self.c0 = (p + 1.0) * (p + 2.0) / 2.0
        self.c1 = p * (p + 2.0)
        self.c2 = p * (p + 1.0) / 2.0

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        x = r / self.cutoff
        p = self.p
        return 1 - self.c0 * x.pow(p) + self.c1 * x.pow(p + 1) - self.c2 * x.pow(p + 2)


class XPLOREnvelope(nn.Module):
    """XPLOR switching function: 1 below r_on, smooth switch to 0 at r_c."""

    def __init__(self, cutoff: float, r_on: float) -> None:
        super().__init__()
        if not 0 < r_on < cutoff:
            raise ValueError(f"XPLOR needs 0 < r_on < cutoff, got r_on={r_on}, cutoff={cutoff}")
        self.r_on, self.cutoff = r_on, cutoff

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        rc2, ron2, r2 = self.cutoff**2, self.r_on**2, r * r
        switch = (rc2 - r2) ** 2 * (rc2 + 2 * r2 - 3 * ron2) / (rc2 - ron2) ** 3
        return torch.where(r < self.r_on, torch.ones_like(r), switch)


class RadialMLP(nn.Module):
    """Bias-free MLP from the radial basis to per-edge tensor-product weights.

    Layer i computes act(x @ W_i / sqrt(fan_in)) scaled like e3nn's FullyConnectedNet;
    the last layer has no activation.
    """

    def __init__(self, sizes: list[int], act: str) -> None:
        super().__init__()
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(a, b)) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.act = activation(act)
        self.act_scale = second_moment_constant(act)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations: forward(x) == hidden(x) @ output_weight()."""
        for w in self.weights[:-1]:
            x = self.act(x @ (w / math.sqrt(w.shape[0]))) * self.act_scale
        return x

    def output_weight(self) -> torch.Tensor:
        w = self.weights[-1]
        return w / math.sqrt(w.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x) @ self.output_weight()
