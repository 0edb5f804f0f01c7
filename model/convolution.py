"""The interaction's convolution: a 'uvu' tensor product of neighbour features with
the edge's spherical harmonics, weighted per edge and channel by a radial MLP.

Edges are laid out densely, ``(atom, neighbour slot)`` with zero-padded slots (see
:class:`NeighborSlots`). For a path l1 x l2 -> l3 and a centre atom i,

    out_i[k, u] = sum_{m, a} T_im[a, k] * x_jm[a, u] * w_im[u],

with T_im = CG(l1, l2, l3) contracted with Y_l2(r_im). The radial weight is applied
to the gathered neighbour features, and the sum over neighbours m and input
components a is one batched matrix product per path, so the per-edge messages of
the textbook form (the largest tensors) never exist. Paths whose output the next
layer never reads are not computed.
"""

import math

import torch
from e3nn import o3
from e3nn.o3 import Irrep, Irreps
from torch import nn

from .irreps_layout import Features
from .radial import RadialMLP


def conv_paths(irreps_x: Irreps, irreps_sh: Irreps, keep: set[str]) -> list[tuple[int, int, str]]:
    """(x block, sh block, output irrep) in e3nn instruction order, kept outputs only."""
    paths = []
    for i, (_, ir1) in enumerate(irreps_x):
        for j, (_, ir2) in enumerate(irreps_sh):
            for ir3 in ir1 * ir2:
                if str(ir3) in keep:
                    paths.append((i, j, str(ir3)))
    return paths


class NeighborSlots:
    """Edges (sorted by centre) placed in a dense (num_atoms, max_neighbors) grid."""

    def __init__(self, edge_center: torch.Tensor, edge_neighbor: torch.Tensor, num_atoms: int):
        counts = torch.bincount(edge_center, minlength=num_atoms)
        self.num_atoms = num_atoms
        self.width = int(counts.max()) if edge_center.numel() else 0
        start = torch.cumsum(counts, 0) - counts
        slot = torch.arange(edge_center.numel(), device=edge_center.device) - start[edge_center]
        self.position = edge_center * self.width + slot
        # empty slots point at atom 0; their spherical harmonics are zero, so they add nothing
        self.neighbor = self.pad(edge_neighbor)

    def pad(self, per_edge: torch.Tensor) -> torch.Tensor:
        """(E, ...) -> (num_atoms * width, ...), zeros in empty slots (differentiable)."""
        out = per_edge.new_zeros((self.num_atoms * self.width,) + per_edge.shape[1:])
        return out.index_copy(0, self.position, per_edge)


class Convolution(nn.Module):
    def __init__(
        self,
        irreps_x: Irreps | str,
        irreps_sh: Irreps | str,
        keep: set[str],
        radial_sizes: list[int],
        radial_act: str,
        avg_num_neighbors: float,
    ) -> None:
        super().__init__()
        self.irreps_x, self.irreps_sh = Irreps(irreps_x), Irreps(irreps_sh)
        self.avg_num_neighbors = avg_num_neighbors
        self.paths = conv_paths(self.irreps_x, self.irreps_sh, keep)
        self.sh_dims = [ir.dim for _, ir in self.irreps_sh]

        # Per path a coefficient matrix (2 l2 + 1, (2 l1 + 1)(2 l3 + 1)), with e3nn's
        # 'component' normalisation sqrt(2 l3 + 1) and the division by the average
        # neighbour count folded in.
        self.groups = []
        for i, (mul, ir1) in enumerate(self.irreps_x):
            group_paths = [p for p in self.paths if p[0] == i]
            if not group_paths:
                continue
            for n, (_, j, ir3) in enumerate(group_paths):
                ir2, ir3 = self.irreps_sh[j].ir, Irrep(ir3)
                cg = o3.wigner_3j(ir1.l, ir2.l, ir3.l) * math.sqrt(ir3.dim) / avg_num_neighbors
                self.register_buffer(f"coeff_{i}_{n}", cg.permute(1, 0, 2).reshape(ir2.dim, -1),
                                     persistent=False)
            self.groups.append(dict(block=i, ir=str(ir1), mul=mul, d1=ir1.dim, paths=group_paths))
        num_weights = sum(g["mul"] * len(g["paths"]) for g in self.groups)
        self.radial = RadialMLP(radial_sizes + [num_weights], radial_act)

        # Output irreps: per irrep, the paths' outputs in e3nn's sorted order.
        mid = Irreps([(self.irreps_x[i].mul, ir3) for i, _, ir3 in self.paths])
        self.irreps_out = mid.sort().irreps

    def forward(self, x: Features, sh: torch.Tensor, radial: torch.Tensor, slots: NeighborSlots) -> Features:
        """``sh`` is in slot layout (num_atoms * width, ...); ``radial`` is per edge."""
        n_atoms, width = slots.num_atoms, slots.width
        sh_blocks = sh.split(self.sh_dims, dim=1)
        # The radial MLP's narrow last hidden layer is padded into slots (empty slots get 0,
        # so weight 0: the MLP has no biases), and its output layer is applied per path:
        # each path's weights come out contiguous, and the wide (edges, all paths) weight
        # tensor, its padding and its gradient's concatenation never exist.
        hidden = slots.pad(self.radial.hidden(radial))
        w_out = self.radial.output_weight()
        col = 0
        pieces: dict[str, list[torch.Tensor]] = {}
        for g in self.groups:
            i, d1, mul = g["block"], g["d1"], g["mul"]
            x_j = torch.index_select(x[g["ir"]], 0, slots.neighbor).view(n_atoms, width, d1, mul)
            for n, (_, j, ir3) in enumerate(g["paths"]):
                d3 = Irrep(ir3).dim
                w_p = (hidden @ w_out[:, col : col + mul]).view(n_atoms, width, 1, mul)
                col += mul
                t = (sh_blocks[j] @ getattr(self, f"coeff_{i}_{n}")).view(n_atoms, width * d1, d3)
                y = (x_j * w_p).view(n_atoms, width * d1, mul)
                pieces.setdefault(ir3, []).append(torch.bmm(t.transpose(1, 2), y))
        # paths were visited block by block = e3nn instruction order within each irrep
        return {ir: torch.cat(p, dim=-1) if len(p) > 1 else p[0] for ir, p in pieces.items()}
