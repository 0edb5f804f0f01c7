"""A reproducible sampler mixing the training data with the domain-bridging set.

Every epoch is a permutation of all training items plus ``n_dbs`` DBS items drawn
(with replacement) so that they make up ``fraction`` of the epoch, at least one
when the fraction is positive. The permutation depends only on (seed, epoch),
so the sampler's whole state is two integers: resuming is exact, and every DDP
rank sees the same global batches (each takes its own slice of them).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .batch import Item


class MixedSampler:
    def __init__(
        self,
        train: list[Item],
        dbs: list[Item],
        fraction: float,
        batch_size: int,
        seed: int,
        group: Callable[[Item], int] | None = None,
    ) -> None:
        """``group``: batches are drawn within one group of items each (e.g. energy-only
        items apart from those with forces, whose batches cost a second-order pass)."""
        self.train, self.dbs, self.fraction, self.group = train, dbs, fraction, group
        self.batch_size, self.seed = batch_size, seed
        self.epoch, self.cursor = 0, 0  # the state: where the next batch starts
        self._order: tuple[int, list[list[Item]]] | None = None  # (epoch, its items), built once


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

    def epoch_batches(self, epoch: int) -> list[list[Item]]:
        """The epoch's items cut into batches; with ``group``, each batch from one group
        (groups cut in the permutation's order, then the batches shuffled)."""
        items, bs = self.epoch_items(epoch), self.batch_size
        if self.group is None:
            return [items[k : k + bs] for k in range(0, len(items), bs)]
        groups: dict[int, list[Item]] = {}
        for it in items:
            groups.setdefault(self.group(it), []).append(it)
        batches = [g[k : k + bs] for _, g in sorted(groups.items()) for k in range(0, len(g), bs)]
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch + 7)
        return [batches[k] for k in torch.randperm(len(batches), generator=g).tolist()]

    @property
    def batches_per_epoch(self) -> int:
        if self.group is not None:
            return len(self.epoch_batches(self.epoch))
        return math.ceil((len(self.train) + self.num_dbs) / self.batch_size)

    def next_batch(self) -> list[Item] | None:
        """The next global batch of this epoch, or None at its end (then call ``new_epoch``).

        The epoch's permutation is drawn once per epoch (not per batch): O(N) per epoch."""
        if self._order is None or self._order[0] != self.epoch:
            self._order = (self.epoch, self.epoch_batches(self.epoch))
        batches = self._order[1]
        k = self.cursor // self.batch_size  # the state stays (epoch, item position)
        if k >= len(batches):
            return None
        self.cursor += self.batch_size
        return batches[k]

    def new_epoch(self) -> None:
        self.epoch, self.cursor = self.epoch + 1, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.cursor, self.seed = state["epoch"], state["cursor"], state["seed"]
