"""Queries of stored results that follow the domain's rules, below the CLI.

The CLI parses, calls these and renders; it holds no MongoDB call. Each
function here states the rule it applies to the stored documents:

- the newest document wins where a key was stored more than once (``latest``);
- DFT validation compares one adsorbate per cell: results of a coverage screen
  (``--coverage`` N > 1) are left out (``ONE_PER_CELL``);
- a result's clean slab and gas molecules are those made with the same model,
  task and checkpoint; for the GPAW check, the clean slab whose energy the
  placements' E_ads were made with, and the gas molecule whose energy is the
  screen's reference (matched by label and energy, else the newest).

Every function takes the database (``omni_flows.stores.connect_database``).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass

from pymongo.database import Database
from pymongo.errors import OperationFailure

from omni_flows.db_schemas import (
    AdsorptionPlacementDoc,
    BestAdsorptionDoc,
    MLIPCalculationDoc,
    ReferenceScheme,
    SlabDoc,
)
from omni_flows.db_schemas.indexes import JOB_OUTPUTS, collection_spec
from omni_flows.db_schemas.legacy import identity_of
from omni_flows.db_schemas.query import QueryError, build_filter, stored_once
from omni_flows.errors import UnknownCollectionError
from omni_flows.model.errors import OmniFlowsError

# documents from before coverage existed have no field: one adsorbate per cell
ONE_PER_CELL = {"coverage": {"$in": [1, None]}}
# what names the model of a stored result (its settings id hashes more)
MODEL_FIELDS = ("model_name", "task", "checkpoint_hash")
# what made a result, stored in its settings (legacy.IN_SETTINGS)
IDENTITY_FIELDS = (*MODEL_FIELDS, "optimizer")
# eV: a stored gas molecule is the screen's reference when their energies agree this well
SAME_ENERGY = 1e-6
# documents `omni-flows query` shows unless --limit says otherwise
QUERY_LIMIT = 50


# how validation orders the stored results: the screen's answer (lowest E_ads) first, or
# those the committee is least sure of (largest sigma) first, the points DFT teaches most
SELECTIONS = {"lowest": "lowest E_ads", "uncertain": "largest sigma"}
DEFAULT_SELECTION = "lowest"


class SelectionError(OmniFlowsError, ValueError):
    """A --select that names no known order, or lacks the count it needs."""


class ResultsNotFoundError(OmniFlowsError, LookupError):
    """The stored results a command needs are not in the database."""

    def __str__(self) -> str:  # LookupError would quote the whole message
        return str(self.args[0]) if self.args else ""


def latest(db: Database, collection: str, criteria: dict) -> dict | None:
    """The newest document of ``collection`` that matches, without its ``_id``."""
    found = list(db[collection].find(criteria, {"_id": 0}).sort("last_updated", -1).limit(1))
    return found[0] if found else None


def _same_model(provenance) -> dict:
    """The criteria that select documents made with the model of ``provenance`` (a stored
    dict or a Provenance), wherever a document stores it (``query.stored_once``)."""
    made_by = identity_of(provenance) if isinstance(provenance, dict) else {
        k: getattr(provenance, k) for k in MODEL_FIELDS}
    return stored_once({f"provenance.{k}": made_by[k] for k in MODEL_FIELDS})


def _no_results(what: str, model: str, adsorbates: list[str] | None) -> ResultsNotFoundError:
    return ResultsNotFoundError(
        f"no {what} of model {model}" + (f" for {', '.join(adsorbates)}" if adsorbates else "")
        + ": run `omni-flows screen surfaces ...` first, or give the screen's --model")


def best(db: Database, settings_id: str, structures: bool = False) -> list[dict]:
    """The stored best placements (adsorption_best) of one settings id; without their
    final structures unless ``structures``."""
    projection = {"_id": 0} if structures else {"_id": 0, "final_structure": 0}
    return list(db[BestAdsorptionDoc.collection].find({"settings_id": settings_id}, projection))


def best_matching(db: Database, criteria: dict) -> list[dict]:
    """Every stored best placement that matches a MongoDB filter (``build_filter``)."""
    return list(db[BestAdsorptionDoc.collection].find(criteria, {"_id": 0}))


def mof_results(db: Database, settings_id: str, frameworks: Iterable[str],
                guests: Iterable[str]) -> list[dict]:
    """The stored MOF placements of one settings id, of these frameworks and guests."""
    return list(db["mof_adsorption"].find(
        {"settings_id": settings_id, "framework_id": {"$in": list(frameworks)},
         "guest": {"$in": list(guests)}}, {"_id": 0, "final_structure": 0}))


def gpaw_validations_of(db: Database, slab_ids: Iterable[str]) -> list[dict]:
    """Which (slab, adsorbate) of these slabs GPAW has validated: slab id, adsorbate, the
    screen's settings id and the DFT code of each stored validation."""
    return list(db["dft_validation"].find(
        {"slab_id": {"$in": sorted(set(slab_ids))}},
        {"_id": 0, "slab_id": 1, "adsorbate": 1, "screen_settings_id": 1, "dft_code": 1}))


def jobs_done(store, uuids: list[str]) -> int:
    """How many outputs of these jobs a jobflow JobStore holds."""
    return store.docs_store.count({"uuid": {"$in": uuids}})


def documents_of_jobs(db: Database, collection: str, uuids: list[str]) -> list[dict]:
    """The documents the jobs ``uuids`` made, in the order of ``uuids``."""
    found = {d["provenance"]["jobflow_uuid"]: d for d in db[collection].find(
        {"provenance.jobflow_uuid": {"$in": uuids}}, {"_id": 0})}
    return [found[u] for u in uuids if u in found]


def _nested(a: str, b: str) -> bool:
    """Whether one dotted path is the other or inside it (MongoDB refuses both in one
    projection)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def query(db: Database, collection: str, criteria: dict, columns: list[str] | None = None,
          sort: str | None = None, limit: int = 0) -> list[dict]:
    """Documents of any collection: ``columns`` (dotted paths) only if given, ``sort`` a
    field ('-field' descending), at most ``limit`` (0: all). An unknown collection is
    refused with the known ones."""
    if collection_spec(collection) is None and collection not in db.list_collection_names():
        known = sorted(set(db.list_collection_names()) | {JOB_OUTPUTS})
        raise UnknownCollectionError(f"no collection {collection!r}; known: {', '.join(known)}")
    projection = {c: 1 for c in columns or []}
    asks_identity = any(f"provenance.{k}" in projection for k in IDENTITY_FIELDS)
    if asks_identity and not any(_nested(c, "provenance.settings") for c in projection):
        projection["provenance.settings"] = 1  # where they are stored (query.field_value)
    cursor = db[collection].find(criteria, {"_id": 0, **projection})
    if sort:
        cursor = cursor.sort(sort.lstrip("-"), -1 if sort.startswith("-") else 1)
    try:
        return list(cursor.limit(limit))
    except OperationFailure as exc:
        if exc.code in (13, 18):  # no or wrong credential: the database's own message
            raise
        reason = (exc.details or {}).get("errmsg") or str(exc)
        raise QueryError(f"the database cannot run the filter {json.dumps(criteria)}: "
                         f"{reason}") from None


@dataclass(frozen=True)
class Found:
    """What ``omni-flows query`` found: the documents, the columns to show (the
    collection's summary fields unless asked), the filter and the limit applied."""

    docs: list[dict]
    columns: list[str]
    criteria: dict
    limit: int


def find_documents(collection: str, terms: list[str] | None = None, filter_json: str | None = None,
                   fields: str | None = None, sort: str | None = None, limit: int | None = None,
                   settings=None) -> Found:
    """Documents of ``collection`` matching the terms (``FIELD OP VALUE``) and a JSON filter
    (AND), ``fields`` comma-separated dotted paths, at most ``limit`` (None:
    :data:`QUERY_LIMIT`, 0: all); the input checked before the database is reached."""
    from omni_flows.stores import connect_database

    limit = QUERY_LIMIT if limit is None else limit
    if limit < 0:
        raise QueryError(f"--limit must be 0 (all documents) or more, not {limit}")
    criteria = build_filter(terms or [], filter_json)
    columns = [f.strip() for f in fields.split(",")] if fields else None
    docs = query(connect_database(settings), collection, criteria, columns, sort, limit)
    if columns is None:
        spec = collection_spec(collection)
        summary = spec.document.summary_fields if spec and spec.document else ()
        columns = list(summary) or list(dict.fromkeys(k for d in docs for k in d))
    return Found(docs, columns, criteria, limit)


def check_selection(select: str | None, systems: int | None = None,
                    gpaw: bool = False) -> str:
    """``select`` (None: :data:`DEFAULT_SELECTION`), refused before any database or compute
    when unknown; with GPAW, ``uncertain`` needs ``systems`` (how many results)."""
    select = select or DEFAULT_SELECTION
    if select not in SELECTIONS:
        raise SelectionError(f"--select {select!r}: use "
                             + " or ".join(f"{k} ({v} first)" for k, v in SELECTIONS.items()))
    if gpaw and select == "uncertain" and systems is None:
        raise SelectionError("--select uncertain --dft gpaw: give --systems K, how many (slab, "
                             "adsorbate) of largest sigma to validate (--top is the number of "
                             "placements of each)")
    return select


def ranked_for_validation(docs: list, select: str, model: str) -> list:
    """``docs`` (best placements, dicts or documents) in the order ``select`` names:
    lowest E_ads first, or largest sigma first (results without a sigma left out; none
    with a sigma is refused: the screen had no committee)."""
    if select == "lowest":
        return sorted(docs, key=lambda d: _field(d, "adsorption_energy"))
    with_sigma = [d for d in docs if _field(d, "adsorption_energy_std") is not None]
    if docs and not with_sigma:
        raise ResultsNotFoundError(
            f"--select uncertain: no stored result of model {model} has a sigma "
            "(adsorption_energy_std); screen with a model whose task has a committee, or "
            "use --select lowest")
    return sorted(with_sigma, key=lambda d: -_field(d, "adsorption_energy_std"))


def _field(doc, name: str):
    return doc.get(name) if isinstance(doc, dict) else getattr(doc, name, None)


def validation_results(db: Database, top: int, adsorbates: list[str] | None, model: str,
                       select: str = DEFAULT_SELECTION) -> list[dict]:
    """The ``top`` valid best placements made with ``model``, one adsorbate per cell, in
    the order ``select`` names (:func:`ranked_for_validation`)."""
    criteria = stored_once({"valid": True, "provenance.model_name": model, **ONE_PER_CELL})
    if adsorbates:
        criteria["adsorbate"] = {"$in": list(adsorbates)}
    found = list(db[BestAdsorptionDoc.collection].find(criteria, {"_id": 0}))
    if not found:
        raise _no_results("valid adsorption_best results", model, adsorbates)
    return ranked_for_validation(found, select, model)[:top]


def validation_targets(db: Database, top: int, adsorbates: list[str] | None,
                       model: str, select: str = DEFAULT_SELECTION) -> list:
    """The ``top`` results of :func:`validation_results` as r2SCAN
    :class:`ValidationTarget` s (with their slab and gas molecules)."""
    from omni_flows.workflows.thermo.references import molecules_needed
    from omni_flows.workflows.flows.validation import ValidationTarget

    found = validation_results(db, top, adsorbates, model, select)
    targets = []
    for doc in found:
        same_model = _same_model(doc["provenance"])
        slab = latest(db, SlabDoc.collection, {"slab_id": doc["slab_id"], **same_model})
        if slab is None:
            raise ResultsNotFoundError(f"the slab {doc['slab_id']} of a stored result is "
                                       "missing from the database; run its screen again")
        scheme = ReferenceScheme(doc["provenance"]["energy_reference"]["scheme"])
        gas = {}
        for name in molecules_needed([doc["adsorbate"]], scheme):
            molecule = latest(db, MLIPCalculationDoc.collection,
                              {"label": f"{name}(g)", **same_model})
            if molecule is not None:
                gas[name] = molecule
        targets.append(ValidationTarget.from_documents(doc, slab, gas))
    return targets


def newest_per_result(docs: Iterable[BestAdsorptionDoc]) -> list[BestAdsorptionDoc]:
    """One per (slab, adsorbate, settings id, task, checkpoint): the newest."""
    seen, chosen = set(), []
    for doc in sorted(docs, key=lambda d: d.last_updated, reverse=True):
        p = doc.provenance
        name = (doc.slab_id, doc.adsorbate, doc.settings_id, p.task, p.checkpoint_hash)
        if name not in seen:
            seen.add(name)
            chosen.append(doc)
    return chosen


def screen_gas_molecule(db: Database, name: str, provenance) -> MLIPCalculationDoc | None:
    """The stored relaxed gas molecule ``name`` of a screen: the one whose energy is the
    screen's gas reference, else the newest of the same model (None if there is none)."""
    found = list(db[MLIPCalculationDoc.collection].find(
        {"label": f"{name}(g)", **_same_model(provenance)}, {"_id": 0})
        .sort("last_updated", -1))
    reference = provenance.energy_reference
    match = [d for d in found if reference.scheme == ReferenceScheme.GAS_MOLECULES
             and name in reference.energies
             and abs(d["output"]["energy"] - reference.energies[name]) < SAME_ENERGY]
    return MLIPCalculationDoc.model_validate((match or found)[0]) if match or found else None


def gpaw_validation_targets(db: Database, top: int, adsorbates: list[str] | None, model: str,
                            systems: int | None, select: str = DEFAULT_SELECTION,
                            ) -> tuple[list, int]:
    """The (slab, adsorbate) results of ``model`` as GPAW targets, each with its ``top``
    lowest valid placements, in the order ``select`` names (lowest best E_ads or largest
    sigma first); and how many results were asked for (every newest result when
    ``systems`` is None: one without a valid placement then counts as a failure of the
    screen)."""
    from omni_flows.workflows.dft.gpaw_validation import GPAWValidationTarget
    from omni_flows.workflows.thermo.references import molecules_needed

    criteria = stored_once({"provenance.model_name": model, **ONE_PER_CELL})
    if adsorbates:
        criteria["adsorbate"] = {"$in": list(adsorbates)}
    found = db[BestAdsorptionDoc.collection].find(criteria, {"_id": 0}).sort(
        "adsorption_energy", 1)
    stored = [BestAdsorptionDoc.model_validate(d) for d in found]
    if not stored:
        raise _no_results("adsorption_best results", model, adsorbates)
    chosen = newest_per_result(stored)
    valid = ranked_for_validation([d for d in chosen if d.valid], select, model)
    asked = len(chosen) if systems is None else min(systems, len(valid))
    targets = []
    for doc in valid[:asked]:
        same_model = _same_model(doc.provenance)
        placements = [AdsorptionPlacementDoc.model_validate(d) for d in db[
            AdsorptionPlacementDoc.collection].find(
                {"slab_id": doc.slab_id, "adsorbate": doc.adsorbate,
                 "settings_id": doc.settings_id, "valid": True, **same_model}, {"_id": 0})]
        if not placements:
            raise ResultsNotFoundError(f"the placements of {doc.slab_id} + {doc.adsorbate} are "
                                       "missing from the database; run its screen again")
        # the clean slab these E_ads were made with: same slab id, model and energy
        slab = latest(db, SlabDoc.collection, {"slab_id": doc.slab_id, **same_model,
                                               "energy": placements[0].slab_energy})
        if slab is None:
            raise ResultsNotFoundError(f"the slab {doc.slab_id} of a stored result is missing "
                                       "from the database; run its screen again")
        scheme = ReferenceScheme(doc.provenance.energy_reference.scheme)
        gas = {}
        for name in molecules_needed([doc.adsorbate], scheme):
            molecule = screen_gas_molecule(db, name, doc.provenance)
            if molecule is not None:
                gas[name] = molecule
        targets.append(GPAWValidationTarget.from_documents(
            placements, SlabDoc.model_validate(slab), gas, top))
    return targets, asked
