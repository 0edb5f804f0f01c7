"""Adsorption on surfaces: one document per relaxed placement, one per best placement.

E_ads = [E(slab + n adsorbates) - E(slab) - n E_ref(adsorbate)] / n, per adsorbate (the
integral, average adsorption energy), with
n = ``coverage`` adsorbates per cell (1 unless the screen asked for more) and E_ref from
the reference scheme recorded in ``provenance.energy_reference``; a document whose
numbers do not add up is refused.
"""

from pydantic import BaseModel, Field, computed_field, model_validator
from pymatgen.core import Structure

from .anomaly import Anomaly
from .document import ResultDoc

SITE_DESCRIPTION = (
    "where the binding atom ENDED after relaxation, by its surface neighbours: ontop (1), "
    "bridge (2), fcc or hcp (3-fold; hcp has a second-layer atom below), 4fold (fcc(100)), "
    "Nfold for other counts; 'step-' when the neighbours lie in more than one layer "
    "(steps, (110) troughs); a multidentate adsorbate's binding atoms' sites joined by '+', "
    "first binding atom first (bridge+ontop)")

SITE_COMPOSITION_DESCRIPTION = (
    "elements of the slab atoms forming the binding atom's final site, one symbol per atom, "
    "alphabetical (e.g. 'NiPtPt': a hollow of two Pt and one Ni); per binding atom joined by "
    "'+' for a multidentate adsorbate; None where not recorded")

COVERAGE_DESCRIPTION = "adsorbates per cell; energies are per adsorbate"
COVERAGE_ML_DESCRIPTION = (
    "monolayers: adsorbates per atom of the slab's top layer (1/9 for one adsorbate on a 3x3 "
    "fcc(111) cell); None where not recorded")

# eV; the stored E_ads must equal E - E_slab - E_ref to this (float round-off only)
ENERGY_CONSISTENCY_TOL = 1e-6


class AdsorptionUncertainty(BaseModel):
    """The committee's error bar on an adsorption energy, and the domain flag (issue 27).

    Each member k of the task's committee gives its own E_ads,k = [E_k(slab + N A) -
    E_k(slab) - N sum_i n_i E_k(gas_i)] / N (:func:`adsorption_energy` member by member, at
    the final relaxed geometries): what a member shares between slab, adsorbate and gas
    cancels. sigma = committee_scale x std over the members (ddof 1). All None when the
    screen ran without ``uncertainty`` (or before it existed).
    """

    adsorption_energy_members: list[float] | None = Field(
        None, description="eV per adsorbate, each committee member's own adsorption energy "
        "(raw, not scaled)")
    adsorption_energy_std: float | None = Field(
        None, description="eV, committee_scale x standard deviation (ddof 1) of "
        "adsorption_energy_members")
    committee_scale: float | None = Field(
        None, description="calibration factor of the committee's spread, from the checkpoint")
    out_of_domain: list[str] = Field(
        default_factory=list, description="elements of the slab or adsorbate the task was "
        "never trained on (empty also where the checkpoint does not record them)")


def adsorption_energy(energy: float, slab_energy: float, reference_energy: float,
                      copies: int = 1) -> float:
    """E_ads per adsorbate, eV: [E(slab + N A) - E(slab) - N E_ref(A)] / N.

    ``energy``: the relaxed slab (or framework, or cluster) with ``copies`` = N adsorbates;
    ``reference_energy``: E_ref of ONE adsorbate, sum_i n_i E_ref_i under its scheme (gas
    molecules or per-element energies). The one formula of every layer (surface and MOF
    screens, DFT validations), so that two numbers compared are the same quantity.

    >>> adsorption_energy(-120.0, -100.0, -6.0, copies=2)
    -4.0
    """
    return (energy - slab_energy - copies * reference_energy) / copies


def _model_of(doc: ResultDoc) -> tuple[str, str, str]:
    p = doc.provenance
    return p.model_name, p.task, p.checkpoint_hash


def _require_reference(doc: ResultDoc) -> None:
    if doc.provenance.energy_reference is None:
        raise ValueError(
            "an adsorption energy needs provenance.energy_reference (scheme and values)"
        )


class PlacementRelaxation(BaseModel):
    """One placement relaxed, before any reference: what a relaxation job outputs.

    Keyed (through its job) by the MLIP settings, the slab and the placement settings
    only, never by the reference scheme: adsorption energies under any scheme are made
    from it (:class:`AdsorptionPlacementDoc`), so another reference relaxes nothing.
    A job output, not filed in a collection of its own.
    """

    slab_id: str
    adsorbate_id: str
    placement_index: int
    initial_site_type: str | None = None
    site_type: str = Field(description=SITE_DESCRIPTION)
    site_composition: str | None = Field(None, description=SITE_COMPOSITION_DESCRIPTION)
    site_position: tuple[float, float, float]
    initial_structure: Structure
    final_structure: Structure
    energy: float = Field(description="eV, relaxed slab + adsorbates")
    coverage: int = Field(1, description=COVERAGE_DESCRIPTION)
    coverage_ml: float | None = Field(None, description=COVERAGE_ML_DESCRIPTION)
    converged: bool = True
    anomalies: list[Anomaly] = Field(default_factory=list)
    device: str = Field("", description="the device that ran the relaxation")


class AdsorptionPlacementDoc(AdsorptionUncertainty, ResultDoc):
    """One adsorbate placement on one slab, relaxed, with its adsorption energy."""

    collection = "adsorption_placements"
    key_fields = ("slab_id", "adsorbate_id", "placement_index")
    index_fields = ("adsorbate", "bulk_formula", "adsorption_energy", "valid", "settings_id")
    summary_fields = (
        "slab_id",
        "adsorbate",
        "placement_index",
        "site_type",
        "adsorption_energy",
        "valid",
        "settings_id",
    )

    slab_id: str = Field(description="SlabDoc.slab_id of the clean slab")
    bulk_id: str
    bulk_formula: str
    miller_index: tuple[int, int, int]
    termination: str = Field("", description="SlabDoc.termination of the slab, e.g. 'NiPt'")
    adsorbate: str = Field(description="adsorbate formula as placed, e.g. 'CO', 'OH'")
    adsorbate_id: str | None = Field(
        None, description="the adsorbate's geometry and binding atom: its name for a built-in "
        "one ('CO'), FORMULA:INDEX-HASH for one read from a file (two files of one formula "
        "are two adsorbates)")
    placement_index: int = Field(description="index of this placement on this slab")
    site_type: str = Field(description=SITE_DESCRIPTION)
    initial_site_type: str | None = Field(
        None, description="the site the placement started from (ontop, bridge, hollow, random; "
        "a multidentate adsorbate's first and second binding atoms', e.g. ontop+bridge)")
    site_composition: str | None = Field(None, description=SITE_COMPOSITION_DESCRIPTION)
    site_position: tuple[float, float, float] = Field(
        description="A, Cartesian, of the binding atom after relaxation")
    initial_structure: Structure
    final_structure: Structure
    energy: float = Field(description="eV, relaxed slab + adsorbate")
    slab_energy: float = Field(description="eV, relaxed clean slab")
    reference_energy: float = Field(description="eV, E_ref of one adsorbate under the scheme")
    coverage: int = Field(1, description=COVERAGE_DESCRIPTION)
    coverage_ml: float | None = Field(None, description=COVERAGE_ML_DESCRIPTION)
    adsorption_energy: float = Field(description="eV per adsorbate")
    converged: bool = True

    @model_validator(mode="after")
    def _check_energies(self):
        _require_reference(self)
        n = self.coverage
        expected = adsorption_energy(self.energy, self.slab_energy, self.reference_energy, n)
        if abs(expected - self.adsorption_energy) > ENERGY_CONSISTENCY_TOL:
            raise ValueError(
                f"adsorption_energy {self.adsorption_energy} != (energy - slab_energy - "
                f"{n} reference_energy) / {n} = {expected}"
            )
        return self

    @computed_field
    @property
    def valid(self) -> bool:
        return not self.anomalies and self.converged


class BestAdsorptionDoc(AdsorptionUncertainty, ResultDoc):
    """The lowest-energy valid placement of one adsorbate on one slab."""

    collection = "adsorption_best"
    key_fields = ("slab_id", "adsorbate_id")
    index_fields = ("adsorbate", "bulk_formula", "adsorption_energy", "settings_id")
    summary_fields = (
        "slab_id",
        "adsorbate",
        "adsorption_energy",
        "site_type",
        "n_valid",
        "n_placements",
        "settings_id",
    )

    slab_id: str
    bulk_id: str
    bulk_formula: str
    miller_index: tuple[int, int, int]
    termination: str = Field("", description="SlabDoc.termination of the slab, e.g. 'NiPt'")
    adsorbate: str
    adsorbate_id: str | None = None
    adsorption_energy: float | None = Field(None, description="eV per adsorbate; None: no "
                                            "valid placement")
    coverage: int = Field(1, description=COVERAGE_DESCRIPTION)
    coverage_ml: float | None = Field(None, description=COVERAGE_ML_DESCRIPTION)
    best_placement_index: int | None = None
    site_type: str | None = Field(None, description=SITE_DESCRIPTION)
    initial_site_type: str | None = None
    site_composition: str | None = Field(None, description=SITE_COMPOSITION_DESCRIPTION)
    final_structure: Structure | None = None
    n_placements: int
    n_valid: int
    # --free-energy (workflows/thermo/free_energy_flow.py): None when the screen ran without it
    zpe: float | None = Field(None, description="eV, zero-point energy of the adsorbate's modes "
                                "(per adsorbate)")
    free_energy_correction: float | None = Field(
        None, description="eV per adsorbate, ZPE - TS + int(C dT) of the adsorbate (harmonic) "
        "minus that of its gas references (ideal gas), at provenance.settings.free_energy's "
        "T and p")
    adsorption_free_energy: float | None = Field(
        None, description="eV, adsorption_energy + free_energy_correction")
    n_imaginary: int | None = Field(None, description="imaginary modes left out of the free "
                                    "energy (not a minimum when > 0)")
    adsorption_free_energy_std: float | None = Field(
        None, description="eV, sigma of adsorption_free_energy: the members' E_ads plus the one "
        "free_energy_correction (made with the task itself, not per member), so equal to "
        "adsorption_energy_std")

    @classmethod
    def from_placements(cls, placements: list[AdsorptionPlacementDoc]) -> "BestAdsorptionDoc":
        """Pick the valid placement of lowest E_ads; all must share slab, adsorbate and model."""
        if not placements:
            raise ValueError("no placements to choose from")
        first = placements[0]
        same = {(p.slab_id, p.adsorbate_id, p.settings_id) + _model_of(p) for p in placements}
        if len(same) != 1:
            raise ValueError(f"placements of different slabs, adsorbates or models: {same}")
        valid = [p for p in placements if p.valid]
        best = min(valid, key=lambda p: p.adsorption_energy) if valid else None
        return cls(
            provenance=first.provenance.model_copy(update={"jobflow_uuid": None}),
            settings_id=first.settings_id,
            slab_id=first.slab_id,
            bulk_id=first.bulk_id,
            bulk_formula=first.bulk_formula,
            miller_index=first.miller_index,
            termination=first.termination,
            adsorbate=first.adsorbate,
            adsorbate_id=first.adsorbate_id,
            coverage=first.coverage,
            coverage_ml=first.coverage_ml,
            adsorption_energy=best.adsorption_energy if best else None,
            best_placement_index=best.placement_index if best else None,
            site_type=best.site_type if best else None,
            initial_site_type=best.initial_site_type if best else None,
            site_composition=best.site_composition if best else None,
            final_structure=best.final_structure if best else None,
            n_placements=len(placements),
            n_valid=len(valid),
            out_of_domain=first.out_of_domain,
            **({name: getattr(best, name) for name in AdsorptionUncertainty.model_fields
                if name != "out_of_domain"} if best else {}),
        )

    @model_validator(mode="after")
    def _check(self):
        _require_reference(self)
        if self.adsorption_free_energy is not None:
            expected = (self.adsorption_energy or 0.0) + (self.free_energy_correction or 0.0)
            if abs(expected - self.adsorption_free_energy) > ENERGY_CONSISTENCY_TOL:
                raise ValueError(f"adsorption_free_energy {self.adsorption_free_energy} != "
                                 f"adsorption_energy + free_energy_correction = {expected}")
        return self

    @computed_field
    @property
    def valid(self) -> bool:
        return not self.anomalies and self.adsorption_energy is not None
