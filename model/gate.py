"""Gated non-linearity: scalars through an activation, l > 0 features scaled by gate scalars."""

from e3nn.o3 import Irreps
from torch import nn

from .activations import activation, second_moment_constant
from .irreps_layout import Features, channels


class Gate(nn.Module):
    """Maps ``irreps_in`` (scalars + gates + gated, e3nn's order) to ``irreps_out``.

    The gate scalars are even if the output has even scalars, odd otherwise, and
    come after the output's own scalars in that irrep's channels.
    """

    def __init__(self, irreps_out: Irreps | str, scalar_act: dict[str, str], gate_act: dict[str, str]):
        super().__init__()
        irreps_out = Irreps(irreps_out)
        self.ch_out = channels(irreps_out)
        self.scalars = {ir: m for ir, m in self.ch_out.items() if ir in ("0e", "0o")}
        self.gated = {ir: m for ir, m in self.ch_out.items() if ir not in ("0e", "0o")}
        self.gate_ir = "0e" if "0e" in self.scalars else "0o"
        gate_in = [(m, ir) for ir, m in self.scalars.items()]
        gate_in += [(m, self.gate_ir) for m in self.gated.values()]  # one gate block per gated
        gate_in += [(m, ir) for ir, m in self.gated.items()]
        self.irreps_in = Irreps(gate_in).simplify()  # as e3nn's Gate: its linear sees merged blocks
        self.acts = {ir: self._act(scalar_act[ir[-1]]) for ir in self.scalars}
        self.gate_act = self._act(gate_act[self.gate_ir[-1]])

    @staticmethod
    def _act(name: str):
        f, c = activation(name), second_moment_constant(name)
        return (lambda x: f(x) * c) if c != 1.0 else f

    def forward(self, x: Features) -> Features:
        out = {ir: self.acts[ir](x[ir][..., :m]) for ir, m in self.scalars.items()}
        if not self.gated:
            return out
        start = self.scalars.get(self.gate_ir, 0)
        gates = self.gate_act(x[self.gate_ir][..., start:])
        offset = 0
        for ir, m in self.gated.items():
            out[ir] = x[ir] * gates[..., offset : offset + m]
            offset += m
        return out
