"""Periodic DFT validation of a screen: GPAW single points and their adsorption energies.

Two documents:

- :class:`DFTCalculationDoc` (``dft_calculations``): one DFT single point of one
  geometry (a slab with or without adsorbate, a gas molecule in its box): energy,
  forces, moments, settings and code versions. These are training data too
  (structure, energy, forces).
- :class:`GPAWValidationDoc` (``dft_validation``): one (slab, adsorbate) of a
  screen: the DFT adsorption energies of its K lowest MLIP placements beside
  the MLIP's, and whether the AdsorbML criterion holds.

Identity (``db_schemas.identity.result_identity``). A DFT number depends on
the geometry and on every DFT setting, so both documents carry ``settings``
(functional, cutoff, k-points, smearing, dipole layer, spin rule, box, SCF
criteria, GPAW and PAW-setup versions; also in ``provenance.settings``) and
their ``settings_id``, which is part of the natural key: the same geometry
computed with other settings is another document, never a replacement. For a
DFT calculation ``provenance`` names the code where an MLIP result names its
model (``provenance.dft_provenance``): ``model_name`` 'GPAW', ``task`` the
functional, ``checkpoint_hash`` '' (a DFT code has no checkpoint; older documents:
``db_schemas.legacy``). For a validation ``provenance`` is the screen's model (whose
placements were validated), with the DFT gas references in
``energy_reference``; its settings are the DFT settings, K and the screen's
settings id.
"""

from typing import Any

from pydantic import BaseModel, Field, computed_field
from pymatgen.core import Molecule, Structure

from .document import ResultDoc
from .provenance import Provenance


class DFTCalculationDoc(ResultDoc):
    """One DFT single point (energy, forces) of one geometry."""

    collection = "dft_calculations"
    key_fields = ("structure_hash", "kind", "dft_code")
    index_fields = ("label", "formula_pretty", "kind")
    summary_fields = ("label", "formula_pretty", "kind", "energy", "magmom", "dft_level",
                      "wall_s")

    label: str = Field(description="e.g. 'Pt-ab12/1,1,1/0.5000|H#2', 'slab ...', 'H2(g)'")
    kind: str = Field(description="'slab' (periodic in xy) or 'molecule' (in a box)")
    formula_pretty: str = ""
    structure: Structure | Molecule = Field(description="the geometry given (the MLIP's)")
    structure_hash: str = Field(description="structure_fingerprint of structure")
    dft_code: str = "gpaw"
    dft_level: str = Field("", description="e.g. 'GPAW PBE/PW450/k4/A^-1'")
    settings: dict[str, Any] = Field(description="every setting that decides the number")
    parameters: dict[str, Any] = Field(default_factory=dict, description="the code's input")
    energy: float = Field(description="eV, extrapolated to zero smearing")
    free_energy: float | None = Field(None, description="eV, with the smearing entropy")
    forces: list[tuple[float, float, float]] = Field(description="eV/A, per atom")
    magmom: float = Field(0.0, description="mu_B, total")
    spin_polarized: bool = False
    kpts: tuple[int, int, int] = Field(description="Monkhorst-Pack grid")
    versions: dict[str, Any] = Field(default_factory=dict, description="gpaw, gpaw-data, libxc")
    setups: dict[str, Any] = Field(default_factory=dict, description="PAW setup per element")
    iterations: int | None = Field(None, description="SCF iterations")
    wall_s: float | None = None


class ValidatedPlacement(BaseModel):
    """One MLIP placement, its MLIP and DFT adsorption energies (eV)."""

    placement_index: int
    site_type: str | None = None
    structure_hash: str
    mlip_adsorption_energy: float
    dft_energy: float = Field(description="eV, E(slab+adsorbate)")
    dft_adsorption_energy: float

    @computed_field
    @property
    def mlip_minus_dft(self) -> float:
        return self.mlip_adsorption_energy - self.dft_adsorption_energy


class GPAWValidationDoc(ResultDoc):
    """One (slab, adsorbate): DFT single points at its K lowest MLIP placements.

    ``mlip_adsorption_energy`` is the screen's best (the lowest MLIP value);
    ``dft_adsorption_energy`` the DFT value at that same placement;
    ``lowest_dft_adsorption_energy`` the lowest DFT value among the validated
    placements. ``adsorbml_success``: the first lies within
    ``success_threshold`` (0.1 eV) of, or below, the second (see
    ``omni_flows.workflows.dft.adsorbml``).
    """

    collection = "dft_validation"
    key_fields = ("slab_id", "adsorbate", "dft_code", "structures_hash")
    index_fields = ("adsorbate", "bulk_formula", "adsorbml_success")
    summary_fields = ("slab_id", "adsorbate", "mlip_adsorption_energy", "dft_adsorption_energy",
                      "lowest_dft_adsorption_energy", "adsorbml_success", "dft_level")

    system_id: str = Field(description="'<slab_id>|<adsorbate>'")
    slab_id: str
    bulk_formula: str
    miller_index: tuple[int, int, int]
    adsorbate: str
    top_k: int = Field(description="placements asked for (fewer if the screen has fewer valid)")
    placements: list[ValidatedPlacement] = Field(description="by MLIP E_ads, lowest first")
    structures_hash: str = Field(description="hash of the slab, placement and gas geometries")
    source_provenance: Provenance | None = Field(None, description="of the screen's placements")
    mlip_adsorption_energy: float = Field(description="eV, the MLIP's best placement")
    dft_adsorption_energy: float = Field(description="eV, DFT at the MLIP's best placement")
    lowest_dft_adsorption_energy: float = Field(description="eV, over the validated placements")
    best_mlip_placement_index: int
    best_dft_placement_index: int
    success_threshold: float = Field(0.1, description="eV")
    adsorbml_success: bool
    dft_slab_energy: float = Field(description="eV, the clean slab")
    dft_gas_energies: dict[str, float] = Field(description="eV, gas molecules by formula")
    dft_reference_energy: float = Field(description="eV, E_ref of the adsorbate (DFT)")
    dft_code: str = "gpaw"
    dft_level: str = ""
    settings: dict[str, Any] = Field(description="every DFT setting, the same for every term")
    screen_settings_id: str = Field("", description="settings id of the screen's placements")
    versions: dict[str, Any] = Field(default_factory=dict, description="gpaw, gpaw-data, libxc")

    @computed_field
    @property
    def mlip_minus_dft(self) -> float:
        """eV, at the MLIP's best placement."""
        return self.mlip_adsorption_energy - self.dft_adsorption_energy

    @computed_field
    @property
    def mae(self) -> float:
        """eV, mean |MLIP - DFT| E_ads over the validated placements."""
        return sum(abs(p.mlip_minus_dft) for p in self.placements) / len(self.placements)
