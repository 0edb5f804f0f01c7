"""Surface adsorption: bulk -> slabs -> sites and placements -> relaxations -> E_ads -> best.

One static jobflow Flow (no jobs made at run time, so an interrupted or repeated
run resumes from the store): a bulk relaxation (cell too), one job per clean
slab, one per gas reference molecule, one per (slab, adsorbate) relaxing all its
placements in one batch (then site, anomaly checks and E_ads per placement) and
one per (slab, adsorbate) choosing the best valid placement.

Identity: every job is keyed, and every document carries the settings id, from
:func:`omni_flows.db_schemas.identity.result_identity` over the system and the
settings that decide its number (:func:`surface_settings`). A screen with
another fmax, placement cap, reference scheme or adsorbate geometry is other
jobs and other documents; the same screen again is the same jobs.
"""

from dataclasses import asdict, dataclass, field

import numpy as np
from jobflow import Flow, Maker, job
from omni_flows.db_schemas import (
    AdsorptionPlacementDoc,
    BestAdsorptionDoc,
    MLIPCalculationDoc,
    ReferenceScheme,
    SlabDoc,
    slab_id,
)
from omni_flows.db_schemas.fingerprint import structure_fingerprint
from omni_flows.db_schemas.identity import result_identity, settings_id
from pymatgen.core import Structure

from .adsorbates import Adsorbate, get_adsorbate
from .anomaly import detect_anomalies
from .conversion import to_atoms, to_pymatgen
from .free_energy_flow import best_placement_free_energy, free_energy_settings
from .identity import keyed
from .placements import PlacementSettings, make_placements
from .provenance import provenance_of
from .references import adsorbate_references, energy_reference, reference_molecules
from .relax import get_calculator, relax
from .relax_maker import OmniRelaxMaker
from .settings import MLIPSettings
from .sites import site_type
from .slabs import SlabSpec, bulk_structure, make_slab, terminations
from .thermochemistry import FreeEnergySettings

__all__ = ["MLIPSettings", "SurfaceAdsorptionMaker", "gas_reference_jobs", "surface_settings"]


def slab_settings(mlip: MLIPSettings, spec: SlabSpec) -> dict:
    """What decides a clean slab's numbers."""
    return {"mlip": mlip.identity(), "slab": asdict(spec)}


def surface_settings(mlip: MLIPSettings, spec: SlabSpec, placements: PlacementSettings,
                     reference: ReferenceScheme) -> dict:
    """What decides an adsorption energy of a surface screen (its settings id's content)."""
    return {**slab_settings(mlip, spec), "placements": asdict(placements),
            "reference": ReferenceScheme(reference).value}


def _hkl_label(miller) -> str:
    return "".join(str(i) for i in miller)


def bulk_name(structure: Structure) -> str:
    """The bulk's id: formula and structure fingerprint."""
    return f"{structure.composition.reduced_formula}-{structure_fingerprint(structure)[:8]}"


def slab_name(bulk_id, miller, shift, spec: SlabSpec) -> str:
    """``slab_id`` plus the cell (supercell or minimum lateral size, layers)."""
    cell = spec.supercell
    size = f"{cell[0]}x{cell[1]}" if cell else f"min{spec.min_lateral:g}A"
    return f"{slab_id(bulk_id, tuple(miller), shift)}/{size}x{spec.n_layers or 'auto'}"


@job
def relax_slab(
    bulk_doc: MLIPCalculationDoc,
    bulk_id: str,
    miller: tuple[int, int, int],
    shift: float,
    spec: SlabSpec,
    mlip: MLIPSettings,
    settings_id: str,
    settings: dict,
) -> SlabDoc:
    """Cut the slab from the relaxed bulk and relax it with its bottom layers fixed."""
    bulk = bulk_doc.output.structure
    structure, fixed = make_slab(bulk, tuple(miller), shift, spec)
    (out,) = relax([to_atoms(structure, fixed)], mlip)
    area = float(np.linalg.norm(np.cross(*structure.lattice.matrix[:2])))
    e_bulk = bulk_doc.output.energy_per_atom
    return SlabDoc(
        provenance=provenance_of(mlip, settings, device=str(get_calculator(mlip).device)),
        settings_id=settings_id,
        bulk_id=bulk_id,
        bulk_formula=bulk.composition.reduced_formula,
        miller_index=tuple(miller),
        shift=shift,
        slab_id=slab_name(bulk_id, miller, shift, spec),
        structure=to_pymatgen(out.atoms),
        fixed_indices=fixed,
        min_slab_size=spec.min_slab_size,
        min_vacuum_size=spec.min_vacuum_size,
        area=area,
        energy=out.energy,
        # both faces counted alike: the fixed bottom face is bulk-terminated, so this is approximate
        surface_energy=(out.energy - len(structure) * e_bulk) / (2 * area),
    )


@job
def relax_placements(
    slab: SlabDoc,
    adsorbate: Adsorbate,
    gas_docs: dict,
    scheme: ReferenceScheme,
    placement: PlacementSettings,
    mlip: MLIPSettings,
    settings_id: str,
    settings: dict,
) -> list[AdsorptionPlacementDoc]:
    """Place the adsorbate on the relaxed slab, relax every placement in one batch (one
    batched graph per optimizer step), name the site it ended in, check anomalies and
    compute each E_ads."""
    scheme = ReferenceScheme(scheme)
    placements = make_placements(slab.structure, slab.fixed_indices, adsorbate, placement)
    outcomes = relax([to_atoms(p.structure, slab.fixed_indices) for p in placements], mlip)
    gas = {name: doc.output.energy for name, doc in gas_docs.items()}
    reference = energy_reference(gas, scheme, f"gas molecules relaxed in a box with "
                                 f"{mlip.model}/{mlip.task or 'single-task'}")
    e_ref = reference.energy_of(adsorbate_references(adsorbate, scheme))
    provenance = provenance_of(mlip, settings, reference, str(get_calculator(mlip).device))
    docs = []
    n_slab = len(slab.structure)
    for i, (p, out) in enumerate(zip(placements, outcomes)):
        final = to_pymatgen(out.atoms)
        binder = p.adsorbate_indices[adsorbate.binding_index]
        docs.append(AdsorptionPlacementDoc(
            provenance=provenance,
            settings_id=settings_id,
            anomalies=detect_anomalies(p.structure, final, p.adsorbate_indices),
            slab_id=slab.slab_id,
            bulk_id=slab.bulk_id,
            bulk_formula=slab.bulk_formula,
            miller_index=slab.miller_index,
            adsorbate=adsorbate.formula,
            adsorbate_id=adsorbate.adsorbate_id,
            placement_index=i,
            site_type=site_type(out.atoms, list(range(n_slab)), binder),
            initial_site_type=p.site_type,
            site_position=tuple(float(x) for x in out.atoms.positions[binder]),
            initial_structure=p.structure,
            final_structure=final,
            energy=out.energy,
            slab_energy=slab.energy,
            reference_energy=e_ref,
            adsorption_energy=out.energy - slab.energy - e_ref,
            converged=out.converged,
        ))
    return docs


@job
def best_placement(placements: list[AdsorptionPlacementDoc]) -> BestAdsorptionDoc:
    """The valid placement of lowest E_ads (None when every placement is flagged)."""
    return BestAdsorptionDoc.from_placements(placements)


def gas_reference_jobs(
    adsorbates: list[Adsorbate], scheme: ReferenceScheme, mlip: MLIPSettings
) -> tuple[list, dict]:
    """One relaxation per reference molecule, by reference name (keyed by its identity)."""
    jobs, docs = {}, {}
    maker = OmniRelaxMaker(name="gas", mlip=mlip)
    for name, molecule in reference_molecules(adsorbates, ReferenceScheme(scheme)).items():
        j = maker.make(molecule, label=f"{name}(g)")
        j = jobs.setdefault(j.uuid, j)  # one molecule read for two binding atoms: one job
        docs[name] = j.output
    return list(jobs.values()), docs


@dataclass
class SurfaceAdsorptionMaker(Maker):
    """Adsorbates on the slabs of one bulk, screened with the MLIP.

    ``make(bulk)`` takes an element symbol, a structure file or a Structure.
    All input is checked when the Flow is made (unknown adsorbate, impossible
    facet, element the model does not know, missing reference): a bad input
    fails before any relaxation. Building the Flow loads no model.
    """

    name: str = "surface adsorption"
    miller_indices: list[tuple[int, int, int]] = field(default_factory=lambda: [(1, 1, 1)])
    adsorbates: list[str] = field(default_factory=lambda: ["O", "H"])
    mlip: MLIPSettings = field(default_factory=MLIPSettings)
    slab_spec: SlabSpec = field(default_factory=SlabSpec)
    placements: PlacementSettings = field(default_factory=PlacementSettings)
    reference: ReferenceScheme = ReferenceScheme.GAS_MOLECULES
    all_terminations: bool = False
    # T, p and vibration settings of --free-energy; None: no free energies
    free_energy: FreeEnergySettings | None = None

    @property
    def settings(self) -> dict:
        """The settings of the best-placement documents (with free_energy when asked)."""
        settings = surface_settings(self.mlip, self.slab_spec, self.placements, self.reference)
        return settings if self.free_energy is None else \
            free_energy_settings(settings, self.free_energy)

    @property
    def settings_id(self) -> str:
        """The id every best-placement document of this Maker carries (its placement
        documents carry that of the surface settings alone, shared with and without
        free energies)."""
        return settings_id(self.settings)

    def check(self, bulk) -> tuple[Structure, list[Adsorbate], dict]:
        """Validate every input; return the bulk, adsorbates and terminations per facet."""
        structure = bulk_structure(bulk)
        self.mlip.check_elements([el.symbol for el in structure.composition],
                                 f"bulk {structure.composition.reduced_formula}")
        adsorbates = [get_adsorbate(a) for a in self.adsorbates]
        for ads in adsorbates:
            self.mlip.check_elements(ads.symbols, f"adsorbate {ads.label}")
        reference_molecules(adsorbates, ReferenceScheme(self.reference))
        shifts = {}
        for miller in self.miller_indices:
            found = terminations(structure, tuple(miller), self.slab_spec)
            shifts[tuple(miller)] = found if self.all_terminations else found[:1]
        return structure, adsorbates, shifts

    def make(self, bulk, gas_docs: dict | None = None, bulk_id: str | None = None) -> Flow:
        structure, adsorbates, shifts = self.check(bulk)
        scheme = ReferenceScheme(self.reference)
        formula = structure.composition.reduced_formula
        bulk_id = bulk_id or bulk_name(structure)
        jobs = []
        if gas_docs is None:
            gas_jobs, gas_docs = gas_reference_jobs(adsorbates, scheme, self.mlip)
            jobs += gas_jobs
        bulk_job = OmniRelaxMaker(name="bulk", mlip=self.mlip, relax_cell=True).make(
            structure, label=bulk_id)
        jobs.append(bulk_job)
        slab_set, best_set = slab_settings(self.mlip, self.slab_spec), self.settings
        ads_set = surface_settings(self.mlip, self.slab_spec, self.placements, self.reference)
        outputs = []
        for miller, miller_shifts in shifts.items():
            for shift in miller_shifts:
                system = {"bulk": structure_fingerprint(structure), "miller": miller,
                          "shift": shift}
                slab_identity = result_identity("slab", system, slab_set)
                slab_job = relax_slab(bulk_job.output, bulk_id, miller, shift, self.slab_spec,
                                      self.mlip, slab_identity.settings_id, slab_set)
                slab_job.name = f"slab {formula}({_hkl_label(miller)})"
                keyed(slab_job, slab_identity)
                jobs.append(slab_job)
                for ads in adsorbates:
                    label = f"{ads.label}/{formula}({_hkl_label(miller)})"
                    refs = adsorbate_references(ads, scheme)
                    needed = {name: gas_docs[name] for name in
                              (refs if scheme == ReferenceScheme.GAS_MOLECULES else gas_docs)}
                    identity = result_identity("placements", {**system,
                                               "adsorbate": ads.adsorbate_id}, ads_set)
                    pj = relax_placements(slab_job.output, ads, needed, scheme,
                                          self.placements, self.mlip, identity.settings_id,
                                          ads_set)
                    pj.name = f"placements {label}"
                    keyed(pj, identity)
                    if self.free_energy is None:
                        best = best_placement(pj.output)
                    else:
                        best = best_placement_free_energy(pj.output, ads, needed, scheme,
                                                          self.mlip, self.free_energy, ads_set)
                    best.name = f"best {label}"
                    keyed(best, result_identity("best", {**system,
                                                "adsorbate": ads.adsorbate_id}, best_set))
                    jobs += [pj, best]
                    outputs.append(best.output)
        return Flow(jobs, output=outputs, name=f"{self.name} {formula}")
