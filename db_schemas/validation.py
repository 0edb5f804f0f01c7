"""r2SCAN validation: the model's r2SCAN task against an r2SCAN DFT calculation.

The MLIP value is always there; the DFT value only where an engine ran (PySCF
for molecules and clusters, VASP where licensed), ``dft_code='none'`` otherwise.
"""

from typing import Any

from pydantic import Field, computed_field
from pymatgen.core import Molecule, Structure

from .document import ResultDoc


class R2SCANValidationDoc(ResultDoc):
    """One quantity of one system, MLIP (r2SCAN task) vs DFT r2SCAN."""

    collection = "r2scan_validation"
    key_fields = ("system_id", "quantity", "dft_code")
    index_fields = ("quantity",)
    summary_fields = ("system_id", "quantity", "mlip_value", "dft_value", "error", "dft_code")

    system_id: str = Field(description="name of the system, e.g. 'Pt(111)+CO/site0'")
    quantity: str = Field(description="e.g. 'total_energy', 'adsorption_energy' (eV)")
    structure: Structure | Molecule
    mlip_value: float = Field(description="eV, from the model's r2SCAN task")
    dft_code: str = Field("none", description="'pyscf', 'vasp' or 'none'")
    dft_value: float | None = Field(None, description="eV, r2SCAN DFT; None if not run")
    dft_settings: dict[str, Any] = Field(default_factory=dict, description="basis, cutoffs, ...")

    @computed_field
    @property
    def error(self) -> float | None:
        """eV, MLIP minus DFT."""
        return None if self.dft_value is None else self.mlip_value - self.dft_value
