"""Accuracy of the MLIP against DFT reference sets (the library behind ``omni-flows benchmark``;
speed and method benchmark scripts live in the top-level ``benchmarks/`` folder).

Each benchmark is one function ``run_<name>(model, task, ...) -> (metrics, entries)``:
a dict of error statistics (eV, eV/Angstrom) and the per-system
:class:`~omni_flows.db_schemas.BenchmarkEntry` pairs that a parity plot shows.
``omni-flows benchmark <name>`` runs them for one or several models, prints a
table, writes the plot and stores a ``BenchmarkRunDoc`` per model.
"""

from .oc20 import run_oc20
from .xu_kitchin import run_xu_kitchin

__all__ = ["run_oc20", "run_xu_kitchin"]
