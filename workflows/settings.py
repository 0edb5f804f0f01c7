"""The MLIP and relaxation settings of every job: one frozen object, checked once.

``MLIPSettings`` is made at the edge (CLI, a user's script) and validated there
against the single registries: the model's tasks, elements and content hash
from its checkpoint header (no weights read, no torch), the kernel backends and
the optimizers of ``omni_flows.model.defaults``. Makers, jobs and documents then
take it whole; nothing inside checks it again or takes it apart.

``identity()`` is the part that decides a number (model, task, checkpoint
hash, dtype, optimizer, fmax, steps); device and backend give the same numbers
and are recorded in the provenance only.
"""

from typing import Any, Literal

from omni_flows.model.defaults import (
    BACKENDS,
    DEFAULT_FMAX,
    DEFAULT_OPTIMIZER,
    DEFAULT_STEPS,
    OPTIMIZERS,
)
from omni_flows.model.errors import OmniFlowsError, UnknownTaskError
from omni_flows.model.device import check_device
from omni_flows.model.header import checkpoint_header
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import WorkflowInputError

DEFAULT_MODEL = "7net-mf-0"
# the task of a multi-task model when none is given (7net-mf-0: PBE, as MPtrj/OC20 screens)
DEFAULT_TASK = "PBE"


class MLIPSettings(BaseModel):
    """Model, task, device, kernels and relaxation settings shared by every job of a screen.

    ``task`` defaults to PBE for a multi-task model and to none for a single-task one
    (7net-0); a multi-task model given ``task=None`` is refused with its task list.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(DEFAULT_MODEL, description="pretrained name or checkpoint path")
    task: str | None = Field(None, description="task (functional) of a multi-task model")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N, mps")
    backend: str = Field("e3nn", description="kernels: " + ", ".join(BACKENDS) + " (same numbers)")
    dtype: Literal["float32", "float64"] = "float32"
    optimizer: str = Field(DEFAULT_OPTIMIZER, description="one of " + ", ".join(OPTIMIZERS))
    fmax: float = Field(DEFAULT_FMAX, description="eV/A, largest force on a free atom at the end")
    steps: int = Field(DEFAULT_STEPS, description="optimizer step limit of every relaxation")
    checkpoint_hash: str = Field("", description="content hash of the weights (from the header)")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _user_error(exc) from None

    @model_validator(mode="before")
    @classmethod
    def _default_task(cls, data: Any) -> Any:
        if isinstance(data, dict) and "task" not in data:
            header = checkpoint_header(str(data.get("model", DEFAULT_MODEL)))
            data = {**data, "task": DEFAULT_TASK if header.tasks else None}
        return data

    @model_validator(mode="after")
    def _check(self) -> "MLIPSettings":
        header = checkpoint_header(self.model)
        if header.tasks and self.task is None:
            raise UnknownTaskError(f"model {self.model} has several tasks ({', '.join(header.tasks)})"
                                   ": choose one with --task / task=...")
        if not header.tasks and self.task is not None:
            raise UnknownTaskError(f"model {self.model} is single-task: give no task "
                                   f"(not {self.task!r})")
        if header.tasks and self.task not in header.tasks:
            raise UnknownTaskError(f"unknown task {self.task!r}; model {self.model} has tasks "
                                   f"{', '.join(header.tasks)}")
        if self.backend not in BACKENDS:
            raise WorkflowInputError(f"unknown backend {self.backend!r}: use one of "
                                     f"{', '.join(BACKENDS)}")
        if self.optimizer not in OPTIMIZERS:
            raise WorkflowInputError(f"unknown optimizer {self.optimizer!r}: use one of "
                                     f"{', '.join(OPTIMIZERS)}")
        if not self.fmax > 0:
            raise WorkflowInputError(f"fmax must be > 0 eV/A, not {self.fmax}: relaxations "
                                     "would never stop (0.05 is OC20's criterion)")
        if self.steps < 1:
            raise WorkflowInputError(f"steps must be at least 1, not {self.steps}")
        check_device(self.device)  # the one device check (torch only for a GPU)
        if self.checkpoint_hash and self.checkpoint_hash != header.content_hash:
            raise WorkflowInputError(f"checkpoint_hash {self.checkpoint_hash[:12]} is not that of "
                                     f"{self.model} ({header.content_hash[:12]}): the weights "
                                     "changed; make the settings again")
        object.__setattr__(self, "checkpoint_hash", header.content_hash)
        return self

    @property
    def elements(self) -> tuple[str, ...]:
        return checkpoint_header(self.model).species

    def identity(self) -> dict:
        """What decides a number: device and backend give the same numbers and are left out."""
        return {"model": self.model, "task": self.task, "checkpoint": self.checkpoint_hash,
                "dtype": self.dtype, "optimizer": self.optimizer, "fmax": self.fmax,
                "steps": self.steps}

    def check_elements(self, symbols, what: str) -> None:
        """Refuse a structure with elements the model does not know, before any job."""
        unknown = sorted(set(symbols) - set(self.elements))
        if unknown:
            raise WorkflowInputError(f"{what} holds {', '.join(unknown)}, which model "
                                     f"{self.model} was not trained on")


def _user_error(exc: ValidationError) -> OmniFlowsError:
    """The project's error inside pydantic's, or pydantic's type errors in one line."""
    for error in exc.errors():
        inner = (error.get("ctx") or {}).get("error")
        if isinstance(inner, OmniFlowsError):
            return inner
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return WorkflowInputError(f"invalid MLIP settings: {problems}")
