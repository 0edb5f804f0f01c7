"""Guest adsorption in a metal-organic framework (ODAC-style protocol).

E_ads = E(framework + n guests) - E(framework) - n E(guest), every term relaxed
with the same model and task, with or without a D3 dispersion correction (a
separate result: ``dispersion`` is part of the key). With D3 the energies include
it and ``dispersion_correction`` is its share of E_ads, so the same document
also gives E_ads without D3.
"""

from pydantic import Field, computed_field, model_validator
from pymatgen.core import Structure

from .adsorption import ENERGY_CONSISTENCY_TOL
from .document import ResultDoc


class MOFAdsorptionDoc(ResultDoc):
    """One relaxed guest placement in one framework."""

    collection = "mof_adsorption"
    key_fields = ("framework_id", "guest", "loading", "placement_index", "dispersion")
    index_fields = ("guest", "adsorption_energy", "valid")
    summary_fields = (
        "framework_id",
        "guest",
        "loading",
        "placement_index",
        "dispersion",
        "adsorption_energy",
        "valid",
    )

    framework_id: str = Field(description="e.g. the CoRE MOF refcode")
    framework_formula: str
    guest: str = Field(description="guest molecule formula, e.g. 'CO2'")
    loading: int = Field(1, description="guest molecules in the cell")
    placement_index: int = 0
    dispersion: bool = Field(description="D3 correction added to every term")
    final_structure: Structure
    complex_energy: float = Field(description="eV, framework + guests, relaxed")
    framework_energy: float = Field(description="eV, empty framework, relaxed")
    guest_energy: float = Field(description="eV, one isolated guest, relaxed")
    adsorption_energy: float = Field(description="eV, per cell (all guests), with D3 if on")
    dispersion_correction: float | None = Field(
        None, description="eV, the D3 part of adsorption_energy; None without D3")
    chemisorption_bonds: list[str] = Field(
        default_factory=list, description="guest-metal bonds made in the relaxation, "
        "e.g. 'O120-Zn3' (reported, not rejected)")
    converged: bool = True

    @model_validator(mode="after")
    def _check_energies(self):
        if self.provenance.energy_reference is None:
            raise ValueError("a MOF adsorption energy needs provenance.energy_reference")
        expected = self.complex_energy - self.framework_energy - self.loading * self.guest_energy
        if abs(expected - self.adsorption_energy) > ENERGY_CONSISTENCY_TOL:
            raise ValueError(f"adsorption_energy {self.adsorption_energy} != {expected}")
        if self.dispersion != (self.dispersion_correction is not None):
            raise ValueError("dispersion_correction is given if and only if dispersion is on")
        return self

    @computed_field
    @property
    def adsorption_energy_without_dispersion(self) -> float:
        """eV, E_ads of the same geometries without D3."""
        return self.adsorption_energy - (self.dispersion_correction or 0.0)

    @computed_field
    @property
    def chemisorbed(self) -> bool:
        return bool(self.chemisorption_bonds)

    @computed_field
    @property
    def valid(self) -> bool:
        return not self.anomalies and self.converged
