"""Content hashes that give a result its identity (part of its natural key).

Two structures are "the same input" when their species, cell and positions
agree after rounding; rounding makes the hash stable against float noise from
serialization round trips but not against real changes of geometry.
"""

import hashlib
import json
from typing import Any

from pymatgen.core import Molecule, Structure

# 1e-5 A (Cartesian) / 1e-5 (fractional): far below any physical change, far above float noise
DECIMALS = 5


def content_hash(data: Any) -> str:
    """sha256 of the canonical JSON of ``data`` (sorted keys), hex."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def structure_fingerprint(structure: Structure | Molecule) -> str:
    """Hash of a structure's species, cell (periodic) and positions, rounded."""
    species = [site.species_string for site in structure]
    if isinstance(structure, Structure):
        # wrap into the cell so equivalent fractional coordinates hash alike
        frac = [[round(x % 1.0, DECIMALS) % 1.0 for x in site.frac_coords] for site in structure]
        cell = [[round(x, DECIMALS) for x in row] for row in structure.lattice.matrix]
        return content_hash({"species": species, "frac": frac, "cell": cell})
    cart = [[round(x, DECIMALS) for x in site.coords] for site in structure]
    return content_hash({"species": species, "cart": cart, "charge": structure.charge})
