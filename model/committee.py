"""Committees: K task parts over one universal backbone, for an error bar on every energy.

A committee of task T is K extra task rows of the same model, ``T~1`` .. ``T~K``
(:meth:`OmniNet.add_committee`): each starts as a copy of T (``append_task(copy_from=T)``:
it predicts exactly what T predicts) and is then trained alone, universal weights and T
frozen, on a bootstrap resample of T's data (:mod:`.train.committee`). Members thus differ
only in their task part (task weights, per-element shifts, adapters) and T's numbers never
change. The record lives in the model config, and so in the checkpoint header (readable
without torch): ``committees: {T: {"members": [...], "scale": s}}``. Member rows are
hidden from the tasks a user may choose (:func:`public_tasks`).

A reported quantity is computed member by member, e.g.
E_ads,k = E_k(slab+X) - E_k(slab) - sum n_i E_k(gas_i), and its sigma is s times the
members' standard deviation (:func:`spread`). Differences taken within one member cancel
what the member shares between slab and adsorbate: a member that differs from T only by a
per-element shift has T's E_ads exactly (tests/test_committee.py).

Calibration (:func:`fit_scale`): s is fitted on a calibration split so that 95 % of
|error| <= 2 s sigma, i.e. s = (95 % quantile of |error| / sigma) / 2. It targets the share
the issue reports directly; a Gaussian maximum-likelihood scale, s^2 = mean((error/sigma)^2),
is pulled up by the heavy tails of adsorption-energy errors and over-covers.

All members' energies come from one batched pass (:func:`committee_energies`): the
structures replicated K times with the members' task indices in one graph, energies only
(no forces), at the final geometries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import UnknownTaskError

if TYPE_CHECKING:  # numpy and torch are imported where numbers are computed: the header
    import numpy as np  # (model/header.py) reads committees without them
    from ase import Atoms

    from .network import OmniNet

MEMBER_MARK = "~"  # "gpaw_rpbe~3": member 3 of the committee of gpaw_rpbe
COVERAGE = 0.95  # share of |error| within 2 sigma that calibration aims at
WIDTH = 2.0  # ... in units of sigma
# expected shares of a Gaussian at which a reliability diagram is read
RELIABILITY_LEVELS = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (0.99,)


def member_name(task: str, k: int) -> str:
    return f"{task}{MEMBER_MARK}{k}"


def is_member(task: str) -> bool:
    return MEMBER_MARK in task


def public_tasks(tasks) -> list[str]:
    """The tasks a user may choose: committee members left out."""
    return [t for t in tasks if not is_member(t)]


@dataclass(frozen=True)
class Committee:
    task: str
    members: tuple[str, ...]
    scale: float = 1.0  # calibration factor of the members' standard deviation

    @property
    def size(self) -> int:
        return len(self.members)


def committees_of(records: dict) -> dict[str, Committee]:
    """The committees of a model config's ``committees`` record (see the module docstring)."""
    return {task: Committee(task, tuple(r["members"]), float(r["scale"]))
            for task, r in (records or {}).items()}


def find_committee(committees: dict[str, Committee], task: str | None, model: str) -> Committee:
    """The committee of ``task``; an :class:`UnknownTaskError` naming the tasks that have one."""
    if task in committees:
        return committees[task]
    have = ", ".join(sorted(committees)) or "none"
    raise UnknownTaskError(
        f"model {model or '(unnamed)'} has no committee for task {task!r} (tasks with a "
        f"committee: {have}); predict without committee=True, or train one "
        "(omni_flows.model.train.committee.train_committee)"
    )


def spread(member_values, scale: float = 1.0) -> np.ndarray:
    """sigma of each quantity: ``scale`` x the standard deviation (ddof 1) over the members,
    the last axis of ``member_values``."""
    import numpy as np

    return scale * np.std(np.asarray(member_values, dtype=float), axis=-1, ddof=1)


def fit_scale(errors, sigmas, coverage: float = COVERAGE, width: float = WIDTH) -> float:
    """s such that a share ``coverage`` of |error| <= ``width`` s sigma on this (calibration)
    split. Points with sigma = 0 are left out (no scale makes them covered)."""
    import numpy as np

    errors, sigmas = np.abs(np.asarray(errors, float)), np.asarray(sigmas, float)
    keep = sigmas > 0
    if keep.sum() < 2:
        raise ValueError("fit_scale needs at least two points with sigma > 0")
    return float(np.quantile(errors[keep] / sigmas[keep], coverage) / width)


def calibration(errors, sigmas, width: float = WIDTH) -> dict[str, float]:
    """How well sigma describes |error|: the share within ``width`` sigma, Spearman's rank
    correlation of sigma with |error|, and both means."""
    import numpy as np
    from scipy.stats import spearmanr

    errors, sigmas = np.abs(np.asarray(errors, float)), np.asarray(sigmas, float)
    return {
        "n": int(errors.size),
        "share_within": float(np.mean(errors <= width * sigmas)),
        "spearman": float(spearmanr(sigmas, errors).statistic),
        "mae": float(errors.mean()),
        "mean_sigma": float(sigmas.mean()),
    }


def reliability(errors, sigmas, levels=RELIABILITY_LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """A reliability diagram's points: for each expected share p of a Gaussian, the observed
    share of |error| <= z_p sigma with z_p = Phi^-1((1 + p) / 2) (z = 2 at p = 0.954). A
    calibrated sigma lies on the diagonal; below it, sigma is too small."""
    from statistics import NormalDist

    import numpy as np

    errors, sigmas = np.abs(np.asarray(errors, float)), np.asarray(sigmas, float)
    expected = np.asarray(levels, dtype=float)
    z = np.array([NormalDist().inv_cdf((1 + p) / 2) for p in expected])
    observed = (errors[None, :] <= z[:, None] * sigmas[None, :]).mean(axis=1)
    return expected, observed


def committee_energies(model: OmniNet, structures: list[Atoms], task: str,
                       max_atoms: int | None = None) -> np.ndarray:
    """Energies (eV) of every structure for every member of ``task``'s committee, shape
    (structures, K): one forward pass per planned batch, the batch replicated with the
    members' task indices; no forces."""
    import numpy as np
    import torch

    from .graph import AtomGraph, build_graph
    from .memory_model import plan_batches

    rows = [model.task_index(m) for m in model.committee(task).members]  # raises first
    param = next(model.parameters())
    out = np.empty((len(structures), len(rows)))
    for batch in plan_batches(model, structures, max_atoms):
        graph = build_graph([structures[i] for i in batch], model.config.species,
                            model.config.cutoff, 0, dtype=param.dtype).to(param.device)
        k, n, b = len(rows), graph.num_atoms_total, graph.num_graphs
        replicas = AtomGraph(
            positions=graph.positions.repeat(k, 1),
            species=graph.species.repeat(k),
            cell=graph.cell.repeat(k, 1, 1),
            edge_index=torch.cat([graph.edge_index + n * r for r in range(k)], dim=1),
            cell_shifts=graph.cell_shifts.repeat(k, 1),
            batch=torch.cat([graph.batch + b * r for r in range(k)]),
            task=torch.tensor(rows, device=param.device).repeat_interleave(b),
            volume=graph.volume.repeat(k),
        )
        with torch.no_grad():
            energy = model(replicas, compute_forces=False)["energy"]
        out[batch] = energy.view(k, b).T.double().cpu().numpy()
    return out
