"""MongoDB filters from the command line: ``key=value`` / ``key<value`` terms and JSON.

A term is ``FIELD OP VALUE`` with OP one of ``= != < <= > >= ~`` (``~`` is a
regular expression). VALUE is read as JSON when it parses (numbers, true,
false, null, lists: a list with ``=`` means "any of"), as a string otherwise.
Short names stand for provenance fields: ``model``, ``task``, ``checkpoint``,
``uuid``, ``backend``, ``optimizer``, ``device``, ``reference``, and every setting
under ``provenance.settings`` goes by its own name (``fmax``, ``tilt``, ``n_layers``,
``temperature``, ...; ``seed`` is the surface screen's or the MOF screen's). A setting
left out of older results at the value it then always had (``tilt`` 0) matches them
at that value: ``tilt=0`` finds the screens made before tilted starts existed. Every
result has a ``settings_id``; ``settings_id=ab12cd34ef`` selects one screen's.
``model``, ``task``, ``checkpoint`` and ``optimizer`` match where they are stored: in the
settings (under ``mlip``, or at the top for a benchmark) and beside them (older
documents, DFT codes); a JSON filter on ``provenance.model_name`` and its kin is read
the same way (:func:`stored_once`).
"""

import json
import re
from typing import Any

from .errors import SchemaError
from .legacy import IDENTITY_BESIDE_SETTINGS, IN_SETTINGS, LEFT_OUT_AT, identity_of

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
    "uuid": "provenance.jobflow_uuid",
    "backend": "provenance.backend",
    "device": "provenance.device",
    "reference": "provenance.energy_reference.scheme",
    **{name: f"provenance.settings.mlip.{name}" for name in ("dtype", "fmax", "steps")},
    **{name: f"provenance.settings.slab.{name}" for name in (
        "min_slab_size", "min_vacuum_size", "n_layers", "n_fixed_layers", "min_lateral",
        "supercell")},
    **{name: f"provenance.settings.placements.{name}" for name in (
        "n_random", "max_placements", "tilt", "orientations")},
    **{name: f"provenance.settings.free_energy.{name}" for name in (
        "temperature", "pressure", "water_pressure", "displacement", "low_frequency_cm",
        "imaginary_tolerance_cm")},
    **{name: f"provenance.settings.{name}" for name in ("relax_framework_cell", "dispersion")},
}
# a name that stands for a field in either screen's settings: a match in any counts
FIELD_CHOICES = {"seed": ("provenance.settings.placements.seed", "provenance.settings.seed")}
# what made a result, stored once in its settings (legacy.IN_SETTINGS), beside them in
# older documents: a short name, and the Provenance field's own path, match every place
IDENTITY_NAMES = {"model": "model_name", "task": "task", "checkpoint": "checkpoint_hash",
                  "optimizer": "optimizer"}
FIELD_CHOICES.update({
    short: (f"provenance.settings.mlip.{IN_SETTINGS[field]}",
            f"provenance.settings.{IN_SETTINGS[field]}", IDENTITY_BESIDE_SETTINGS[field])
    for short, field in IDENTITY_NAMES.items()})
_IDENTITY_PATHS = {IDENTITY_BESIDE_SETTINGS[field]: short
                   for short, field in IDENTITY_NAMES.items()}
# conditions a missing field meets: over several fields, every one must meet them
_NEGATIVE = {"$ne", "$nin", "$not"}
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


def field_value(doc: Any, path: str) -> Any:
    """The value at a dotted path of a stored document; through a list, the values of its
    elements (as MongoDB reads ``a.b`` through an array); None where absent.
    ``provenance.model_name`` and its kin are read where they are stored (identity_of)."""
    if path in _IDENTITY_PATHS and isinstance(doc, dict):
        return identity_of(doc.get("provenance") or {})[path.removeprefix("provenance.")]
    for part in path.split("."):
        if isinstance(doc, list):
            doc = [item.get(part) for item in doc if isinstance(item, dict)]
        elif isinstance(doc, dict):
            doc = doc.get(part)
        else:
            return None
    return doc


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
    name = match["field"]
    op, raw = match["op"], match["value"].strip()
    if op == "~":
        return _any_of(name, {"$regex": raw})
    value = parse_value(raw)
    if op in _ORDERING and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise QueryError(
            f"cannot compare {name} {op} {raw!r}: {op} needs a number, e.g. "
            f"'{name}{op}-0.5'")
    if isinstance(value, list) and op in ("=", "!="):
        return _any_of(name, {"$in" if op == "=" else "$nin": value})
    return _any_of(name, {MONGO_OPERATORS[op]: value})


def _any_of(name: str, condition: dict[str, Any]) -> dict[str, Any]:
    """``condition`` on the field ``name`` stands for: on any of its fields, and on a
    missing field where the value it was left out at meets the condition."""
    fields = FIELD_CHOICES.get(name) or (FIELD_ALIASES.get(name, name),)
    if len(fields) > 1 and set(condition) & _NEGATIVE:
        return {"$and": [{f: condition} for f in fields]}
    if len(fields) > 1 and ({"$eq": None}.items() <= condition.items()
                            or None in (condition.get("$in") or ())):
        condition = {**condition, "$exists": True}  # null, not absent: one of them is
    clauses = []
    for f in fields:
        if f in LEFT_OUT_AT and _meets(LEFT_OUT_AT[f], condition):
            clauses += [{f: condition}, {f: {"$exists": False}}]
        elif f in LEFT_OUT_AT and set(condition) & {"$ne", "$nin"}:
            # $ne and $nin match a missing field, whose value here is the one excluded
            clauses.append({f: {**condition, "$exists": True}})
        else:
            clauses.append({f: condition})
    if len(clauses) > 1:
        return {"$or": clauses}
    (field, cond), = clauses[0].items()
    return {field: cond["$eq"]} if set(cond) == {"$eq"} else clauses[0]


def _meets(value: Any, condition: dict[str, Any]) -> bool:
    """Whether ``value`` meets a one-operator MongoDB condition (regex: never assumed)."""
    (op, target), = condition.items()
    tests = {"$eq": lambda: value == target, "$ne": lambda: value != target,
             "$lt": lambda: value < target, "$lte": lambda: value <= target,
             "$gt": lambda: value > target, "$gte": lambda: value >= target,
             "$in": lambda: value in target, "$nin": lambda: value not in target}
    try:
        return op in tests and tests[op]()
    except TypeError:  # a number against a string: not met
        return False


def stored_once(criteria: dict[str, Any]) -> dict[str, Any]:
    """A MongoDB filter whose conditions on ``provenance.model_name``, ``.task``,
    ``.checkpoint_hash`` or ``.optimizer`` match them where they are stored (in the
    settings, or beside them in older documents)."""
    kept, rewritten = {}, []
    for key, value in criteria.items():
        if key in ("$and", "$or", "$nor") and isinstance(value, list):
            kept[key] = [stored_once(c) if isinstance(c, dict) else c for c in value]
        elif key in _IDENTITY_PATHS:
            is_operator = isinstance(value, dict) and all(k.startswith("$") for k in value)
            rewritten.append(_any_of(_IDENTITY_PATHS[key], value if is_operator
                                     else {"$eq": value}))
        else:
            kept[key] = value
    if not rewritten:
        return kept
    if "$and" in kept:
        kept["$and"] = [*kept["$and"], *rewritten]
        return kept
    return {**kept, "$and": rewritten} if len(rewritten) > 1 or "$or" in kept else {
        **kept, **rewritten[0]}


def parse_json_filter(text: str) -> dict[str, Any]:
    """A MongoDB filter given as a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QueryError(f"--filter is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise QueryError(f"--filter must be a JSON object, got {type(value).__name__}")
    return stored_once(value)


def build_filter(terms: list[str] = (), json_filter: str | None = None) -> dict[str, Any]:
    """All terms and the JSON filter, combined with AND."""
    clauses = [parse_term(term) for term in terms]
    if json_filter:
        clauses.append(parse_json_filter(json_filter))
    clauses = [c for c in clauses if c]
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
