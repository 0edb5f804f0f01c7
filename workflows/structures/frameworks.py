"""MOF frameworks from CIF files, checked before anything runs, and guest insertion.

Rejected with a message naming the file: unreadable CIFs, disorder or partial
occupancy, overlapping atoms, and organic frameworks without any hydrogen
(hydrogens left out of the CIF). Guests go to random points of the cell, in
random orientations, where no guest atom comes close to a framework atom but one
touches the pore wall: adsorption sites are on the walls, and a guest started in
the middle of a wide pore feels almost no force, so its relaxation stops there.
"""

import warnings
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from pymatgen.io.cif import CifParser
from scipy.spatial.transform import Rotation

from .adsorbates import Adsorbate
from ..errors import FrameworkError

# A: closer atoms are an overlap (shortest real bond, H-H in H2, is 0.74 A)
OVERLAP = 0.7
# A: a guest atom closer than this to a framework atom is rejected on insertion (vdW contact)
GUEST_CLEARANCE = 2.2
# A: ... and the nearest framework atom must be within this (wall contact, vdW distances 2.5-3.5)
WALL_CONTACT = 3.2
# A: the cell is repeated until every perpendicular width reaches this (2 x 5 A model cutoff)
MIN_WIDTH = 10.0


def load_framework(path: str | Path) -> Structure:
    """The ordered framework of a CIF file, or :class:`FrameworkError` saying why not."""
    path = Path(path)
    if not path.is_file():
        raise FrameworkError(f"no CIF file {path}")
    with warnings.catch_warnings(record=True) as notes:  # said in the error, if it fails
        warnings.simplefilter("always")
        try:
            structures = CifParser(path, occupancy_tolerance=1.0).parse_structures(
                primitive=False)
        except Exception as exc:
            lines = (line for n in notes for line in str(n.message).replace(
                "Issues encountered while parsing CIF: ", "").splitlines())
            said = "; ".join(dict.fromkeys(line.strip() for line in lines if line.strip()))
            raise FrameworkError(f"{path.name}: not a readable CIF ({exc}"
                                 f"{'; ' + said if said else ''})") from None
    if not structures:
        raise FrameworkError(f"{path.name}: the CIF holds no structure")
    structure = structures[0]
    check_framework(structure, path.name)
    return structure


def check_framework(structure: Structure, name: str = "framework") -> None:
    if not structure.is_ordered:
        raise FrameworkError(f"{name}: disordered or partially occupied sites; give an ordered "
                             "CIF (e.g. the CoRE MOF 'FSR' or ODAC relaxed file)")
    distances = structure.distance_matrix + np.eye(len(structure)) * 1e3
    if distances.min() < OVERLAP:
        i, j = np.unravel_index(distances.argmin(), distances.shape)
        raise FrameworkError(f"{name}: atoms {i} and {j} overlap ({distances[i, j]:.2f} A < "
                             f"{OVERLAP} A); remove the duplicate sites")
    elements = {el.symbol for el in structure.composition}
    if "C" in elements and "H" not in elements:
        raise FrameworkError(f"{name}: an organic framework without hydrogen; the CIF leaves "
                             "out its hydrogens, add them first")


def supercell_for_cutoff(structure: Structure, min_width: float = MIN_WIDTH) -> list[int]:
    """Repeats of a, b, c so that the cell's perpendicular widths reach ``min_width``."""
    m = structure.lattice.matrix
    volume = abs(np.linalg.det(m))
    widths = [volume / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3])) for i in range(3)]
    return [int(np.ceil(min_width / w)) for w in widths]


def insert_guest(
    framework: Structure, guest: Adsorbate, rng: np.random.Generator, tries: int = 2000
) -> Structure:
    """Framework + one guest at a random free point touching the pore wall, random orientation."""
    centred = np.asarray(guest.positions) - np.mean(guest.positions, axis=0)
    for _ in range(tries):
        point = framework.lattice.get_cartesian_coords(rng.random(3))
        coords = Rotation.random(random_state=rng.integers(2**31)).apply(centred) + point
        frac = framework.lattice.get_fractional_coords(coords)
        dist = framework.lattice.get_all_distances(frac, framework.frac_coords)
        if GUEST_CLEARANCE <= dist.min() <= WALL_CONTACT:
            complex_ = framework.copy()
            for symbol, xyz in zip(guest.symbols, coords):
                complex_.append(symbol, xyz, coords_are_cartesian=True)
            return complex_
    raise FrameworkError(f"no free point for {guest.name} after {tries} tries: the framework "
                         "has no pore wide enough")
