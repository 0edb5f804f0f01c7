"""What a checkpoint is, read from its header alone: no torch, no weights.

A native checkpoint is a safetensors file: 8 bytes (little-endian header length),
a JSON header whose ``__metadata__`` holds the config and the content hash, then
the tensors. Reading the header costs microseconds, so settings can be checked
against the model's tasks and elements, and results traced to its hash, without
building the network (loading 7net-mf-0 takes seconds and needs torch). The bytes
are read by :mod:`.header_file`, below the name registry (:mod:`.pretrained`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .committee import Committee, committees_of, find_committee, public_tasks
from .header_file import read_header


@dataclass(frozen=True)
class CheckpointHeader:
    """A model as settings see it: name, tasks (empty: single-task; committee members left
    out), elements, content hash, the rank of its task adapters (0: none), its committees
    (task -> :class:`Committee`) and the elements each task was trained on (where recorded)."""

    path: str
    name: str
    content_hash: str
    tasks: tuple[str, ...]
    species: tuple[str, ...]
    cutoff: float
    adapter_rank: int = 0
    committees: dict[str, Committee] = field(default_factory=dict)
    task_elements: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def committee(self, task: str | None) -> Committee:
        """The committee of ``task``; raises UnknownTaskError naming the tasks that have one."""
        return find_committee(self.committees, task, self.name)


@lru_cache(maxsize=32)
def checkpoint_header(name_or_path: str) -> CheckpointHeader:
    """The header of a pretrained name or a checkpoint path (a SevenNet ``.pth`` is
    converted once into the native format: that first time needs torch)."""
    from .pretrained import resolve

    path = resolve(name_or_path)
    meta = read_header(path)
    config = json.loads(meta["config"])
    return CheckpointHeader(
        path=str(Path(path)), name=config.get("name") or str(name_or_path),
        content_hash=meta["content_hash"], tasks=tuple(public_tasks(config.get("tasks") or ())),
        species=tuple(config["species"]), cutoff=float(config["cutoff"]),
        adapter_rank=int(config.get("adapter_rank", 0)),
        committees=committees_of(config.get("committees")),
        task_elements={t: tuple(e) for t, e in (config.get("task_elements") or {}).items()},
    )


def out_of_domain(elements, model: str, task: str | None) -> list[str] | None:
    """The ``elements`` that ``task`` of ``model`` (a name or checkpoint path) was not trained
    on, sorted; None when the checkpoint does not record that task's training elements (7net
    models, omni-ads-0): then nothing can be said, which is not the same as in domain."""
    known = checkpoint_header(str(model)).task_elements.get(task)
    return None if known is None else sorted(set(elements) - set(known))
