"""One batched graph of structures through the model: energies, forces, stress.

Below the memory model (which measures these calls to plan batches) and ``predict``
(which evaluates many structures in planned batches, :mod:`.inference`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

from .graph import build_graph

if TYPE_CHECKING:  # annotations only (network -> committee -> memory_model at run time)
    from .network import OmniNet


def _voigt(s: np.ndarray) -> np.ndarray:
    """3x3 -> ASE's Voigt order (xx, yy, zz, yz, xz, xy)."""
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def evaluate(
    model: OmniNet,
    structures: list[Atoms],
    task: str | None = None,
    stress: bool = True,
    virials: bool = False,
) -> list[dict[str, np.ndarray | float]]:
    """Energy, per-atom energies, forces and (for cells with volume) stress of each
    structure, from one batched graph. Units: eV, eV/A, eV/A^3 (ASE sign)."""
    task_idx = model.task_index(task)  # raises before any tensor work
    param = next(model.parameters())
    graph = build_graph(structures, model.config.species, model.config.cutoff, task_idx,
                        dtype=param.dtype).to(param.device)
    out = model(graph, compute_forces=True, compute_stress=stress, compute_virials=virials)
    counts = np.bincount(graph.batch.cpu().numpy(), minlength=len(structures))
    ends = np.cumsum(counts)
    arrays = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in out.items()}
    results = []
    for g, atoms in enumerate(structures):
        sl = slice(ends[g] - counts[g], ends[g])
        r: dict = {"energy": float(arrays["energy"][g]), "energies": arrays["energies"][sl],
                   "forces": arrays["forces"][sl]}
        volume = float(graph.volume[g])
        if stress and volume > 0:
            r["stress"] = _voigt(arrays["stress"][g])
        if virials:
            r["virials"] = arrays["virials"][sl]
            if volume > 0:
                r["stresses"] = np.array([_voigt(-w / volume) for w in r["virials"]])
        results.append(r)
    return results
