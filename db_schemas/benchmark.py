"""A benchmark run: a model's predictions on a DFT reference set, with error statistics."""

import math
from typing import Any

from pydantic import BaseModel, Field

from .document import ResultDoc
from .errors import SchemaError
from .identity import settings_id


class BenchmarkEntry(BaseModel):
    """One system of the reference set."""

    system_id: str
    reference: float = Field(description="DFT value")
    predicted: float = Field(description="model value")
    sigma: float | None = Field(None, description="the model committee's calibrated sigma of "
                                "predicted (None: the model's task has no committee)")
    group: str | None = Field(None, description="the subset it is reported in, e.g. its "
                              "adsorbate")


class BenchmarkRunDoc(ResultDoc):
    """Errors of one model on one reference set for one quantity."""

    collection = "benchmarks"
    key_fields = ("dataset", "dataset_hash", "quantity")
    index_fields = ("dataset",)
    summary_fields = (
        "dataset",
        "quantity",
        "n",
        "mae",
        "rmse",
        "max_abs_error",
        "provenance.model_name",
        "provenance.task",
    )

    dataset: str = Field(description="name of the reference set, e.g. 'xu_kitchin_2014'")
    dataset_hash: str = Field(description="content hash of the reference values compared")
    quantity: str = Field(description="e.g. 'adsorption_energy'")
    units: str = "eV"
    n: int
    mae: float
    rmse: float
    max_abs_error: float
    entries: list[BenchmarkEntry] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(
        default_factory=dict, description="the benchmark's own statistics (eV, eV/Angstrom)"
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="how the run was made: mode, selection, splits"
    )

    @classmethod
    def from_entries(cls, entries: list[BenchmarkEntry], **fields) -> "BenchmarkRunDoc":
        """Compute n, MAE, RMSE and the largest error from the entries. The settings id is
        that of ``provenance.settings`` (model, task, checkpoint and the run's parameters):
        a new run names what made it, it gets no legacy id."""
        if not entries:
            raise ValueError("a benchmark run needs at least one entry")
        if "settings_id" not in fields:
            settings = fields["provenance"].settings
            if not settings:
                raise SchemaError("a new benchmark run needs provenance.settings (model, task, "
                                  "checkpoint, parameters): its settings id is made of them")
            fields["settings_id"] = settings_id(settings)
        errors = [e.predicted - e.reference for e in entries]
        return cls(
            entries=entries,
            n=len(errors),
            mae=sum(abs(x) for x in errors) / len(errors),
            rmse=math.sqrt(sum(x * x for x in errors) / len(errors)),
            max_abs_error=max(abs(x) for x in errors),
            **fields,
        )
