"""Periodic DFT (GPAW) validation of a surface screen, and the AdsorbML success rate.

For each chosen (slab, adsorbate) of a stored screen (a
:class:`GPAWValidationTarget`: its K valid placements of lowest MLIP E_ads, its
clean slab and the gas molecules of its reference scheme, all at the MLIP's
relaxed geometries), :class:`GPAWValidationMaker` makes one GPAW single point
per geometry (:mod:`.gpaw_runner`, GPAW in its own process) with one
:class:`GPAWSettings` for every term, and then

    E_ads(DFT) = E(slab+ads) - E(slab) - E_ref(gas, the screen's scheme)

per placement, beside the screen's MLIP value, in one :class:`GPAWValidationDoc`
with the AdsorbML criterion (:mod:`.adsorbml`).

Every single point is a keyed job (``result_identity`` of its geometry and kind
with all settings, GPAW and setup versions): a re-run, or another adsorbate on the same slab, reuses
the stored ones; other settings make new ones. A clean slab shared by several
adsorbates and a gas molecule shared by all targets are computed once. A single
point that fails (SCF not converged) stops its target: run again once the
settings are fixed, the finished terms are reused.
"""

from dataclasses import dataclass, field

from jobflow import Flow, Maker, job
from monty.json import MSONable
from omni_flows.db_schemas import (
    AdsorptionPlacementDoc,
    MLIPCalculationDoc,
    Provenance,
    ReferenceScheme,
    SlabDoc,
    adsorption_energy,
)
from omni_flows.db_schemas.fingerprint import content_hash, structure_fingerprint
from omni_flows.db_schemas.legacy import identity_of
from omni_flows.db_schemas.provenance import dft_provenance
from omni_flows.db_schemas.identity import ResultIdentity, result_identity
from omni_flows.db_schemas.gpaw_validation import (
    DFTCalculationDoc,
    GPAWValidationDoc,
    ValidatedPlacement,
)
from pymatgen.core import Molecule, Structure

from .adsorbml import SUCCESS_THRESHOLD, adsorbml_success
from ..errors import WorkflowInputError
from .gpaw_runner import MOLECULE, SLAB, GPAWSettings, require_gpaw, run_gpaw
from ..identity import keyed
from ..thermo.references import energy_reference, molecules_needed, reference_counts
from ..flows.validation import require_one_per_cell


def single_point_identity(structure: Structure | Molecule, kind: str,
                          settings_key: dict) -> ResultIdentity:
    """A single point is its geometry and kind, made with every DFT setting."""
    return result_identity("gpaw single point", {"structure": structure_fingerprint(structure),
                                                 "kind": kind}, settings_key)


@dataclass
class GPAWValidationTarget(MSONable):
    """One (slab, adsorbate) of a screen: its K lowest valid placements, slab and gas."""

    slab_id: str
    bulk_formula: str
    miller_index: tuple[int, int, int]
    adsorbate: str
    placements: list[dict]  # {"index", "site_type", "structure", "mlip"}, lowest MLIP first
    slab: Structure
    gas: dict[str, Molecule]
    scheme: str
    top_k: int
    source_provenance: dict = field(default_factory=dict)
    screen_settings_id: str = ""

    @classmethod
    def from_documents(
        cls,
        placements: list[AdsorptionPlacementDoc | dict],
        slab: SlabDoc | dict,
        gas: dict[str, MLIPCalculationDoc | dict],
        top_k: int,
    ) -> "GPAWValidationTarget":
        """From a screen's stored placements (of one slab and adsorbate), slab and gas."""
        docs = [AdsorptionPlacementDoc.model_validate(p) if isinstance(p, dict) else p
                for p in placements]
        slab = SlabDoc.model_validate(slab) if isinstance(slab, dict) else slab
        if top_k < 1:
            raise WorkflowInputError(f"top_k must be at least 1, not {top_k}")
        valid = sorted((p for p in docs if p.valid), key=lambda p: p.adsorption_energy)
        if not valid:
            raise WorkflowInputError("no valid placement to validate")
        first = valid[0]
        require_one_per_cell(first)
        if len({(p.slab_id, p.adsorbate, p.settings_id) for p in valid}) != 1:
            raise WorkflowInputError("placements of different slabs, adsorbates or settings")
        if slab.slab_id != first.slab_id:
            raise WorkflowInputError(f"slab {slab.slab_id} is not the placements' {first.slab_id}")
        scheme = ReferenceScheme(first.provenance.energy_reference.scheme)
        molecules = {}
        for name in molecules_needed([first.adsorbate], scheme):
            if name not in gas:
                raise WorkflowInputError(
                    f"the gas molecule {name} of the {scheme.value} reference of "
                    f"{first.adsorbate} is missing; give the screen's relaxed {name}")
            doc = gas[name]
            doc = MLIPCalculationDoc.model_validate(doc) if isinstance(doc, dict) else doc
            molecules[name] = doc.output.structure
        chosen = [{"index": p.placement_index, "site_type": p.site_type,
                   "structure": p.final_structure, "mlip": p.adsorption_energy}
                  for p in valid[:top_k]]
        return cls(slab_id=first.slab_id, bulk_formula=first.bulk_formula,
                   miller_index=tuple(first.miller_index), adsorbate=first.adsorbate,
                   placements=chosen, slab=slab.structure, gas=molecules, scheme=scheme.value,
                   top_k=top_k, source_provenance=first.provenance.model_dump(mode="json"),
                   screen_settings_id=first.settings_id)

    @property
    def system_id(self) -> str:
        return f"{self.slab_id}|{self.adsorbate}"

    def identity(self, settings_key: dict) -> ResultIdentity:
        """The validation of these geometries with these DFT settings, K and screen."""
        system = {"slab_id": self.slab_id, "adsorbate": self.adsorbate,
                  "structures": self.structures_hash(),
                  "mlip": [p["mlip"] for p in self.placements]}
        made_by = identity_of(self.source_provenance)  # stored in its settings, or beside
        screen = {k: made_by[k] for k in ("model_name", "task", "checkpoint_hash")}
        return result_identity("gpaw validation", system, {
            "dft": settings_key, "top_k": self.top_k,
            "screen": {**screen, "settings_id": self.screen_settings_id}})

    def structures_hash(self) -> str:
        return content_hash({
            "slab": structure_fingerprint(self.slab),
            "placements": [structure_fingerprint(p["structure"]) for p in self.placements],
            "gas": {k: structure_fingerprint(m) for k, m in sorted(self.gas.items())},
            "scheme": self.scheme})


@job
def gpaw_single_point(structure: Structure | Molecule, kind: str, gpaw: GPAWSettings,
                      label: str) -> DFTCalculationDoc:
    """One GPAW single point (in its own process) as a stored document."""
    result = run_gpaw(structure, kind, gpaw)
    identity = single_point_identity(structure, kind, gpaw.key())
    return DFTCalculationDoc(
        provenance=dft_provenance("GPAW", gpaw.xc, identity.settings, result["versions"]),
        settings_id=identity.settings_id,
        label=label, kind=kind, formula_pretty=structure.composition.reduced_formula,
        structure=structure, structure_hash=structure_fingerprint(structure),
        dft_level=gpaw.level(), settings=identity.settings,
        parameters=result["parameters"], energy=result["energy"],
        free_energy=result["free_energy"], forces=[tuple(f) for f in result["forces"]],
        magmom=result["magmom"], spin_polarized=result["spin_polarized"],
        kpts=tuple(result["kpts"]), versions=result["versions"], setups=result["setups"],
        iterations=result["iterations"], wall_s=result["wall_s"])


def _energy(doc: DFTCalculationDoc | dict) -> float:
    return float(doc["energy"] if isinstance(doc, dict) else doc.energy)


@job
def gpaw_validation_document(target: GPAWValidationTarget, placement_calcs: list,
                             slab_calc, gas_calcs: dict,
                             gpaw: GPAWSettings) -> GPAWValidationDoc:
    """The DFT E_ads of each validated placement beside the MLIP's, and AdsorbML's criterion."""
    key = gpaw.key()
    identity = target.identity(key)
    gas = {name: _energy(doc) for name, doc in gas_calcs.items()}
    scheme = ReferenceScheme(target.scheme)
    reference = energy_reference(gas, scheme, f"{gpaw.level()} single points at the "
                                              "screen's gas geometries")
    e_ref = reference.energy_of(reference_counts(target.adsorbate, scheme))
    e_slab = _energy(slab_calc)
    placements = [
        ValidatedPlacement(placement_index=p["index"], site_type=p["site_type"],
                           structure_hash=structure_fingerprint(p["structure"]),
                           mlip_adsorption_energy=p["mlip"], dft_energy=_energy(calc),
                           dft_adsorption_energy=adsorption_energy(_energy(calc), e_slab, e_ref))
        for p, calc in zip(target.placements, placement_calcs)]
    best_mlip = placements[0]  # lowest MLIP E_ads first
    best_dft = min(placements, key=lambda p: p.dft_adsorption_energy)
    source = target.source_provenance
    provenance = Provenance.model_validate(source).model_copy(
        update={"energy_reference": reference, "jobflow_uuid": None,
                "settings": identity.settings})
    versions = slab_calc["versions"] if isinstance(slab_calc, dict) else slab_calc.versions
    return GPAWValidationDoc(
        provenance=provenance, system_id=target.system_id, slab_id=target.slab_id,
        bulk_formula=target.bulk_formula, miller_index=target.miller_index,
        adsorbate=target.adsorbate, top_k=target.top_k, placements=placements,
        structures_hash=target.structures_hash(),
        source_provenance=Provenance.model_validate(source) if source else None,
        mlip_adsorption_energy=best_mlip.mlip_adsorption_energy,
        dft_adsorption_energy=best_mlip.dft_adsorption_energy,
        lowest_dft_adsorption_energy=best_dft.dft_adsorption_energy,
        best_mlip_placement_index=best_mlip.placement_index,
        best_dft_placement_index=best_dft.placement_index,
        success_threshold=SUCCESS_THRESHOLD,
        adsorbml_success=adsorbml_success(best_mlip.dft_adsorption_energy,
                                          best_dft.dft_adsorption_energy),
        dft_slab_energy=e_slab, dft_gas_energies=gas, dft_reference_energy=e_ref,
        dft_level=gpaw.level(), settings=key, settings_id=identity.settings_id,
        screen_settings_id=target.screen_settings_id, versions=dict(versions))


DOCUMENT_JOB = "GPAW validation"


@dataclass
class GPAWValidationMaker(Maker):
    """GPAW single points of screen results and their AdsorbML success (see module doc).

    ``make(targets)`` takes :class:`GPAWValidationTarget` s and returns a Flow
    whose output is the list of :class:`GPAWValidationDoc`. ``gpaw``: every DFT
    setting, the same for every term.
    """

    name: str = "GPAW validation"
    gpaw: GPAWSettings = field(default_factory=GPAWSettings)

    def make(self, targets: list[GPAWValidationTarget]) -> Flow:
        if not targets:
            raise WorkflowInputError("no results to validate: choose at least one")
        require_gpaw()  # before any job exists: the install steps, not a failed flow
        settings = self.gpaw
        key = settings.key()
        jobs, outputs, shared = [], [], {}

        def single_point(structure, kind, label):
            """The keyed job of one geometry, shared by every target that needs it."""
            fingerprint = (structure_fingerprint(structure), kind)
            if fingerprint not in shared:
                j = keyed(gpaw_single_point(structure, kind, settings, label),
                          single_point_identity(structure, kind, key))
                j.name = f"GPAW {label}"
                jobs.append(j)
                shared[fingerprint] = j
            return shared[fingerprint].output

        for target in targets:
            gas = {name: single_point(m, MOLECULE, f"{name}(g)")
                   for name, m in sorted(target.gas.items())}
            slab = single_point(target.slab, SLAB, f"slab {target.slab_id}")
            placements = [single_point(p["structure"], SLAB, f"{target.system_id}#{p['index']}")
                          for p in target.placements]
            doc = keyed(gpaw_validation_document(target, placements, slab, gas, settings),
                        target.identity(key))
            doc.name = f"{DOCUMENT_JOB} {target.system_id}"
            jobs.append(doc)
            outputs.append(doc.output)
        return Flow(jobs, output=outputs, name=self.name)
