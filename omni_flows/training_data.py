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
"""

from __future__ import annotations

import dataclasses
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
}


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


def read_documents(db: Database, spec: DatasetConfig) -> Iterator[tuple[dict, Atoms]]:
    """(document, labelled Atoms) of every usable document matching ``spec``, in _id order."""
    if spec.collection not in FIELDS:
        raise TrainingConfigError(
            f"data set collection {spec.collection!r} cannot be read for training; "
            f"use one of {sorted(FIELDS)}"
        )
    cursor = db[spec.collection].find(spec.filter).sort("_id", 1).limit(spec.limit or 0)
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
    with Trajectory(tmp, "w") as traj:
        for doc, atoms in read_documents(db, spec):
            traj.write(atoms)
            digest.update(frame_bytes(atoms))
            count += 1
    if count == 0:
        tmp.unlink()
        raise TrainingConfigError(
            f"no document of collection {spec.collection!r} matching {spec.filter} has a "
            "structure and a label (energy, forces or stress); check the data set's filter"
        )
    target = folder / f"{spec.collection}-{digest.hexdigest()[:20]}.traj"
    try:  # atomic and never overwritten: another rank or run may have made the same file
        os.link(tmp, target)
    except FileExistsError:
        pass
    tmp.unlink()
    return dataclasses.replace(spec, source="file", path=str(target), format="traj")


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
