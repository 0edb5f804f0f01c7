"""The base of every stored result document.

A result document knows the collection it lives in, the fields that identify
it (its natural key, so that re-running a flow replaces rather than
duplicates), the extra indexes its queries need and the columns a table of it
shows. The natural key is the system's fields and the settings id: the id hashes
the model, task and checkpoint with every other setting (and a legacy id hashes
them too), so they are stored once, in ``provenance.settings``, not again in the key.
"""

from datetime import datetime
from typing import Any, ClassVar

from monty.json import jsanitize
from pydantic import BaseModel, Field, computed_field, model_validator

from . import legacy
from .anomaly import Anomaly
from .identity import SETTINGS_ID_LENGTH
from .provenance import Provenance, utcnow

class ResultDoc(BaseModel):
    """Fields shared by all results; subclasses set the class variables."""

    collection: ClassVar[str]
    key_fields: ClassVar[tuple[str, ...]]  # what identifies the system, besides settings_id
    index_fields: ClassVar[tuple[str, ...]] = ()  # single-field indexes for common queries
    summary_fields: ClassVar[tuple[str, ...]] = ()  # default columns of `omni-flows query`

    provenance: Provenance
    settings_id: str = Field(
        "", description=f"{SETTINGS_ID_LENGTH} hex characters naming the settings that made "
        "this number (db_schemas.identity); other settings, another result",
    )
    anomalies: list[Anomaly] = Field(default_factory=list)
    last_updated: datetime = Field(default_factory=utcnow)

    @computed_field  # stored, so that `valid=true` is a query
    @property
    def valid(self) -> bool:
        """True when no anomaly was flagged (subclasses add convergence)."""
        return not self.anomalies

    @classmethod
    def natural_key(cls) -> tuple[str, ...]:
        """Dotted field paths whose values identify one result in its collection."""
        return cls.key_fields + ("settings_id",)

    @model_validator(mode="before")
    @classmethod
    def _legacy_settings_id(cls, data: Any) -> Any:
        """A document stored before settings ids existed reads with its legacy id."""
        return legacy.with_settings_id(data) if isinstance(data, dict) else data

    def to_document(self) -> dict[str, Any]:
        """The BSON-ready dict stored in MongoDB (pymatgen objects as their dicts)."""
        # as jobflow stores job outputs: enums as their values, so `kind=desorption` matches
        doc = jsanitize(self, strict=True, allow_bson=True, enum_values=True)
        for tag in ("@module", "@class", "@version"):
            doc.pop(tag, None)
        return doc
