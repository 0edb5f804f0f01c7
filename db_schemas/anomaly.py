"""Anomaly flags: why a relaxed result should not be trusted as the adsorption state asked for.

The kinds follow the OC20/AdsorbML screening practice: a relaxation can end in
a state other than "the adsorbate, intact, bound to the unchanged surface".
The workflows detect them; the documents only record them.
"""

from enum import Enum

from pydantic import BaseModel, Field


class AnomalyKind(str, Enum):
    """What went wrong with a relaxed structure."""

    DISSOCIATION = "dissociation"  # the adsorbate broke into fragments
    STRETCHED_BOND = "stretched_bond"  # a bond of the adsorbate beyond an intact molecule's
    DESORPTION = "desorption"  # the adsorbate left the surface
    SURFACE_CHANGE = "surface_change"  # the slab reconstructed beyond tolerance
    INTERCALATION = "intercalation"  # the adsorbate went below the top surface layer


class Anomaly(BaseModel):
    """One flag raised on a result, with the measured evidence in words."""

    kind: AnomalyKind
    detail: str = Field("", description="what was measured, e.g. 'C-O 2.31 A > 1.5 x 1.13 A'")
