"""The architecture of an :class:`~omni_flows.model.network.OmniNet`, as plain data.

A config fully determines the network's shapes; weights live in the checkpoint.
It is validated once here; the layers trust it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from e3nn.o3 import Irreps

from .errors import CheckpointError

SELF_CONNECTIONS = ("element", "linear")
ENVELOPES = ("xplor", "polynomial")
TASK_INPUT_SITES = ("node_embedding", "self_interaction_1", "self_interaction_2", "readout")


@dataclass
class ModelConfig:
    """Shapes and hyper-parameters of the network.

    ``node_irreps[0]`` is the embedding (scalars only), ``node_irreps[t + 1]`` the
    output of interaction ``t``; the last one must be scalars only (it feeds the
    readout). ``tasks`` empty means a single-task model.
    """

    species: list[str]
    cutoff: float
    node_irreps: list[str]
    lmax_edge: int
    edge_parity: bool = True  # spherical harmonics of odd l are odd (O(3)) or even (SO(3))
    normalize_edge_sh: bool = True  # harmonics of the unit vector (False: of r, old SevenNet-0)
    num_radial_basis: int = 8
    trainable_radial_frequencies: bool = True
    envelope: str = "polynomial"
    envelope_p: int = 6  # polynomial envelope exponent
    envelope_r_on: float = 0.0  # XPLOR switching start, Angstrom
    radial_mlp_hidden: list[int] = field(default_factory=lambda: [64, 64])
    radial_activation: str = "silu"
    scalar_activation: dict[str, str] = field(default_factory=lambda: {"e": "silu", "o": "tanh"})
    gate_activation: dict[str, str] = field(default_factory=lambda: {"e": "silu", "o": "tanh"})
    self_connection: list[str] = field(default_factory=list)  # per interaction
    avg_num_neighbors: list[float] = field(default_factory=list)  # per interaction
    tasks: list[str] = field(default_factory=list)
    # The task one-hot enters these linear layers as extra scalar inputs.
    task_inputs: list[str] = field(default_factory=list)
    # Width of the task one-hot used for the 1/sqrt(fan_in) normalisation. Fixed when
    # the model is created so that appending a task never rescales existing weights.
    task_norm_width: int = 0
    per_task_scale: bool = False
    readout_hidden: int = 0  # 0: half the dimension of the last node irreps
    name: str = ""
    # Task adapters: a per-task, per-irrep correction W + A[task] B[task] of rank
    # adapter_rank (capped at the layer's channels) on linear_1 and linear_2 of the
    # interactions listed in adapter_layers (None: all). 0: none.
    adapter_rank: int = 0
    adapter_layers: list[int] | None = None
    # Committees (model/committee.py): task -> {"members": [member task names], "scale": s},
    # members being extra task rows "task~1".."task~K" copied from the task and trained
    # on bootstrap resamples of its data; s calibrates their spread. Empty: none.
    committees: dict[str, dict] = field(default_factory=dict)
    # The elements each task's training data held (task -> sorted symbols), so that a screen
    # can flag a result outside them (header.out_of_domain). Empty: not recorded.
    task_elements: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.num_interactions
        if n < 1:
            raise CheckpointError("node_irreps needs at least two entries (embedding and one interaction)")
        if isinstance(self.self_connection, str):
            self.self_connection = [self.self_connection] * n
        if isinstance(self.avg_num_neighbors, (int, float)):
            self.avg_num_neighbors = [float(self.avg_num_neighbors)] * n
        if len(self.self_connection) != n or len(self.avg_num_neighbors) != n:
            raise CheckpointError(
                f"self_connection and avg_num_neighbors need one entry per interaction ({n})"
            )
        for sc in self.self_connection:
            if sc not in SELF_CONNECTIONS:
                raise CheckpointError(f"self_connection {sc!r}: use one of {SELF_CONNECTIONS}")
        if self.envelope not in ENVELOPES:
            raise CheckpointError(f"envelope {self.envelope!r}: use one of {ENVELOPES}")
        for site in self.task_inputs:
            if site not in TASK_INPUT_SITES:
                raise CheckpointError(f"task input site {site!r}: use one of {TASK_INPUT_SITES}")
        if not Irreps(self.node_irreps[0]).lmax == 0 or not Irreps(self.node_irreps[-1]).lmax == 0:
            raise CheckpointError("the first and last node irreps must be scalars")
        if len(set(self.species)) != len(self.species):
            raise CheckpointError("species must be unique")
        self.check_adapters(self.adapter_rank, self.adapter_layers)
        self.check_committees()
        if self.tasks and self.task_norm_width == 0:
            self.task_norm_width = len(self.tasks)
        if not self.readout_hidden:
            self.readout_hidden = Irreps(self.node_irreps[-1]).dim // 2

    @property
    def num_interactions(self) -> int:
        return len(self.node_irreps) - 1

    @property
    def num_species(self) -> int:
        return len(self.species)

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def check_adapters(self, rank: int, layers: list[int] | None) -> None:
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
            raise CheckpointError(f"adapter_rank {rank!r}: give a whole number, 0 (none) or more")
        if rank and not self.tasks:
            raise CheckpointError("task adapters need a multi-task model (tasks is empty)")
        n = self.num_interactions
        if layers is not None and (
            not isinstance(layers, list) or len(set(layers)) != len(layers)
            or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < n for t in layers)
        ):
            raise CheckpointError(
                f"adapter_layers {layers!r}: give distinct interaction indices 0..{n - 1}, or null for all"
            )

    def check_committees(self) -> None:
        for task, record in self.committees.items():
            members = record.get("members") if isinstance(record, dict) else None
            scale = record.get("scale") if isinstance(record, dict) else None
            if (task not in self.tasks or not isinstance(members, list) or len(members) < 2
                    or not set(members) <= set(self.tasks) or task in members
                    or not isinstance(scale, (int, float)) or not scale > 0):
                raise CheckpointError(
                    f"committee of {task!r}: {record!r}; give members (at least 2 other tasks "
                    "of the model) and a scale > 0"
                )
        for task, elements in self.task_elements.items():
            if task not in self.tasks or not set(elements) <= set(self.species):
                raise CheckpointError(
                    f"task_elements of {task!r}: the task and its elements must be the model's"
                )

    def has_adapters(self, interaction: int) -> bool:
        layers = self.adapter_layers
        return self.adapter_rank > 0 and (layers is None or interaction in layers)

    def task_width(self, site: str) -> int:
        """Width of the task one-hot entering ``site`` (0 when it has none)."""
        return self.task_norm_width if (self.tasks and site in self.task_inputs) else 0

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        if not self.adapter_rank:  # left out: a model without adapters keeps its content hash
            del data["adapter_rank"], data["adapter_layers"]
        for key in ("committees", "task_elements"):  # left out when empty, likewise
            if not data[key]:
                del data[key]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise CheckpointError(f"unknown model config keys {sorted(unknown)}")
        return cls(**data)
