"""Equivariant linear maps between node features (see ``irreps_layout``).

``EquivariantLinear`` mixes channels of equal irrep, like ``e3nn.o3.Linear``
with 1/sqrt(fan_in) normalisation; scalar outputs may also receive a task
one-hot, stored separately as the task-specific ``task_weight``.
``ElementLinear`` is the element-dependent self-connection: a weight matrix per
chemical species, applied by lookup instead of a tensor product with a one-hot.
"""

import math

import torch
from e3nn.o3 import Irreps
from torch import nn

from .irreps_layout import Features, channels


class EquivariantLinear(nn.Module):
    def __init__(
        self,
        irreps_in: Irreps | str,
        irreps_out: Irreps | str,
        num_tasks: int = 0,
        task_norm_width: int = 0,
    ) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = Irreps(irreps_in), Irreps(irreps_out)
        ch_in, self.ch_out = channels(irreps_in), channels(irreps_out)
        self.weight = nn.ParameterDict()
        self.alpha: dict[str, float] = {}
        for ir, m_out in self.ch_out.items():
            m_in = ch_in.get(ir, 0)
            fan_in = m_in + (task_norm_width if ir == "0e" else 0)
            self.alpha[ir] = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
            if m_in:
                self.weight[ir] = nn.Parameter(torch.randn(m_in, m_out))
        self.task_weight = None
        if task_norm_width:
            self.task_weight = nn.Parameter(torch.zeros(num_tasks, self.ch_out.get("0e", 0)))

    def forward(self, x: Features, node_task: torch.Tensor | None = None) -> Features:
        n = next(iter(x.values())).shape[0]
        out = {}
        for ir, m_out in self.ch_out.items():
            if ir in self.weight:
                y = torch.matmul(x[ir], self.weight[ir] * self.alpha[ir])
            else:
                ref = next(iter(x.values()))
                y = ref.new_zeros(n, 2 * int(ir[:-1]) + 1, m_out)
            if ir == "0e" and self.task_weight is not None:
                y = y + (self.task_weight[node_task] * self.alpha[ir]).unsqueeze(1)
            out[ir] = y
        return out


class ElementLinear(nn.Module):
    """x_i -> W[z_i] x_i per irrep; equals e3nn's FullyConnectedTensorProduct(x, onehot(z))."""

    def __init__(self, irreps_in: Irreps | str, irreps_out: Irreps | str, num_species: int) -> None:
        super().__init__()
        ch_in, self.ch_out = channels(irreps_in), channels(irreps_out)
        self.weight = nn.ParameterDict()
        self.alpha: dict[str, float] = {}
        for ir, m_out in self.ch_out.items():
            m_in = ch_in.get(ir, 0)
            if m_in:
                self.weight[ir] = nn.Parameter(torch.randn(num_species, m_in, m_out))
                self.alpha[ir] = 1.0 / math.sqrt(m_in * num_species)

    def forward(self, x: Features, groups: "SpeciesGroups") -> Features:
        out = {}
        for ir, m_out in self.ch_out.items():
            ref = next(iter(x.values()))
            if ir not in self.weight:
                out[ir] = ref.new_zeros(ref.shape[0], 2 * int(ir[:-1]) + 1, m_out)
                continue
            w = self.weight[ir] * self.alpha[ir]
            if len(groups.species) == 1:
                out[ir] = torch.matmul(x[ir], w[groups.species[0]])
                continue
            chunks = x[ir][groups.order].split(groups.counts)
            y = torch.cat([torch.matmul(c, w[s]) for s, c in zip(groups.species, chunks)])
            out[ir] = y[groups.inverse]
        return out


class SpeciesGroups:
    """Nodes sorted by species, so per-species weights apply as a few dense products."""

    def __init__(self, species: torch.Tensor) -> None:
        self.order = torch.argsort(species, stable=True)
        self.inverse = torch.argsort(self.order)
        present, counts = torch.unique_consecutive(species[self.order], return_counts=True)
        self.species = present.tolist()
        self.counts = counts.tolist()
