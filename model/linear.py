"""Equivariant linear maps between node features (see ``irreps_layout``).

``EquivariantLinear`` mixes channels of equal irrep, like ``e3nn.o3.Linear``
with 1/sqrt(fan_in) normalisation; scalar outputs may also receive a task
one-hot, stored separately as the task-specific ``task_weight``.

Task adapters give every task a weight correction of its own: per irrep,
W + A[task] B[task] with A (m_in x r) and B (r x m_out). Like W, the correction
acts on channels only, the same for all 2l+1 components, so the layer stays
equivariant. B starts at zero, so a task with fresh adapters computes exactly
what it computed without them (W + 0 is W, bit for bit), while A, random, lets
the gradient reach B from the first step.
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
        # per irrep: A (tasks, m_in, r) and B (tasks, r, m_out); empty: no adapters
        self.adapter_down = nn.ParameterDict()
        self.adapter_up = nn.ParameterDict()

    @torch.no_grad()
    def add_adapters(self, num_tasks: int, rank: int) -> None:
        """Adapters of rank ``min(rank, m_in, m_out)`` per irrep (that cap is already a full
        correction): A ~ N(0, 1/r), so that A B moves about as fast as W; B = 0."""
        for ir, w in self.weight.items():
            m_in, m_out = w.shape
            r = min(rank, m_in, m_out)
            down = torch.randn(num_tasks, m_in, r, device=w.device).to(w.dtype) / math.sqrt(r)
            self.adapter_down[ir] = nn.Parameter(down)
            self.adapter_up[ir] = nn.Parameter(w.new_zeros(num_tasks, r, m_out))

    def effective_weight(self, ir: str, task: int) -> torch.Tensor:
        """The weight that ``task`` applies to irrep ``ir``: W, or W + A B with adapters."""
        w = self.weight[ir]
        if ir in self.adapter_up:
            w = w + torch.matmul(self.adapter_down[ir][task], self.adapter_up[ir][task])
        return w * self.alpha[ir]

    def forward(
        self,
        x: Features,
        node_task: torch.Tensor | None = None,
        task_groups: "NodeGroups | None" = None,
    ) -> Features:
        """``task_groups`` (nodes grouped by task) is needed only when the layer has adapters."""
        n = next(iter(x.values())).shape[0]
        out = {}
        for ir, m_out in self.ch_out.items():
            if ir in self.adapter_up and len(task_groups.labels) > 1:
                # a batch of several tasks: one product per task's nodes
                chunks = x[ir][task_groups.order].split(task_groups.counts)
                y = torch.cat([torch.matmul(c, self.effective_weight(ir, t))
                               for t, c in zip(task_groups.labels, chunks)])
                y = y[task_groups.inverse]
            elif ir in self.adapter_up:  # one task: one product with its effective weight
                task = task_groups.labels[0] if task_groups.labels else 0
                y = torch.matmul(x[ir], self.effective_weight(ir, task))
            elif ir in self.weight:
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

    def forward(self, x: Features, groups: "NodeGroups") -> Features:
        out = {}
        for ir, m_out in self.ch_out.items():
            ref = next(iter(x.values()))
            if ir not in self.weight:
                out[ir] = ref.new_zeros(ref.shape[0], 2 * int(ir[:-1]) + 1, m_out)
                continue
            w = self.weight[ir] * self.alpha[ir]
            if len(groups.labels) == 1:
                out[ir] = torch.matmul(x[ir], w[groups.labels[0]])
                continue
            chunks = x[ir][groups.order].split(groups.counts)
            y = torch.cat([torch.matmul(c, w[s]) for s, c in zip(groups.labels, chunks)])
            out[ir] = y[groups.inverse]
        return out


class NodeGroups:
    """Nodes sorted by a label (species, task), so per-label weights apply as a few dense
    products."""

    def __init__(self, labels: torch.Tensor) -> None:
        self.order = torch.argsort(labels, stable=True)
        self.inverse = torch.argsort(self.order)
        present, counts = torch.unique_consecutive(labels[self.order], return_counts=True)
        self.labels = present.tolist()
        self.counts = counts.tolist()
