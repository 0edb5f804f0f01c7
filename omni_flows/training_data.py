"""Training data from the project's MongoDB store, for ``omni-flows train``.

The training code (``omni_flows.model.train``) reads ASE files only. A data set
with ``source: mongodb`` is read here: every matching document becomes an ASE
``Atoms`` whose ``SinglePointCalculator`` holds the labels the document has
(a missing stress or forces stays missing, never zero), and the frames are
written once to an ASE trajectory under ``<cache_dir>/mongodb/``, named by a
hash of their content. An unchanged query therefore reuses the file and its
graph cache, and every DDP rank ends up with the same file.

Collections read:

- ``calculations`` (``MLIPCalculationDoc``, or atomate2's force-field task
  document): ``output.structure`` (or ``output.mol_or_struct``), ``output.energy``,
  ``output.forces``, ``output.stress`` and ``input.fixed_indices`` (FixAtoms).
  A 6-vector stress is eV/A^3 with ASE's sign (this project's documents); a 3x3
  stress is kbar with VASP's sign (atomate2's ``OutputDoc``).
- ``adsorption_placements``: ``final_structure`` and ``energy`` (energy only).
- ``dft_calculations`` (``DFTCalculationDoc``, e.g. the GPAW single points of
  ``omni-flows validate --dft gpaw``): ``structure``, ``energy`` (extrapolated to
  zero smearing) and ``forces`` of slabs, slabs with adsorbates and gas molecules.
  One data set is one level of theory: its filter names ``dft_level`` or
  ``settings_id``, and the documents it matches must share one ``settings_id``.
  ``hold_out`` leaves out every placement of the named (slab, adsorbate) targets
  (``'slab_id|adsorbate'``, shell wildcards allowed); ``targets`` reads only the
  placements of the named targets (e.g. the held-out ones, as a validation set).
  A placement's target is the ``system_id`` of the ``dft_validation`` documents
  that hold its ``structure_hash``, or the ``slab_id|adsorbate`` part of its label.
  Clean slabs and gas molecules are not targets: a held-out target's clean slab
  stays in training when it is in the data set (it is the reference of every
  adsorbate on that slab).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
from ase.io import Trajectory
from ase.stress import full_3x3_to_voigt_6_stress
from pymatgen.core import Molecule, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymongo.database import Database

from omni_flows.db_schemas.query import stored_once
from omni_flows.model.train.config import DatasetConfig, TrainConfig, TrainingConfigError

# collection -> (fields of the structure, first present wins; energy; forces; stress)
FIELDS = {
    "calculations": (
        ("output.structure", "output.mol_or_struct"),
        "output.energy",
        "output.forces",
        "output.stress",
    ),
    "adsorption_placements": (("final_structure",), "energy", None, None),
    "dft_calculations": (("structure",), "energy", "forces", None),
}
DFT = "dft_calculations"
# a DFT data set names its level of theory by one of these filter fields
DFT_LEVEL_FIELDS = ("dft_level", "settings_id")


def _get(doc: dict, path: str | None) -> Any:
    """The value at a dotted path; None where absent (or no field is read)."""
    if path is None:
        return None
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def ase_stress(stress: Any) -> np.ndarray | None:
    """Voigt stress in eV/A^3 with ASE's sign, from either stored convention."""
    if stress is None:
        return None
    s = np.asarray(stress, dtype=float)
    if s.shape == (6,):
        return s
    if s.shape == (3, 3):  # atomate2: kbar, positive under compression
        return full_3x3_to_voigt_6_stress(-s * units.GPa / 10)
    raise TrainingConfigError(f"stored stress of shape {s.shape}: expected 6 or 3x3 values")


def document_atoms(doc: dict, collection: str) -> Atoms | None:
    """The labelled structure of one document; None when it has no structure or no label."""
    structure_fields, energy_field, forces_field, stress_field = FIELDS[collection]
    raw = next((_get(doc, f) for f in structure_fields if _get(doc, f) is not None), None)
    if raw is None:
        return None
    structure = (Structure if "lattice" in raw else Molecule).from_dict(raw)
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = None  # labels come from the document's output only
    labels = {}
    if _get(doc, energy_field) is not None:
        labels["energy"] = float(_get(doc, energy_field))
    if _get(doc, forces_field) is not None:
        labels["forces"] = np.asarray(_get(doc, forces_field), dtype=float).reshape(len(atoms), 3)
    stress = ase_stress(_get(doc, stress_field))
    if stress is not None and isinstance(structure, Structure):
        labels["stress"] = stress
    if not labels:
        return None
    fixed = _get(doc, "input.fixed_indices") or []
    if fixed:
        atoms.set_constraint(FixAtoms(indices=fixed))
    atoms.calc = SinglePointCalculator(atoms, **labels)
    return atoms


def check_dataset(spec: DatasetConfig) -> None:
    """What can be checked of a MongoDB data set before the database is reached."""
    if spec.collection not in FIELDS:
        raise TrainingConfigError(
            f"data set collection {spec.collection!r} cannot be read for training; "
            f"use one of {sorted(FIELDS)}"
        )
    if not isinstance(spec.filter, dict):
        raise TrainingConfigError(
            f"data set of {spec.collection}: filter {spec.filter!r} must be a mapping "
            "(a MongoDB query)"
        )
    if spec.collection == DFT and not any(spec.filter.get(k) for k in DFT_LEVEL_FIELDS):
        raise TrainingConfigError(
            f"data set of {DFT} with filter {spec.filter}: name its DFT level, e.g. "
            "filter: {dft_level: 'GPAW PBE/PW450/k4/A^-1'} or {settings_id: ...}; one task is "
            "one level of theory (`omni-flows query dft_calculations` lists the stored ones)"
        )


def stored_dft_levels(db: Database) -> dict[str, int]:
    """'dft_level (settings_id)' -> number of documents, of every stored DFT calculation."""
    levels: dict[str, int] = {}
    for doc in db[DFT].find({}, {"dft_level": 1, "settings_id": 1, "_id": 0}):
        name = f"{doc.get('dft_level')} (settings_id {doc.get('settings_id')})"
        levels[name] = levels.get(name, 0) + 1
    return levels


def placement_targets(db: Database, docs: list[dict]) -> dict[int, set[str]]:
    """The (slab, adsorbate) system ids each document (by position) is a placement of: from
    the validations that hold its structure hash, and from its label 'slab_id|ads#index'."""
    hashes = {d.get("structure_hash") for d in docs}
    owners: dict[str, set[str]] = {}
    query = {"placements.structure_hash": {"$in": sorted(h for h in hashes if h)}}
    for v in db["dft_validation"].find(query, {"system_id": 1, "placements": 1, "_id": 0}):
        for p in v.get("placements", []):
            owners.setdefault(p.get("structure_hash"), set()).add(v["system_id"])
    found = {}
    for n, doc in enumerate(docs):
        names = set(owners.get(doc.get("structure_hash"), ()))
        label = str(doc.get("label", ""))
        if "|" in label and "#" in label:
            names.add(label.rsplit("#", 1)[0])
        found[n] = names
    return found


def select_dft_documents(db: Database, spec: DatasetConfig, docs: list[dict]) -> list[dict]:
    """The documents of one DFT level, less the held-out targets' placements (or only the
    chosen targets' placements); a pattern that matches no stored target is an error."""
    if not docs:
        levels = stored_dft_levels(db)
        raise TrainingConfigError(
            f"no {DFT} document matches {spec.filter}: "
            + (f"stored levels: {levels}" if levels else "the database holds none")
            + "; run `omni-flows validate --dft gpaw ...` first, or fix the data set's filter"
        )
    levels = {(d.get("dft_level"), d.get("settings_id")) for d in docs}
    if len(levels) > 1:
        raise TrainingConfigError(
            f"data set of {DFT} with filter {spec.filter} mixes {len(levels)} DFT levels "
            f"{sorted(map(str, levels))}: one task is one level of theory; "
            "filter on one settings_id"
        )
    owners = placement_targets(db, docs)
    known = sorted(set().union(*owners.values()))
    for pattern in list(spec.hold_out) + list(spec.targets or []):
        if not fnmatch.filter(known, pattern):
            raise TrainingConfigError(
                f"data set of {DFT}: target {pattern!r} matches no validated (slab, adsorbate) "
                f"of this level; its targets are {known}"
            )

    def matches(names: set[str], patterns: list[str]) -> bool:
        return any(fnmatch.filter(names, p) for p in patterns)

    kept = []
    for n, doc in enumerate(docs):
        if spec.targets is not None and not matches(owners[n], spec.targets):
            continue
        if matches(owners[n], spec.hold_out):
            continue
        kept.append(doc)
    return kept


def read_documents(db: Database, spec: DatasetConfig) -> Iterator[tuple[dict, Atoms]]:
    """(document, labelled Atoms) of every usable document matching ``spec``, in _id order."""
    check_dataset(spec)
    cursor = db[spec.collection].find(stored_once(spec.filter)).sort("_id", 1)
    if spec.collection == DFT:  # hold-out first, then the limit
        docs = select_dft_documents(db, spec, list(cursor))
        cursor = docs[: spec.limit] if spec.limit else docs
    else:
        cursor = cursor.limit(spec.limit or 0)
    for doc in cursor:
        atoms = document_atoms(doc, spec.collection)
        if atoms is not None:
            yield doc, atoms


def frame_bytes(atoms: Atoms) -> bytes:
    """What a frame contributes to the training data (identity of the exported file)."""
    res = atoms.calc.results
    parts = [atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc]
    parts += [np.asarray(res.get(k, np.nan), float) for k in ("energy", "forces", "stress")]
    parts.append(np.sort([i for c in atoms.constraints for i in c.index]))
    return b"".join(np.ascontiguousarray(a).tobytes() for a in parts)


def export_dataset(db: Database, spec: DatasetConfig, folder: Path) -> DatasetConfig:
    """Write the frames of a MongoDB data set to ``folder``; the equivalent file data set."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{spec.collection}.partial{os.getpid()}.traj"
    digest = hashlib.sha256()
    count = 0
    try:
        with Trajectory(tmp, "w") as traj:
            for doc, atoms in read_documents(db, spec):
                traj.write(atoms)
                digest.update(frame_bytes(atoms))
                count += 1
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if count == 0:
        tmp.unlink()
        held = " after the held-out targets are left out" if spec.hold_out else ""
        raise TrainingConfigError(
            f"no document of collection {spec.collection!r} matching {spec.filter} has a "
            f"structure and a label (energy, forces or stress){held}; check the data set's filter"
        )
    target = folder / f"{spec.collection}-{digest.hexdigest()[:20]}.traj"
    try:  # atomic and never overwritten: another rank or run may have made the same file
        os.link(tmp, target)
    except FileExistsError:
        pass
    tmp.unlink()
    return dataclasses.replace(spec, source="file", path=str(target), format="traj",
                               hold_out=[], targets=None)  # applied: the file holds the rest


def export_mongodb_datasets(cfg: TrainConfig, db: Database) -> TrainConfig:
    """``cfg`` with every MongoDB data set replaced by its exported file."""
    folder = Path(cfg.data.cache_dir) / "mongodb"

    def resolve(specs: list[DatasetConfig]) -> list[DatasetConfig]:
        return [export_dataset(db, s, folder) if s.source == "mongodb" else s for s in specs]

    data = dataclasses.replace(
        cfg.data,
        train=resolve(cfg.data.train),
        valid=resolve(cfg.data.valid),
        dbs=resolve(cfg.data.dbs),
    )
    return dataclasses.replace(cfg, data=data)


def uses_mongodb(cfg: TrainConfig) -> bool:
    return any(s.source == "mongodb" for s in cfg.data.train + cfg.data.valid + cfg.data.dbs)


def check_mongodb_datasets(cfg: TrainConfig) -> None:
    """Every MongoDB data set's collection and filter, checked before the database is reached."""
    for spec in cfg.data.train + cfg.data.valid + cfg.data.dbs:
        if spec.source == "mongodb":
            check_dataset(spec)
