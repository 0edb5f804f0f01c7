"""Exponential moving average of the weights, used for evaluation and saved.

The decay ramps up as min(decay, (1 + n) / (10 + n)) over the first updates, so a
short run is not dominated by the initial weights.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model, self.decay, self.updates = model, decay, 0
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters()}

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for n, p in self.model.named_parameters():
            self.shadow[n].lerp_(p.detach(), 1.0 - decay)

    @contextmanager
    def applied(self):
        """Swap the averaged weights in for the duration of the block."""
        saved = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        self._copy(self.shadow)
        try:
            yield self.model
        finally:
            self._copy(saved)

    @torch.no_grad()
    def _copy(self, values: dict[str, torch.Tensor]) -> None:
        for n, p in self.model.named_parameters():
            p.copy_(values[n])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = state["decay"], state["updates"]
        self.shadow = {n: t.clone() for n, t in state["shadow"].items()}
