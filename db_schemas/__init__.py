"""pydantic documents of every stored result, their indexes and query helpers.

Imports pydantic, pymatgen (and monty, which pymatgen objects serialize with)
only: no torch, no database driver. ``omni_flows.stores`` applies the index
declarations to a server.
"""

from .adsorption import AdsorptionPlacementDoc, BestAdsorptionDoc, adsorption_energy
from .anomaly import Anomaly, AnomalyKind
from .benchmark import BenchmarkEntry, BenchmarkRunDoc
from .calculation import CalcType, CalculationInput, CalculationOutput, MLIPCalculationDoc
from .document import ResultDoc
from .indexes import COLLECTIONS, RESULT_DOCUMENTS, CollectionSpec, IndexSpec, collection_spec
from .mof import MOFAdsorptionDoc
from .provenance import EnergyReference, Provenance, ReferenceScheme
from .query import QueryError, build_filter, parse_term
from .schema import json_schemas, write_json_schemas
from .slab import SlabDoc, slab_id
from .validation import R2SCANValidationDoc

__all__ = [
    "COLLECTIONS",
    "RESULT_DOCUMENTS",
    "AdsorptionPlacementDoc",
    "Anomaly",
    "AnomalyKind",
    "BenchmarkEntry",
    "BenchmarkRunDoc",
    "BestAdsorptionDoc",
    "CalcType",
    "CalculationInput",
    "CalculationOutput",
    "CollectionSpec",
    "EnergyReference",
    "IndexSpec",
    "MLIPCalculationDoc",
    "MOFAdsorptionDoc",
    "Provenance",
    "QueryError",
    "R2SCANValidationDoc",
    "ReferenceScheme",
    "ResultDoc",
    "SlabDoc",
    "build_filter",
    "collection_spec",
    "json_schemas",
    "parse_term",
    "slab_id",
    "write_json_schemas",
    "adsorption_energy",
]
