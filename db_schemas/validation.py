"""r2SCAN validation of a screen's result: MLIP-PBE, MLIP-r2SCAN and DFT-r2SCAN side by side.

One document per (system, quantity, DFT level). The three values are the same
quantity under the same reference scheme (``provenance.energy_reference``
holds the r2SCAN-task gas references; ``dft_terms`` the DFT ones):

- ``mlip_pbe``: the value the screen stored (the model's PBE task);
- ``mlip_r2scan``: the model's r2SCAN task, single points at the screen's geometries;
- ``dft_r2scan``: r2SCAN DFT where an engine ran (PySCF on a cluster cut around the
  site, VASP on the periodic slab), None with ``dft_code='none'``.

``provenance`` is that of the r2SCAN-task evaluation; ``source_provenance`` that
of the screen's result.
"""

from typing import Any

from pydantic import Field, computed_field
from pymatgen.core import Molecule, Structure

from .document import ResultDoc
from .provenance import Provenance


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


class R2SCANValidationDoc(ResultDoc):
    """One quantity of one system: MLIP-PBE, MLIP-r2SCAN and DFT-r2SCAN, and their differences."""

    collection = "r2scan_validation"
    key_fields = ("system_id", "quantity", "dft_code", "dft_level")
    index_fields = ("quantity", "adsorbate")
    summary_fields = (
        "system_id",
        "adsorbate",
        "mlip_pbe",
        "mlip_r2scan",
        "dft_r2scan",
        "mlip_r2scan_minus_pbe",
        "mlip_r2scan_minus_dft",
        "dft_code",
    )

    system_id: str = Field(description="the screen's system, e.g. 'Pt-ab12/1,1,1/0.5000/...|CO'")
    adsorbate: str | None = None
    quantity: str = Field("adsorption_energy", description="eV")
    structure: Structure | Molecule = Field(description="the geometry evaluated (the screen's)")
    source_provenance: Provenance | None = Field(None, description="of the screen's result")
    mlip_pbe: float | None = Field(None, description="eV, the screen's value (model's PBE task)")
    mlip_r2scan: float = Field(description="eV, the model's r2SCAN task at the same geometries")
    mlip_r2scan_terms: dict[str, float] = Field(
        default_factory=dict, description="eV, the total energies the r2SCAN value is made of"
    )
    dft_code: str = Field("none", description="'pyscf', 'vasp' or 'none'")
    dft_level: str = Field("", description="functional/basis/model, e.g. 'r2scan/def2-svp/Pt10'")
    dft_r2scan: float | None = Field(None, description="eV, r2SCAN DFT; None if not run")
    dft_terms: dict[str, float] = Field(default_factory=dict, description="eV, DFT energies")
    dft_structure: Structure | Molecule | None = Field(
        None, description="what the DFT saw: the cluster with the adsorbate, or the slab"
    )
    dft_settings: dict[str, Any] = Field(
        default_factory=dict, description="code, functional, basis, ECP, cluster cut, spin, ..."
    )

    @computed_field
    @property
    def mlip_r2scan_minus_pbe(self) -> float | None:
        """eV: how much the functional moves the model's value."""
        return _difference(self.mlip_r2scan, self.mlip_pbe)

    @computed_field
    @property
    def mlip_r2scan_minus_dft(self) -> float | None:
        """eV: the model's r2SCAN error against r2SCAN DFT."""
        return _difference(self.mlip_r2scan, self.dft_r2scan)

    @computed_field
    @property
    def dft_minus_mlip_pbe(self) -> float | None:
        """eV: r2SCAN DFT against the screen's PBE-task value."""
        return _difference(self.dft_r2scan, self.mlip_pbe)
