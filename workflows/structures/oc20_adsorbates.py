"""The OC20 adsorbates under their OC20 names (``*OH``, ``*COOH``, ``*N*NH``), with their
binding atoms, from the ``adsorbates.pkl`` that package ``fairchem-data-oc`` ships.

The pickle maps an index to (ASE Atoms, OC20 name, binding-atom indices, reaction
string). Entries 0-81 are the 82 adsorbates of OC20 (Chanussot et al., ACS Catal. 11,
6059 (2021)); 82-85 (``CO*COH``, ``*OCHO``, ``*COOH``, ``*OOH``) were added to the
package later and are kept, marked ``oc20=False``. A name with two ``*`` binds through
two atoms (``*N*NH``: both N); every binding atom is kept, and placements put all of
them on the surface.

The package is read, never imported for its code: only the data file is used, so
``fairchem-core`` (which its placement code needs) is not required.
"""

import pickle
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from ase import Atoms

from ..errors import UnknownAdsorbateError

N_OC20 = 82  # adsorbates of the OC20 data set: indices 0..81 of the pickle
_PACKAGE = "fairchem.data.oc.databases.pkls"


@dataclass(frozen=True)
class OC20Adsorbate:
    """One entry of ``adsorbates.pkl``."""

    index: int
    name: str  # OC20's name: '*' marks each binding atom, e.g. '*OH', '*CHO*CHO'
    atoms: Atoms
    binding_indices: tuple[int, ...]
    reaction: str  # how OC20 writes its formation from the gas references (HTML)

    @property
    def oc20(self) -> bool:
        return self.index < N_OC20

    @property
    def formula(self) -> str:
        return self.atoms.get_chemical_formula(mode="hill")

    @property
    def multidentate(self) -> bool:
        return len(self.binding_indices) > 1


def default_path() -> Path:
    """``adsorbates.pkl`` of the installed ``fairchem-data-oc``."""
    try:
        return Path(str(resources.files(_PACKAGE).joinpath("adsorbates.pkl")))
    except ModuleNotFoundError:
        raise UnknownAdsorbateError(
            "the OC20 adsorbates need package fairchem-data-oc: pip install fairchem-data-oc"
        ) from None


@cache
def oc20_adsorbates(path: str | None = None) -> dict[str, OC20Adsorbate]:
    """Every adsorbate of the pickle, by OC20 name, in the pickle's order."""
    path = Path(path) if path else default_path()
    if not path.is_file():
        raise UnknownAdsorbateError(f"no OC20 adsorbate database at {path}")
    with open(path, "rb") as fh:
        data = pickle.load(fh)  # the package's own data file
    out = {}
    for index in sorted(data):
        atoms, name, binding, reaction = data[index][:4]
        atoms = atoms.copy()
        atoms.pbc = False
        out[name] = OC20Adsorbate(int(index), name, atoms, tuple(int(i) for i in binding),
                                  str(reaction))
    return out


def oc20_adsorbate(name: str, path: str | None = None) -> OC20Adsorbate:
    """The entry of an OC20 name, e.g. ``'*OH'`` (the screen's Adsorbate of it:
    ``workflows.structures.adsorbates.get_adsorbate``)."""
    table = oc20_adsorbates(path)
    if name not in table:
        close = [n for n in table if n.replace("*", "") == name.replace("*", "")]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownAdsorbateError(f"{name!r} is not an OC20 adsorbate{hint}")
    return table[name]
