"""A relaxed clean slab, cut from a bulk with pymatgen's SlabGenerator."""

import numpy as np
from pydantic import Field, model_validator
from pymatgen.core import Structure

from .document import ResultDoc

# terminations (SlabGenerator shifts) closer than this, in fractional c, are the same
SHIFT_DECIMALS = 4


def slab_id(bulk_id: str, miller_index: tuple[int, int, int], shift: float) -> str:
    """The name of a slab, e.g. 'mp-30/1,1,1/0.1667', used by placements to point at it."""
    hkl = ",".join(str(i) for i in miller_index)
    return f"{bulk_id}/{hkl}/{round(shift, SHIFT_DECIMALS):.{SHIFT_DECIMALS}f}"


class SlabDoc(ResultDoc):
    """A clean slab after relaxation, with its energies."""

    collection = "slabs"
    key_fields = ("slab_id",)
    index_fields = ("bulk_id", "bulk_formula", "miller_index")
    summary_fields = (
        "slab_id",
        "bulk_formula",
        "miller_index",
        "energy",
        "surface_energy",
        "settings_id",
    )

    bulk_id: str = Field(description="stable name of the bulk, e.g. 'mp-30' or its fingerprint")
    bulk_formula: str
    miller_index: tuple[int, int, int]
    shift: float = Field(description="SlabGenerator termination shift, fractional c")
    termination: str = Field("", description="the top layer's reduced formula, e.g. 'NiPt': "
                             "tells the terminations of one facet apart ('' before it existed)")
    slab_id: str = ""
    structure: Structure = Field(description="the relaxed slab")
    fixed_indices: list[int] = Field(default_factory=list, description="bottom atoms held fixed")
    min_slab_size: float = Field(description="A")
    min_vacuum_size: float = Field(description="A")
    area: float = Field(0.0, description="A^2, surface area of the cell (a x b)")
    energy: float = Field(description="eV, relaxed slab")
    surface_energy: float | None = Field(
        None, description="eV/A^2, (E_slab - N E_bulk_per_atom) / (2 A)"
    )

    @model_validator(mode="after")
    def _derive(self):
        self.shift = round(self.shift, SHIFT_DECIMALS)
        self.slab_id = self.slab_id or slab_id(self.bulk_id, self.miller_index, self.shift)
        if not self.area:
            a, b = self.structure.lattice.matrix[:2]
            self.area = float(np.linalg.norm(np.cross(a, b)))
        return self
