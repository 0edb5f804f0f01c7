"""The interaction's convolution on cuEquivariance kernels (``backend="cueq"``).

:class:`CueqConvolution` computes what :class:`~.convolution.Convolution` computes —
the same paths in the same order with the same coefficients (its own Wigner-3j
buffers: 'component' normalisation and 1/avg_num_neighbors folded in) and its own
radial MLP — written as one cuEquivariance segmented polynomial over the edges:

    out[centre] += sum_paths  w_e[u] * C[a, b, k] * x[neighbour][a, u] * Y_e[b]

Operands are in the network's 'ir_mul' layout ((2l+1, channels) per irrep), so
node features go in without transposing. The neighbour gather and the scatter
onto centres are the polynomial's own input and output indices.

On a CUDA device with ``cuequivariance-ops-torch`` it runs as the fused
``uniform_1d`` kernel (channels split into chunks of their common divisor, since
that kernel needs segments of one size); elsewhere it runs cuEquivariance's
pure-PyTorch ``naive`` method, which is for checking, not for speed.
"""

import math

import torch
from e3nn.o3 import Irrep
from torch import nn

from .convolution import Convolution, NeighborSlots
from .irreps_layout import Features

try:
    import cuequivariance as cue
    import cuequivariance_torch as cuet
except ImportError:  # an optional extra: backends.py says how to install it
    cue = cuet = None


def cuda_kernels_available() -> bool:
    try:
        import cuequivariance_ops_torch  # noqa: F401
    except ImportError:
        return False
    return True


def conv_descriptor(conv: Convolution) -> "cue.SegmentedTensorProduct":
    """Operands: radial weights (one segment per path), neighbour features (one per
    irrep block), spherical harmonics (one per l), output (one per path, in path order)."""
    d = cue.SegmentedTensorProduct.from_subscripts("u,iu,j,ku+ijk")
    for mul, ir in conv.irreps_x:
        d.add_segment(1, (ir.dim, mul))
    for _, ir in conv.irreps_sh:
        d.add_segment(2, (ir.dim,))
    for g in conv.groups:  # the radial MLP's output order: block by block, path by path
        i, mul, d1 = g["block"], g["mul"], g["d1"]
        for n, (_, j, ir3) in enumerate(g["paths"]):
            d2, d3 = conv.sh_dims[j], Irrep(ir3).dim
            # Convolution stores C as (d2, d1 * d3); cuEquivariance wants (d1, d2, d3)
            c = getattr(conv, f"coeff_{i}_{n}").detach().double().view(d2, d1, d3).permute(1, 0, 2)
            w = d.add_segment(0, (mul,))
            out = d.add_segment(3, (d3, mul))
            d.add_path(w, i, j, out, c=c.cpu().numpy())
    return d


def kernel_polynomial(d: "cue.SegmentedTensorProduct") -> "cue.SegmentedPolynomial":
    """The same polynomial in the form the ``uniform_1d`` CUDA kernel accepts: scalar
    coefficients (one segment per component) and channel chunks of a common size.
    Both steps keep the memory layout of every operand."""
    flat = d.flatten_coefficient_modes()
    chunk = math.gcd(*flat.get_dims("u"))
    return cue.SegmentedPolynomial.eval_last_operand(flat.split_mode("u", chunk).squeeze_modes())


class CueqConvolution(nn.Module):
    """Drop-in replacement for a :class:`Convolution`, sharing its radial MLP."""

    def __init__(self, conv: Convolution) -> None:
        super().__init__()
        self.irreps_x, self.irreps_out = conv.irreps_x, conv.irreps_out
        self.radial = conv.radial  # the same module: checkpoints load unchanged
        self._e3nn = (conv,)  # a tuple, so not a submodule: kept to switch back
        param = next(conv.radial.parameters())
        d = conv_descriptor(conv)
        if param.device.type == "cuda":
            self.tp = cuet.SegmentedPolynomial(kernel_polynomial(d), method="uniform_1d")
        else:
            self.tp = cuet.SegmentedPolynomial(cue.SegmentedPolynomial.eval_last_operand(d),
                                               method="naive")
        self.tp.to(device=param.device, dtype=param.dtype)
        for module in self.tp.modules():  # constants, not state: the checkpoint hash is unchanged
            module._non_persistent_buffers_set.update(module._buffers)
        # output segments, one per path: (irrep, 2l+1, channels)
        self.out_pieces = [(ir3, Irrep(ir3).dim, g["mul"])
                           for g in conv.groups for _, _, ir3 in g["paths"]]

    @property
    def e3nn(self) -> Convolution:
        return self._e3nn[0]

    def forward(
        self, x: Features, sh: torch.Tensor, radial: torch.Tensor, slots: NeighborSlots
    ) -> Features:
        """Arguments as for :meth:`Convolution.forward`; the edges are taken out of the slots."""
        n_atoms = slots.num_atoms
        center = torch.div(slots.position, max(slots.width, 1), rounding_mode="floor")
        x_flat = torch.cat([x[str(ir)].reshape(n_atoms, -1) for _, ir in self.irreps_x], dim=1)
        sizes = [d3 * mul for _, d3, mul in self.out_pieces]
        if center.numel():
            (out,) = self.tp(
                [self.radial(radial), x_flat, sh.index_select(0, slots.position)],
                input_indices={1: slots.neighbor.index_select(0, slots.position)},
                output_shapes={0: x_flat.new_empty(n_atoms, 1)},
                output_indices={0: center},
            )
        else:  # no edges (cuEquivariance would read an empty index as none); sh.sum() is 0
            # and keeps the edge vectors in the autograd graph, as the forces need
            out = sh.sum() * x_flat.new_zeros(n_atoms, sum(sizes))
        pieces: dict[str, list[torch.Tensor]] = {}
        for (ir3, d3, mul), y in zip(self.out_pieces, out.split(sizes, dim=1)):
            pieces.setdefault(ir3, []).append(y.view(n_atoms, d3, mul))
        return {ir: torch.cat(p, dim=-1) if len(p) > 1 else p[0] for ir, p in pieces.items()}
