"""Which collections exist, their indexes and their natural unique keys.

Pure declarations: ``omni_flows.stores`` applies them to a server. The unique
index on a collection's natural key is what turns a re-run into an update:
writers upsert on that key, and the server refuses a second copy.
"""

from dataclasses import dataclass

from .adsorption import AdsorptionPlacementDoc, BestAdsorptionDoc
from .benchmark import BenchmarkRunDoc
from .calculation import MLIPCalculationDoc
from .document import ResultDoc
from .gpaw_validation import DFTCalculationDoc, GPAWValidationDoc
from .mof import MOFAdsorptionDoc
from .slab import SlabDoc
from .validation import R2SCANValidationDoc

RESULT_DOCUMENTS: tuple[type[ResultDoc], ...] = (
    MLIPCalculationDoc,
    SlabDoc,
    AdsorptionPlacementDoc,
    BestAdsorptionDoc,
    MOFAdsorptionDoc,
    R2SCANValidationDoc,
    BenchmarkRunDoc,
    DFTCalculationDoc, GPAWValidationDoc,
)

# jobflow's own collections: job outputs (key: uuid + index) and their GridFS blobs
JOB_OUTPUTS = "outputs"
JOB_BLOBS = "outputs_blobs"

# indexes every result collection has: trace back to the job, sort by time, select a model
COMMON_INDEX_FIELDS = ("provenance.jobflow_uuid", "last_updated", "valid", "settings_id")


@dataclass(frozen=True)
class IndexSpec:
    """One index: ascending on ``fields`` (compound when several)."""

    fields: tuple[str, ...]
    unique: bool = False

    @property
    def name(self) -> str:
        # one unique index per collection: name it for what it is, not its (long) fields
        return "natural_key" if self.unique else "_".join(self.fields)


@dataclass(frozen=True)
class CollectionSpec:
    """A collection, the document it holds (None for jobflow's) and its indexes."""

    name: str
    indexes: tuple[IndexSpec, ...]
    document: type[ResultDoc] | None = None

    @property
    def natural_key(self) -> tuple[str, ...]:
        return next(ix.fields for ix in self.indexes if ix.unique)


def _result_spec(doc: type[ResultDoc]) -> CollectionSpec:
    singles = dict.fromkeys(doc.index_fields + COMMON_INDEX_FIELDS)  # ordered, deduplicated
    indexes = (
        IndexSpec(doc.natural_key(), unique=True),
        # the model and task where they are stored: in the settings, beside them in older
        # documents (legacy.IDENTITY_BESIDE_SETTINGS); a query matches either (query.py)
        IndexSpec(("provenance.settings.mlip.model", "provenance.settings.mlip.task")),
        IndexSpec(("provenance.model_name", "provenance.task")),
        *(IndexSpec((field,)) for field in singles),
    )
    return CollectionSpec(doc.collection, indexes, doc)


COLLECTIONS: tuple[CollectionSpec, ...] = (
    CollectionSpec(
        JOB_OUTPUTS,
        (
            IndexSpec(("uuid", "index"), unique=True),
            IndexSpec(("name",)),
            IndexSpec(("completed_at",)),
        ),
    ),
    # GridFSStore keeps its key in the files' metadata; put-then-delete, so not unique
    CollectionSpec(
        f"{JOB_BLOBS}.files",
        (IndexSpec(("metadata.blob_uuid",)), IndexSpec(("metadata.job_uuid",))),
    ),
    *(_result_spec(doc) for doc in RESULT_DOCUMENTS),
)


def collection_spec(name: str) -> CollectionSpec | None:
    """The declared spec of collection ``name``, or None if it is not one of ours."""
    return next((spec for spec in COLLECTIONS if spec.name == name), None)


def document_for_class(class_name: str) -> type[ResultDoc] | None:
    """The result document class called ``class_name`` (a jobflow output's ``@class``)."""
    return next((doc for doc in RESULT_DOCUMENTS if doc.__name__ == class_name), None)
