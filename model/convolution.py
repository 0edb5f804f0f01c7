"""The interaction's convolution: a 'uvu' tensor product of neighbour features with
the edge's spherical harmonics, weighted per edge and channel by a radial MLP.

For every input irrep l1, all of its paths (l1 x l2 -> l3) are evaluated together:
the spherical harmonics are first contracted with the Clebsch-Gordan coefficients
into one per-edge matrix T_e (l1 -> all l3), then one batched product T_e x_j
gives every output of that input. Paths whose output the next layer never reads
are not computed.
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
        sh_offsets = [0]
        for _, ir in self.irreps_sh:
            sh_offsets.append(sh_offsets[-1] + ir.dim)

        # One group per input block: its coefficient tensor, and where each path's
        # output sits (rows of T) and which radial weights it uses.
        self.groups = []
        weight_offset = 0
        for i, (mul, ir1) in enumerate(self.irreps_x):
            group_paths = [p for p in self.paths if p[0] == i]
            if not group_paths:
                continue
            k_total = sum(Irrep(p[2]).dim for p in group_paths)
            coeff = torch.zeros(self.irreps_sh.dim, ir1.dim, k_total)
            k_of_path, k = [], 0
            for n, (_, j, ir3) in enumerate(group_paths):
                ir2, ir3 = self.irreps_sh[j].ir, Irrep(ir3)
                # e3nn 'component' normalisation: each path scaled by sqrt(2 l3 + 1)
                cg = o3.wigner_3j(ir1.l, ir2.l, ir3.l) * math.sqrt(ir3.dim)
                coeff[sh_offsets[j] : sh_offsets[j + 1], :, k : k + ir3.dim] = cg.permute(1, 0, 2)
                k_of_path.append(k)
                k += ir3.dim
            # dividing by the average neighbour count is folded into the constant coefficients
            coeff = coeff / avg_num_neighbors
            self.register_buffer(f"coeff_{i}", coeff.reshape(self.irreps_sh.dim, -1), persistent=False)
            self.groups.append(
                dict(block=i, ir=str(ir1), mul=mul, d1=ir1.dim, paths=group_paths,
                     k_of_path=k_of_path, k_total=k_total, w_offset=weight_offset)
            )
            weight_offset += mul * len(group_paths)
        self.radial = RadialMLP(radial_sizes + [weight_offset], radial_act)

        # Output irreps: per irrep, the paths' outputs in e3nn's sorted order.
        mid = Irreps([(self.irreps_x[i].mul, ir3) for i, _, ir3 in self.paths])
        self.irreps_out = mid.sort().irreps

    def forward(
        self,
        x: Features,
        sh: torch.Tensor,
        radial: torch.Tensor,
        edge_center: torch.Tensor,
        edge_neighbor: torch.Tensor,
        center_counts: torch.Tensor | None = None,
    ) -> Features:
        """``center_counts`` (edges sorted by centre) enables segment sums, about twice
        as fast as index_add on CPU; training (double backward) uses index_add."""
        use_segments = center_counts is not None and not (self.training and torch.is_grad_enabled())
        num_nodes, num_edges = next(iter(x.values())).shape[0], sh.shape[0]
        # split/unbind rather than slicing: their backward concatenates instead of
        # zero-filling a full-size gradient per slice
        weights = self.radial(radial).split([g["mul"] * len(g["paths"]) for g in self.groups], dim=1)
        pieces: dict[str, list[torch.Tensor]] = {}
        for g, w in zip(self.groups, weights):
            i, d1, mul = g["block"], g["d1"], g["mul"]
            w_paths = w.view(num_edges, len(g["paths"]), mul).unbind(1)
            t = (sh @ getattr(self, f"coeff_{i}")).view(num_edges, d1, g["k_total"])
            x_j = torch.index_select(x[g["ir"]], 0, edge_neighbor)  # (E, d1, mul)
            dims = [Irrep(ir3).dim for _, _, ir3 in g["paths"]]
            if d1 == 1:  # scalar input: an outer product per path, weights applied to x first
                t_paths = t.squeeze(1).split(dims, dim=1)
                msgs = [tp.unsqueeze(-1) * (x_j * wp.unsqueeze(1)) for tp, wp in zip(t_paths, w_paths)]
            else:
                full = torch.bmm(t.transpose(1, 2), x_j).split(dims, dim=1)
                msgs = [m * wp.unsqueeze(1) for m, wp in zip(full, w_paths)]
            for (_, _, ir3), msg in zip(g["paths"], msgs):
                if use_segments:
                    agg = torch.segment_reduce(msg, "sum", lengths=center_counts, axis=0)
                else:
                    agg = msg.new_zeros(num_nodes, msg.shape[1], mul).index_add_(0, edge_center, msg)
                pieces.setdefault(ir3, []).append(agg)
        # paths were visited block by block = e3nn instruction order within each irrep
        return {ir: torch.cat(p, dim=-1) if len(p) > 1 else p[0] for ir, p in pieces.items()}
