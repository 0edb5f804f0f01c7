"""Labelled graphs built once per data set and memory-mapped from disk.

A data set file is read frame by frame with ASE, its neighbour lists are built
with the model's own ``neighbor_list`` and everything is streamed into flat
binary arrays (positions, edges, labels, offsets). Later runs, and every DDP
rank, open these with ``numpy.memmap``: data larger than memory is paged in on
demand, and nothing is rebuilt unless the source file, the cut-off or the frame
selection changed (they make up the cache key).

Labels a data set lacks are stored as NaN and skipped by the loss, never filled
with zeros. Atoms fixed by an ASE ``FixAtoms`` constraint are marked so that
their forces can be left out of the loss and the metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from ase.io import iread

from ..errors import InvalidStructureError
from ..graph import MIN_DISTANCE, neighbor_list
from .config import DatasetConfig, TrainingConfigError

CACHE_VERSION = 1
# name -> (dtype, trailing shape); rows are atoms, edges or structures
ARRAYS = {
    "numbers": ("int16", ()),
    "positions": ("float64", (3,)),
    "forces": ("float64", (3,)),
    "free": ("bool", ()),
    "edges": ("int32", (2,)),
    "shifts": ("int8", (3,)),
    "cell": ("float64", (3, 3)),
    "volume": ("float64", ()),
    "energy": ("float64", ()),
    "stress": ("float64", (3, 3)),
    "num_atoms": ("int64", ()),
    "num_edges": ("int64", ()),
}


def read_labels(atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
    """Energy (eV), forces (eV/A) and 3x3 stress (eV/A^3, ASE sign); NaN where absent.

    Read from the calculator results (forces *before* constraints are applied:
    ``get_forces()`` would zero the fixed atoms), else from ``info``/``arrays``.
    """
    res = dict(atoms.calc.results) if atoms.calc is not None else {}
    energy = res.get("energy", atoms.info.get("energy", np.nan))
    forces = res.get("forces", atoms.arrays.get("forces"))
    stress = res.get("stress", atoms.info.get("stress"))
    forces = np.full((len(atoms), 3), np.nan) if forces is None else np.asarray(forces, float)
    if stress is None:
        stress = np.full((3, 3), np.nan)
    else:
        stress = np.asarray(stress, float)
        if stress.shape == (6,):  # Voigt xx yy zz yz xz xy
            xx, yy, zz, yz, xz, xy = stress
            stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    return float(energy if energy is not None else np.nan), forces, stress.reshape(3, 3)


def free_mask(atoms: Atoms) -> np.ndarray:
    free = np.ones(len(atoms), bool)
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            free[c.index] = False
    return free


def cache_key(spec: DatasetConfig, cutoff: float) -> str:
    path = Path(spec.path)
    st = path.stat()
    ident = [
        CACHE_VERSION,
        str(path.resolve()),
        st.st_size,
        st.st_mtime_ns,
        spec.index,
        spec.format,
        spec.every,
        round(cutoff, 6),
    ]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:20]


def build_cache(spec: DatasetConfig, cutoff: float, target: Path) -> None:
    """Read ``spec.path`` and stream its labelled graphs into ``target`` (a folder)."""
    tmp = target.with_name(target.name + f".partial{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    files = {name: open(tmp / f"{name}.bin", "wb") for name in ARRAYS}  # noqa: SIM115 closed below
    count = 0
    try:
        frames = iread(spec.path, index=spec.index, format=spec.format)
        for n, atoms in enumerate(frames):
            if n % spec.every:
                continue
            i, j, s, d = neighbor_list(atoms, cutoff)
            if (d < MIN_DISTANCE).any():
                raise InvalidStructureError(
                    f"{spec.path} frame {n}: atoms closer than {MIN_DISTANCE} A"
                )
            order = np.argsort(i, kind="stable")  # edges grouped by centre (the model expects it)
            energy, forces, stress = read_labels(atoms)
            has_cell = abs(atoms.cell.volume) > 1e-8
            rows = {
                "numbers": atoms.numbers,
                "positions": atoms.positions,
                "forces": forces,
                "free": free_mask(atoms),
                "edges": np.stack([i[order], j[order]], 1),
                "shifts": s[order],
                "cell": atoms.cell.array if (has_cell or any(atoms.pbc)) else np.zeros((3, 3)),
                "volume": abs(atoms.cell.volume) if has_cell else 0.0,
                "energy": energy,
                "stress": stress if has_cell else np.full((3, 3), np.nan),
                "num_atoms": len(atoms),
                "num_edges": len(i),
            }
            for name, (dtype, _) in ARRAYS.items():
                files[name].write(np.ascontiguousarray(rows[name], dtype=dtype).tobytes())
            count += 1
    finally:
        for f in files.values():
            f.close()
    if count == 0:
        raise TrainingConfigError(f"data set {spec.path} (index {spec.index!r}) has no frames")
    (tmp / "meta.json").write_text(
        json.dumps({"source": spec.path, "cutoff": cutoff, "count": count})
    )
    if target.exists():  # another process built it meanwhile: keep theirs
        shutil.rmtree(tmp)
    else:
        tmp.replace(target)


class GraphStore:
    """Read-only view of one cached data set; ``store[k]`` is structure ``k`` as numpy arrays."""

    def __init__(self, folder: Path, spec: DatasetConfig) -> None:
        self.folder, self.spec = Path(folder), spec
        self.count = json.loads((self.folder / "meta.json").read_text())["count"]
        self.arrays = {}
        for name, (dtype, shape) in ARRAYS.items():
            raw = np.memmap(self.folder / f"{name}.bin", dtype=dtype, mode="r")
            self.arrays[name] = raw.reshape((-1, *shape))
        self.atom_ptr = np.concatenate([[0], np.cumsum(self.arrays["num_atoms"])])
        self.edge_ptr = np.concatenate([[0], np.cumsum(self.arrays["num_edges"])])

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k: int) -> dict[str, np.ndarray]:
        a = slice(self.atom_ptr[k], self.atom_ptr[k + 1])
        e = slice(self.edge_ptr[k], self.edge_ptr[k + 1])
        out = {
            name: np.asarray(self.arrays[name][a])
            for name in ("numbers", "positions", "forces", "free")
        }
        out.update({name: np.asarray(self.arrays[name][e]) for name in ("edges", "shifts")})
        out.update(
            {
                name: np.asarray(self.arrays[name][k])
                for name in ("cell", "volume", "energy", "stress")
            }
        )
        return out


def open_dataset(
    spec: DatasetConfig, cutoff: float, cache_dir: str | Path, build: bool = True
) -> GraphStore:
    """The cached graphs of ``spec``, built first if needed (``build=False``: only open)."""
    if not Path(spec.path).exists():
        raise TrainingConfigError(
            f"data set {spec.path} does not exist; fix data.*.path in the config"
        )
    target = Path(cache_dir) / f"{Path(spec.path).name}-{cache_key(spec, cutoff)}"
    if not (target / "meta.json").exists():
        if not build:
            raise TrainingConfigError(f"graph cache {target} is missing")
        target.parent.mkdir(parents=True, exist_ok=True)
        build_cache(spec, cutoff, target)
    return GraphStore(target, spec)
