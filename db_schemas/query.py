"""MongoDB filters from the command line: ``key=value`` / ``key<value`` terms and JSON.

A term is ``FIELD OP VALUE`` with OP one of ``= != < <= > >= ~`` (``~`` is a
regular expression). VALUE is read as JSON when it parses (numbers, true,
false, null, lists: a list with ``=`` means "any of"), as a string otherwise.
Short names stand for provenance fields: ``model``, ``task``, ``checkpoint``,
``uuid``, ``backend``, ``optimizer``, ``device``, and for settings: ``fmax``,
``steps``, ``max_placements``, ``n_random``, ``seed``, ``reference``. Every
result has a ``settings_id``; ``settings_id=ab12cd34ef`` selects one screen's.
"""

import json
import re
from typing import Any

from .errors import SchemaError

MONGO_OPERATORS = {
    "=": "$eq",
    "!=": "$ne",
    "<": "$lt",
    "<=": "$lte",
    ">": "$gt",
    ">=": "$gte",
    "~": "$regex",
}

FIELD_ALIASES = {
    "model": "provenance.model_name",
    "task": "provenance.task",
    "checkpoint": "provenance.checkpoint_hash",
    "uuid": "provenance.jobflow_uuid",
    "backend": "provenance.backend",
    "optimizer": "provenance.optimizer",
    "device": "provenance.device",
    "fmax": "provenance.settings.mlip.fmax",
    "steps": "provenance.settings.mlip.steps",
    "max_placements": "provenance.settings.placements.max_placements",
    "n_random": "provenance.settings.placements.n_random",
    "seed": "provenance.settings.placements.seed",
    "reference": "provenance.energy_reference.scheme",
}
# ordering operators compare numbers (or ISO dates given as strings that parse as such)
_ORDERING = ("<", "<=", ">", ">=")

# a dotted field path (no leading '$': operators belong in --filter), the first
# operator after it (two-character ones tried first), then the value
_TERM = re.compile(
    r"^\s*(?P<field>[A-Za-z_@][\w@-]*(?:\.[\w@-]+)*)\s*"
    r"(?P<op><=|>=|!=|<|>|~|=)(?P<value>.*)$"
)


class QueryError(SchemaError):
    """A query term or JSON filter that cannot be read."""


def parse_value(text: str) -> Any:
    """JSON if it parses (3, -0.5, true, null, ["CO","OH"]), the raw string otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_term(term: str) -> dict[str, Any]:
    """One ``FIELD OP VALUE`` term as a MongoDB filter clause."""
    match = _TERM.match(term)
    if match is None:
        raise QueryError(
            f"cannot read query term {term!r}: write FIELD OP VALUE with OP one of "
            f"{' '.join(MONGO_OPERATORS)}, e.g. 'adsorption_energy<-0.5'"
        )
    field = FIELD_ALIASES.get(match["field"], match["field"])
    op, raw = match["op"], match["value"].strip()
    if op == "~":
        return {field: {"$regex": raw}}
    value = parse_value(raw)
    if op in _ORDERING and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise QueryError(
            f"cannot compare {match['field']} {op} {raw!r}: {op} needs a number, e.g. "
            f"'{match['field']}{op}-0.5'")
    if isinstance(value, list) and op in ("=", "!="):
        return {field: {"$in" if op == "=" else "$nin": value}}
    if op == "=":
        return {field: value}
    return {field: {MONGO_OPERATORS[op]: value}}


def parse_json_filter(text: str) -> dict[str, Any]:
    """A MongoDB filter given as a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QueryError(f"--filter is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise QueryError(f"--filter must be a JSON object, got {type(value).__name__}")
    return value


def build_filter(terms: list[str] = (), json_filter: str | None = None) -> dict[str, Any]:
    """All terms and the JSON filter, combined with AND."""
    clauses = [parse_term(term) for term in terms]
    if json_filter:
        clauses.append(parse_json_filter(json_filter))
    clauses = [c for c in clauses if c]
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
