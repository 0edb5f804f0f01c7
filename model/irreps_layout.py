"""How irreps map onto the network's feature tensors.

Node features are a dict ``{ir: tensor of shape (num_nodes, 2l+1, channels)}``
with one entry per distinct irrep (e.g. ``"1o"``). Blocks of an e3nn ``Irreps``
that share an irrep are concatenated along the channel axis in their e3nn order,
so an equivariant linear layer is one matrix product per irrep.
"""

from e3nn.o3 import Irrep, Irreps

Features = dict[str, "torch.Tensor"]  # noqa: F821


def channels(irreps: Irreps | str) -> dict[str, int]:
    """Total multiplicity per distinct irrep, in order of first appearance."""
    out: dict[str, int] = {}
    for mul, ir in Irreps(irreps):
        out[str(ir)] = out.get(str(ir), 0) + mul
    return out


def dim(ir: str) -> int:
    return Irrep(ir).dim


def block_offsets(irreps: Irreps | str) -> list[tuple[str, int, int]]:
    """For each e3nn block: (irrep, channel offset within that irrep's tensor, mul)."""
    seen: dict[str, int] = {}
    out = []
    for mul, ir in Irreps(irreps):
        key = str(ir)
        out.append((key, seen.get(key, 0), mul))
        seen[key] = seen.get(key, 0) + mul
    return out
