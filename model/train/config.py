"""The training configuration, as plain data validated once here.

``TrainConfig.from_dict`` takes the parsed YAML (see ``docs/training.md``); every
field has a documented default, unknown keys are an error so typos never pass
silently. The rest of the training code trusts these objects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import OmniFlowsError

LOSSES = ("mse", "huber", "mae", "l2mae")
OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("none", "onecycle", "cosine")
DTYPES = ("float32", "float64")


class TrainingConfigError(OmniFlowsError, ValueError):
    """A training configuration that cannot be run; the message says which key to fix."""


SOURCES = ("file", "mongodb")


@dataclass
class DatasetConfig:
    """One data set mapped to a task, with its own loss weights (multiplying the global ones).

    ``source: file``: an ASE-readable file (extxyz, db, traj, vasprun.xml, OUTCAR...).
    ``source: mongodb``: documents of the project's database, which the app layer
    (``omni_flows.training_data``) exports to a file and turns into a ``file`` data set;
    this package reads files only.
    """

    path: str | None = None
    task: str = ""
    source: str = "file"
    # mongodb: calculations | adsorption_placements | dft_calculations
    collection: str = "calculations"
    filter: dict = field(default_factory=dict)  # mongodb: query on that collection
    limit: int | None = None  # mongodb: at most this many documents (in _id order)
    # dft_calculations: (slab, adsorbate) targets 'slab_id|adsorbate' (shell wildcards, e.g.
    # '*|O') whose placements are left out (hold_out), or the only placements read (targets)
    hold_out: list[str] = field(default_factory=list)
    targets: list[str] | None = None
    index: str = ":"  # ASE index: which frames of the file
    format: str | None = None  # ASE format; None: guessed from the name
    energy_weight: float = 1.0
    force_weight: float = 1.0
    stress_weight: float = 1.0
    every: int = 1  # keep every n-th frame (thin out relaxation trajectories)

    def __post_init__(self) -> None:
        if not self.task:
            raise TrainingConfigError(f"data set {self.path or self.collection}: give its 'task'")
        if self.source not in SOURCES:
            raise TrainingConfigError(f"data set source {self.source!r}: use one of {SOURCES}")
        if self.source == "file" and not self.path:
            raise TrainingConfigError(
                "data set without 'path': give a file, or 'source: mongodb' with a collection"
            )
        if self.source == "mongodb" and self.path:
            raise TrainingConfigError(
                f"data set from MongoDB has path {self.path!r}: leave it out (the reader sets it)"
            )
        if self.every < 1 or (self.limit is not None and self.limit < 1):
            raise TrainingConfigError("data set 'every' and 'limit' must be at least 1")
        if (self.hold_out or self.targets is not None) and (
            self.source != "mongodb" or self.collection != "dft_calculations"
        ):
            raise TrainingConfigError(
                f"data set {self.path or self.collection}: 'hold_out' and 'targets' select "
                "(slab, adsorbate) targets of DFT validations; use them with source: mongodb, "
                "collection: dft_calculations"
            )
        for name in list(self.hold_out) + list(self.targets or []):
            if not isinstance(name, str) or name.count("|") != 1:
                raise TrainingConfigError(
                    f"data set target {name!r}: write 'slab_id|adsorbate' (a validation's "
                    "system_id; wildcards allowed, e.g. '*|O' for every O target)"
                )


@dataclass
class DataConfig:
    train: list[DatasetConfig]
    valid: list[DatasetConfig] = field(default_factory=list)
    dbs: list[DatasetConfig] = field(default_factory=list)  # domain-bridging set
    dbs_fraction: float = 0.001  # share of DBS samples in every epoch (paper: ~0.1 %)
    cache_dir: str = "graph_cache"  # graphs are built once and memory-mapped from here
    batch_size: int = 4  # structures per optimisation step, over all ranks
    free_atoms_only: bool = True  # forces of FixAtoms-constrained atoms are not fitted
    # batches of energy-only structures (force_weight 0) apart from those with forces: they
    # skip the second-order backward pass (~4x cheaper steps on CPU)
    group_energy_only: bool = False


@dataclass
class ModelSource:
    """Either a checkpoint to start from, or a new network described by ``config``."""

    checkpoint: str | None = None  # pretrained name ("7net-mf-0") or a .safetensors/.pth path
    config: dict | None = None  # ModelConfig fields for a model trained from scratch
    append_tasks: list[dict] = field(default_factory=list)  # [{name: oc20, copy_from: PBE}]
    freeze_universal: bool = False  # fine-tune only the task-specific parameters
    use_statistics: bool | None = (
        None  # shifts/scale/neighbours from data; default: only from scratch
    )
    # task adapters (ModelConfig.adapter_rank): a per-task low-rank correction of the
    # interactions' linear layers, added to the model with B = 0 (every task predicts as
    # before) before append_tasks copies them; 0: none (or the checkpoint's own)
    adapter_rank: int = 0
    adapter_layers: list[int] | None = None  # interaction indices carrying them; None: all

    def __post_init__(self) -> None:
        rank, layers = self.adapter_rank, self.adapter_layers
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
            raise TrainingConfigError(
                f"model.adapter_rank {rank!r}: give a whole number, e.g. 8 (0: no adapters)"
            )
        if layers is not None and not (
            isinstance(layers, list)
            and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in layers)
        ):
            raise TrainingConfigError(
                f"model.adapter_layers {layers!r}: give a list of interaction indices, e.g. "
                "[3, 4], or leave it out for all"
            )


@dataclass
class LossConfig:
    kind: str = "mse"  # mse | huber | mae | l2mae (mean per-atom force-vector norm)
    huber_delta: float = 0.01
    energy_weight: float = 1.0  # per-atom energy, eV/atom (total energy, eV, if not per atom)
    # False: the energy term is the error of the total energy. Adsorption energies are
    # differences of totals of ~46-atom slabs and 2-3-atom molecules; per atom, a molecule's
    # eV weighs (46/2)^2 = 529x a slab's, and the slabs' differences are not fitted
    # (recipes/omni-ads-1.yaml: O* MAE 1.1 eV after 700 energy-only steps on 113 items).
    energy_per_atom: bool = True
    force_weight: float = 1.0  # eV/A
    stress_weight: float = 0.01  # GPa


@dataclass
class RegularizationConfig:
    """Selective L2: lambda/2 * ||W||^2 over task-specific parameters whose name
    contains one of ``groups``. Default: the interaction blocks' task weights only."""

    weight: float = 0.0  # lambda
    groups: list[str] = field(default_factory=lambda: ["interactions."])
    # only these tasks' rows are penalised (e.g. the appended ones, so that the pretrained
    # tasks' weights, which no data set trains, are not pulled to zero); None: every task
    tasks: list[str] | None = None


@dataclass
class OptimConfig:
    optimizer: str = "adam"
    lr: float = 1e-3
    # the universal (shared) parameters learn at lr * this; the task-specific ones at lr
    universal_lr_ratio: float = 1.0
    weight_decay: float = 0.0
    scheduler: str = "none"  # none | onecycle | cosine (with linear warm-up)
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.01
    grad_clip: float | None = 10.0  # max global gradient norm; None: off
    ema_decay: float | None = 0.999  # None: no EMA


@dataclass
class TrainConfig:
    data: DataConfig
    model: ModelSource = field(default_factory=ModelSource)
    loss: LossConfig = field(default_factory=LossConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 10
    max_steps: int | None = None  # stop early after this many optimisation steps
    seed: int = 0
    dtype: str = "float32"
    device: str = "auto"
    threads: int | None = None  # CPU: torch threads (None: torch's default)
    output_dir: str = "train_out"
    checkpoint_every: int = 1  # epochs
    resume: str | None = None  # a trainer state file (state.pt) to continue from
    progress: bool = True

    def __post_init__(self) -> None:
        if self.loss.kind not in LOSSES:
            raise TrainingConfigError(f"loss.kind {self.loss.kind!r}: use one of {LOSSES}")
        if self.optim.optimizer not in OPTIMIZERS:
            raise TrainingConfigError(
                f"optim.optimizer {self.optim.optimizer!r}: use one of {OPTIMIZERS}"
            )
        if self.optim.scheduler not in SCHEDULERS:
            raise TrainingConfigError(
                f"optim.scheduler {self.optim.scheduler!r}: use one of {SCHEDULERS}"
            )
        if self.dtype not in DTYPES:
            raise TrainingConfigError(f"dtype {self.dtype!r}: use one of {DTYPES}")
        if not self.data.train:
            raise TrainingConfigError("data.train is empty: list at least one data set")
        if not 0.0 <= self.data.dbs_fraction < 1.0:
            raise TrainingConfigError("data.dbs_fraction must be in [0, 1)")
        if (self.model.checkpoint is None) == (self.model.config is None):
            raise TrainingConfigError("model: give exactly one of 'checkpoint' or 'config'")
        if not 0.0 < self.optim.universal_lr_ratio <= 1.0:
            raise TrainingConfigError(
                "optim.universal_lr_ratio must be in (0, 1]; to train the task-specific "
                "parameters only, set model.freeze_universal: true"
            )
        if self.data.batch_size < 1 or self.epochs < 1:
            raise TrainingConfigError("data.batch_size and epochs must be at least 1")

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        return _build(cls, raw, "")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_NESTED = {
    ("TrainConfig", "data"): DataConfig,
    ("TrainConfig", "model"): ModelSource,
    ("TrainConfig", "loss"): LossConfig,
    ("TrainConfig", "regularization"): RegularizationConfig,
    ("TrainConfig", "optim"): OptimConfig,
}
_LISTS = {("DataConfig", "train"), ("DataConfig", "valid"), ("DataConfig", "dbs")}


def _build(cls, raw, where: str):
    if not isinstance(raw, dict):
        raise TrainingConfigError(
            f"{where or 'the config'} must be a mapping, got {type(raw).__name__}"
        )
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise TrainingConfigError(
            f"unknown key(s) {unknown} in {where or 'the config'}; known: {sorted(known)}"
        )
    kwargs = {}
    for key, value in raw.items():
        path = f"{where}.{key}" if where else key
        if (cls.__name__, key) in _NESTED:
            value = _build(_NESTED[(cls.__name__, key)], value or {}, path)
        elif (cls.__name__, key) in _LISTS:
            value = [_build(DatasetConfig, v, f"{path}[{i}]") for i, v in enumerate(value or [])]
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise TrainingConfigError(f"{where or 'the config'}: {exc}") from exc
