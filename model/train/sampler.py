"""A reproducible sampler mixing the training data with the domain-bridging set.

Every epoch is a permutation of all training items plus ``n_dbs`` DBS items drawn
(with replacement) so that they make up ``fraction`` of the epoch, at least one
when the fraction is positive. The permutation depends only on (seed, epoch),
so the sampler's whole state is two integers: resuming is exact, and every DDP
rank sees the same global batches (each takes its own slice of them).
"""

from __future__ import annotations

import math

import torch

from .batch import Item


class MixedSampler:
    def __init__(
        self, train: list[Item], dbs: list[Item], fraction: float, batch_size: int, seed: int
    ) -> None:
        self.train, self.dbs, self.fraction = train, dbs, fraction
        self.batch_size, self.seed = batch_size, seed
        self.epoch, self.cursor = 0, 0  # the state: where the next batch starts
        self._order: tuple[int, list[Item]] | None = None  # (epoch, its items), built once


    @property
    def num_dbs(self) -> int:
        if not self.dbs or self.fraction <= 0:
            return 0
        return max(1, round(self.fraction / (1 - self.fraction) * len(self.train)))

    def epoch_items(self, epoch: int) -> list[Item]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        extra = (
            torch.randint(len(self.dbs), (self.num_dbs,), generator=g).tolist()
            if self.num_dbs
            else []
        )
        items = self.train + [self.dbs[k] for k in extra]
        return [items[k] for k in torch.randperm(len(items), generator=g).tolist()]

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil((len(self.train) + self.num_dbs) / self.batch_size)

    def next_batch(self) -> list[Item] | None:
        """The next global batch of this epoch, or None at its end (then call ``new_epoch``).

        The epoch's permutation is drawn once per epoch (not per batch): O(N) per epoch."""
        if self._order is None or self._order[0] != self.epoch:
            self._order = (self.epoch, self.epoch_items(self.epoch))
        items = self._order[1]
        if self.cursor >= len(items):
            return None
        batch = items[self.cursor : self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return batch

    def new_epoch(self) -> None:
        self.epoch, self.cursor = self.epoch + 1, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.cursor, self.seed = state["epoch"], state["cursor"], state["seed"]
