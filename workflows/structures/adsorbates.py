"""Adsorbates: a built-in set by name, or a structure file with the binding atoms' indices.

A multidentate adsorbate (OC20's ``*N*NH``, ``*CH2*O``, a file given as ``FILE:0,3``)
binds through several atoms: :meth:`Adsorbate.oriented` turns all of them down, the
binding axis parallel to the surface and the rest of the molecule above it.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule
from monty.json import MSONable
from omni_flows.db_schemas.fingerprint import content_hash

from ..errors import UnknownAdsorbateError

# A: planar radicals bound by their centre (CH3) are started pyramidal, as they bind
PYRAMIDAL_LIFT = 0.35

# name -> (ASE g2 name or atom symbol, symbol of the atom that binds to the surface)
BUILTIN_ADSORBATES: dict[str, tuple[str, str]] = {
    "H": ("H", "H"),
    "O": ("O", "O"),
    "N": ("N", "N"),
    "C": ("C", "C"),
    "S": ("S", "S"),
    "OH": ("OH", "O"),
    "CO": ("CO", "C"),
    "CO2": ("CO2", "C"),
    "H2O": ("H2O", "O"),
    "NH3": ("NH3", "N"),
    "NH2": ("NH2", "N"),
    "NH": ("NH", "N"),
    "NO": ("NO", "N"),
    "CH3": ("CH3", "C"),
    "CH2": ("CH2_s3B1d", "C"),
    "CH": ("CH", "C"),
    "CH4": ("CH4", "C"),
    "H2": ("H2", "H"),
    "N2": ("N2", "N"),
    "O2": ("O2", "O"),
}


@dataclass(frozen=True)
class Adsorbate(MSONable):
    """An adsorbate: its atoms (gas geometry) and which of them bind to the surface.

    ``binding_index`` is the (first) binding atom; ``binding_indices`` lists every binding
    atom of a multidentate adsorbate (empty or one index: monodentate).

    ``source`` is the file it was read from ("" for a built-in one): such an
    adsorbate is its own gas molecule (relaxed in a box) under the gas-molecule
    reference scheme, and two files of one formula are two adsorbates.
    """

    name: str
    symbols: tuple[str, ...]
    positions: tuple[tuple[float, float, float], ...]
    binding_index: int = 0
    source: str = ""
    binding_indices: tuple[int, ...] = ()

    def __post_init__(self) -> None:  # tuples again after a JSON round trip
        object.__setattr__(self, "symbols", tuple(self.symbols))
        object.__setattr__(self, "positions", tuple(tuple(float(x) for x in p)
                                                    for p in self.positions))
        indices = tuple(int(i) for i in self.binding_indices)
        object.__setattr__(self, "binding_indices", indices)
        if indices and (indices[0] != self.binding_index or len(set(indices)) != len(indices)
                        or not all(0 <= i < len(self.symbols) for i in indices)):
            raise UnknownAdsorbateError(
                f"binding atoms {list(indices)} of {self.name}: give distinct indices of its "
                f"{len(self.symbols)} atoms, the first one binding_index={self.binding_index}")

    @property
    def binders(self) -> tuple[int, ...]:
        """Indices of every binding atom (one for a monodentate adsorbate)."""
        return self.binding_indices or (self.binding_index,)

    @property
    def multidentate(self) -> bool:
        return len(self.binders) > 1

    @property
    def atoms(self) -> Atoms:
        return Atoms(self.symbols, positions=self.positions)

    @property
    def formula(self) -> str:
        return self.name.replace("*", "")  # OC20 names mark binding atoms: *OOH -> OOH

    @property
    def adsorbate_id(self) -> str:
        """The built-in name, or FORMULA:BINDING_INDEX-GEOMETRY_HASH for a file's adsorbate;
        a multidentate one names all its binding atoms (``*N*NH:0,1``, ``CH2O:0,3-HASH``):
        it is placed on all of them, another computation than on the first alone."""
        binders = ",".join(map(str, self.binders))
        if not self.source:
            return f"{self.name}:{binders}" if self.multidentate else self.name
        geometry = content_hash([self.symbols, np.round(self.positions, 4).tolist()])
        return f"{self.name}:{binders}-{geometry[:8]}"

    @property
    def label(self) -> str:
        """How the user named it: 'CO', 'NO.xyz:1' or 'CH2O.xyz:0,3'."""
        binders = ",".join(map(str, self.binders))
        return f"{Path(self.source).name}:{binders}" if self.source else self.name

    @property
    def own_gas_molecule(self) -> bool:
        """A molecule the user gave as a file is referenced to itself in the gas phase."""
        return bool(self.source) and len(self.symbols) > 1

    def oriented(self) -> np.ndarray:
        """Positions with the binding atom at the origin and the rest pointing up (+z); a
        multidentate adsorbate has all its binding atoms down (:meth:`_oriented_multidentate`)."""
        pos = np.asarray(self.positions, float)
        pos = pos - pos[self.binding_index]
        if self.multidentate:
            return self._oriented_multidentate(pos)
        if len(pos) == 1:
            return pos
        centre = pos.mean(axis=0)
        if np.linalg.norm(centre) > 0.1:  # the rest of the molecule away from the surface
            return pos @ _rotation_onto(centre / np.linalg.norm(centre), np.array([0.0, 0, 1])).T
        # binding atom at the centre: linear (CO2) lies flat, planar (CH3) gets its normal up
        _, s, vt = np.linalg.svd(pos)
        if s[1] < 1e-3 * s[0]:
            return pos @ _rotation_onto(vt[0], np.array([1.0, 0, 0])).T
        flat = pos @ _rotation_onto(vt[2], np.array([0.0, 0, 1])).T
        flat[np.arange(len(pos)) != self.binding_index, 2] += PYRAMIDAL_LIFT
        return flat

    def _oriented_multidentate(self, pos: np.ndarray) -> np.ndarray:
        """First binding atom at the origin, the binding atoms in the xy plane (two: the
        second along +x; three or more: their best plane horizontal, the second along +x),
        the other atoms' centre above that plane (+z). The gas geometry is kept (rigid)."""
        binders = list(self.binders)
        rest = [i for i in range(len(pos)) if i not in binders]
        centred = pos[binders] - pos[binders].mean(axis=0)
        _, s, vt = np.linalg.svd(centred)
        if len(binders) > 2 and s[1] > 0.1 * s[0]:  # a plane of binding atoms: normal up
            normal = vt[2]
            if rest and np.dot(pos[rest].mean(axis=0) - pos[binders].mean(axis=0), normal) < 0:
                normal = -normal
            pos = pos @ _rotation_onto(normal, np.array([0.0, 0, 1])).T
            axis = pos[binders[1]].copy()
            axis[2] = 0.0
            angle = -np.arctan2(axis[1], axis[0])
        else:  # a line of binding atoms: along +x, the rest turned up about it
            axis = pos[binders[1]] / np.linalg.norm(pos[binders[1]])
            pos = pos @ _rotation_onto(axis, np.array([1.0, 0, 0])).T
            up = pos[rest].mean(axis=0) - pos[binders].mean(axis=0) if rest else np.zeros(3)
            angle = 0.0
            if np.hypot(up[1], up[2]) > 0.1:  # turn about x until the rest points to +z
                angle = np.arctan2(up[1], up[2])
            elif rest:  # the rest around the axis (planar C2H4): its plane flat, none below
                spread = pos[rest][:, 1:] - pos[rest][:, 1:].mean(axis=0)
                _, _, v = np.linalg.svd(spread)
                angle = -np.arctan2(v[0][1], v[0][0])
            c, s_ = np.cos(angle), np.sin(angle)
            return pos @ np.array([[1.0, 0, 0], [0, c, -s_], [0, s_, c]]).T
        c, s_ = np.cos(angle), np.sin(angle)
        return pos @ np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1.0]]).T


def _rotation_onto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation matrix taking unit vector ``a`` onto unit vector ``b`` (Rodrigues)."""
    v, c = np.cross(a, b), float(np.dot(a, b))
    if c < -1 + 1e-9:  # antiparallel: half turn about x
        return np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def _builtin(name: str) -> Adsorbate:
    source, binder = BUILTIN_ADSORBATES[name]
    atoms = Atoms(source) if source in ("H", "O", "N", "C", "S") else molecule(source)
    symbols = atoms.get_chemical_symbols()
    return Adsorbate(
        name, tuple(symbols), tuple(map(tuple, atoms.positions.round(6).tolist())),
        symbols.index(binder),
    )


def get_adsorbate(spec: str | Adsorbate) -> Adsorbate:
    """``'CO'`` from the built-in set, an OC20 name (``'*OH'``), or ``'path/to/file.xyz:2'``
    (binding atom index 2; ``file.xyz:0,3``: binding through atoms 0 and 3)."""
    if isinstance(spec, Adsorbate):
        return spec
    if spec in BUILTIN_ADSORBATES:
        return _builtin(spec)
    if "*" in spec:  # an OC20 name: *OH, *COOH, *N*NH (workflows/structures/oc20_adsorbates.py)
        from .oc20_adsorbates import oc20_adsorbate

        entry = oc20_adsorbate(spec)
        # named as OC20 names it, with every binding atom (a multidentate one is placed on
        # all of them: workflows/structures/placements.py)
        return Adsorbate(entry.name, tuple(entry.atoms.get_chemical_symbols()),
                         tuple(map(tuple, entry.atoms.positions.round(6).tolist())),
                         entry.binding_indices[0],
                         binding_indices=entry.binding_indices if entry.multidentate else ())
    path, _, index = spec.rpartition(":") if ":" in spec else (spec, "", "0")
    if Path(path).is_file():
        from ase.io import read

        try:
            atoms = read(path)
        except Exception as exc:  # any parser error: it is the file, whatever the parser says
            raise UnknownAdsorbateError(
                f"cannot read adsorbate file {path}: it is not a valid "
                f"{Path(path).suffix.lstrip('.').upper() or 'structure'} file (the reader "
                f"stopped with {type(exc).__name__}: {exc}); check or re-export it, e.g. as "
                ".xyz"
            ) from None
        indices = index.split(",")
        if not all(i.isdigit() and int(i) < len(atoms) for i in indices) \
                or len(set(indices)) != len(indices):
            raise UnknownAdsorbateError(
                f"binding atom index {index!r} of {path} is not one of 0..{len(atoms) - 1}; "
                "write FILE:INDEX (FILE:I,J for an adsorbate binding through several atoms)"
            )
        if len(atoms) == 0:
            raise UnknownAdsorbateError(f"adsorbate file {path} holds no atoms")
        indices = tuple(int(i) for i in indices)
        return Adsorbate(
            atoms.get_chemical_formula(mode="hill"), tuple(atoms.get_chemical_symbols()),
            tuple(map(tuple, atoms.positions.tolist())), indices[0], source=str(path),
            binding_indices=indices if len(indices) > 1 else (),
        )
    if Path(path).suffix or "/" in path:
        raise UnknownAdsorbateError(f"adsorbate file {path} not found (write FILE:INDEX with "
                                    "the index of the binding atom)")
    raise UnknownAdsorbateError(
        f"unknown adsorbate {spec!r}{_oc20_hint(spec)}: use one of "
        f"{', '.join(BUILTIN_ADSORBATES)}, an OC20 name with its star ({_oc20_examples()}), "
        "or a structure file as FILE:BINDING_ATOM_INDEX"
    )


def _oc20_hint(spec: str) -> str:
    """' (did you mean '*OOH'?)' where ``spec`` is an OC20 name without its stars."""
    try:
        from .oc20_adsorbates import oc20_adsorbates

        close = [n for n in oc20_adsorbates() if n.replace("*", "") == spec.replace("*", "")]
    except UnknownAdsorbateError:  # fairchem-data-oc missing: no OC20 names to offer
        return ""
    return f" (did you mean {', '.join(repr(n) for n in close)}?)" if close else ""


def _oc20_examples() -> str:
    try:
        from .oc20_adsorbates import oc20_adsorbates

        return f"{len(oc20_adsorbates())} of them, e.g. *OH, *OOH, *COOH, *N*NH"
    except UnknownAdsorbateError:
        return "e.g. *OOH; needs fairchem-data-oc"
