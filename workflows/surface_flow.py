"""Surface adsorption: bulk -> slabs -> sites and placements -> relaxations -> E_ads -> best.

One static jobflow Flow (no jobs made at run time, so an interrupted or repeated
run resumes from the store): a bulk relaxation, one job per clean slab, one per
gas reference molecule, one per (slab, adsorbate) relaxing all its placements in
one batch (then anomaly checks and E_ads per placement) and one per (slab,
adsorbate) choosing the best valid placement.
"""

from dataclasses import asdict, dataclass, field

import numpy as np
from jobflow import Flow, Maker, job
from omni_flows.db_schemas import (
    AdsorptionPlacementDoc,
    BestAdsorptionDoc,
    ReferenceScheme,
    SlabDoc,
    slab_id,
)
from omni_flows.db_schemas.fingerprint import structure_fingerprint
from pymatgen.core import Structure

from .adsorbates import Adsorbate, get_adsorbate
from .anomaly import detect_anomalies
from .conversion import to_atoms, to_pymatgen
from .identity import keyed
from .placements import DEFAULT_RANDOM, DEFAULT_SEED, make_placements
from .provenance import provenance_of
from .references import energy_reference, gas_molecule, molecules_needed, reference_counts
from .relax import DEFAULT_FMAX, DEFAULT_OPTIMIZER, get_calculator, relax_structures
from .relax_maker import OmniRelaxMaker, OmniTaskDocument
from .slabs import SlabSpec, bulk_structure, make_slab, terminations


@dataclass
class MLIPSettings:
    """The model and relaxation settings every job of a screen shares."""

    model: str = "7net-mf-0"
    task: str = "PBE"
    device: str = "auto"
    fmax: float = DEFAULT_FMAX
    steps: int = 300
    optimizer: str = DEFAULT_OPTIMIZER
    backend: str = "e3nn"  # kernel backend, see omni_flows.model.backends; same numbers

    def key(self) -> dict:
        """What decides a result: the backend is left out (same numbers, any backend)."""
        calc = get_calculator(self.model, self.task, self.device, self.backend)
        return {"model": self.model, "task": self.task, "checkpoint": calc.checkpoint_hash,
                "fmax": self.fmax, "steps": self.steps, "optimizer": self.optimizer}

    def relaxer(self, relax_cell: bool = False) -> OmniRelaxMaker:
        return OmniRelaxMaker(model=self.model, task=self.task, device=self.device,
                              backend=self.backend, fmax=self.fmax, steps=self.steps,
                              optimizer=self.optimizer, relax_cell=relax_cell)


def _hkl_label(miller) -> str:
    return "".join(str(i) for i in miller)


@job
def relax_slab(
    bulk_doc: OmniTaskDocument,
    bulk_id: str,
    miller: tuple[int, int, int],
    shift: float,
    spec: dict,
    mlip: dict,
) -> SlabDoc:
    """Cut the slab from the relaxed bulk and relax it with its bottom layers fixed."""
    settings, spec = MLIPSettings(**mlip), SlabSpec(**spec)
    bulk = bulk_doc.output.structure
    structure, fixed = make_slab(bulk, tuple(miller), shift, spec)
    (out,) = relax_structures([to_atoms(structure, fixed)], settings.model, settings.task,
                              settings.device, fmax=settings.fmax, steps=settings.steps,
                              optimizer=settings.optimizer, backend=settings.backend)
    cell = tuple(spec.supercell) if spec.supercell else (0, 0)
    area = float(np.linalg.norm(np.cross(*structure.lattice.matrix[:2])))
    e_bulk = bulk_doc.output.energy_per_atom
    return SlabDoc(
        provenance=provenance_of(settings.model, settings.task, settings.device),
        bulk_id=bulk_id,
        bulk_formula=bulk.composition.reduced_formula,
        miller_index=tuple(miller),
        shift=shift,
        slab_id=slab_name(bulk_id, miller, shift, spec, cell),
        structure=to_pymatgen(out.atoms),
        fixed_indices=fixed,
        min_slab_size=spec.min_slab_size,
        min_vacuum_size=spec.min_vacuum_size,
        area=area,
        energy=out.energy,
        # both faces counted alike: the fixed bottom face is bulk-terminated, so this is approximate
        surface_energy=(out.energy - len(structure) * e_bulk) / (2 * area),
    )


def slab_name(bulk_id, miller, shift, spec: SlabSpec, cell) -> str:
    """``slab_id`` plus the cell (supercell or minimum lateral size, layers)."""
    size = f"{cell[0]}x{cell[1]}" if cell[0] else f"min{spec.min_lateral:g}A"
    return f"{slab_id(bulk_id, tuple(miller), shift)}/{size}x{spec.n_layers or 'auto'}"


def _placement_doc(slab: SlabDoc, adsorbate: Adsorbate, index: int, placement, out,
                   reference, e_ref: float, settings: "MLIPSettings") -> AdsorptionPlacementDoc:
    """The document of one relaxed placement: anomalies and E_ads."""
    initial, ads_idx = placement.structure, placement.adsorbate_indices
    final = to_pymatgen(out.atoms)
    return AdsorptionPlacementDoc(
        provenance=provenance_of(settings.model, settings.task, settings.device, reference),
        anomalies=detect_anomalies(initial, final, ads_idx),
        slab_id=slab.slab_id,
        bulk_id=slab.bulk_id,
        bulk_formula=slab.bulk_formula,
        miller_index=slab.miller_index,
        adsorbate=adsorbate.formula,
        placement_index=index,
        site_type=placement.site_type,
        site_position=tuple(
            float(x) for x in initial.cart_coords[ads_idx[adsorbate.binding_index]]
        ),
        initial_structure=initial,
        final_structure=final,
        energy=out.energy,
        slab_energy=slab.energy,
        reference_energy=e_ref,
        adsorption_energy=out.energy - slab.energy - e_ref,
        converged=out.converged,
    )


@job
def relax_placements(
    slab: SlabDoc,
    adsorbate: Adsorbate,
    gas_docs: dict,
    scheme: str,
    n_random: int,
    max_placements: int | None,
    seed: int,
    mlip: dict,
) -> list[AdsorptionPlacementDoc]:
    """Place the adsorbate on the relaxed slab, relax every placement in one batch (one
    batched graph per optimizer step), check anomalies and compute each E_ads."""
    settings = MLIPSettings(**mlip)
    placements = make_placements(slab.structure, slab.fixed_indices, adsorbate, n_random,
                                 max_placements, seed)
    outcomes = relax_structures(
        [to_atoms(p.structure, slab.fixed_indices) for p in placements], settings.model,
        settings.task, settings.device, fmax=settings.fmax, steps=settings.steps,
        optimizer=settings.optimizer, backend=settings.backend,
    )
    scheme = ReferenceScheme(scheme)
    gas = {name: doc.output.energy for name, doc in gas_docs.items()}
    reference = energy_reference(gas, scheme, f"gas molecules relaxed in a box with "
                                 f"{settings.model}/{settings.task}")
    e_ref = reference.energy_of(reference_counts(adsorbate.formula, scheme))
    return [_placement_doc(slab, adsorbate, i, p, out, reference, e_ref, settings)
            for i, (p, out) in enumerate(zip(placements, outcomes))]


@job
def best_placement(placements: list[AdsorptionPlacementDoc]) -> BestAdsorptionDoc:
    """The valid placement of lowest E_ads (None when every placement is flagged)."""
    return BestAdsorptionDoc.from_placements(placements)


def gas_reference_jobs(
    formulas: list[str], scheme: ReferenceScheme, mlip: MLIPSettings
) -> tuple[list, dict]:
    """One relaxation per reference molecule, keyed by formula."""
    jobs, docs = [], {}
    for name in molecules_needed(formulas, scheme):
        j = mlip.relaxer().make(gas_molecule(name), label=f"{name}(g)")
        j.name = f"gas {name}"
        keyed(j, "gas", name, mlip.key())
        jobs.append(j)
        docs[name] = j.output
    return jobs, docs


@dataclass
class SurfaceAdsorptionMaker(Maker):
    """Adsorbates on the slabs of one bulk, screened with the MLIP.

    ``make(bulk)`` takes an element symbol, a structure file or a Structure.
    All input is checked when the Flow is made (unknown adsorbate, impossible
    facet, missing reference): a bad input fails before any relaxation.
    """

    name: str = "surface adsorption"
    miller_indices: list[tuple[int, int, int]] = field(default_factory=lambda: [(1, 1, 1)])
    adsorbates: list[str] = field(default_factory=lambda: ["O", "H"])
    mlip: MLIPSettings = field(default_factory=MLIPSettings)
    slab_spec: SlabSpec = field(default_factory=SlabSpec)
    n_random: int = DEFAULT_RANDOM
    max_placements: int | None = None
    seed: int = DEFAULT_SEED
    reference: ReferenceScheme = ReferenceScheme.GAS_MOLECULES
    all_terminations: bool = False

    def check(self, bulk) -> tuple[Structure, list[Adsorbate], dict]:
        """Validate every input; return the bulk, adsorbates and terminations per facet."""
        structure = bulk_structure(bulk)
        adsorbates = [get_adsorbate(a) for a in self.adsorbates]
        molecules_needed([a.formula for a in adsorbates], ReferenceScheme(self.reference))
        shifts = {}
        for miller in self.miller_indices:
            found = terminations(structure, tuple(miller), self.slab_spec)
            shifts[tuple(miller)] = found if self.all_terminations else found[:1]
        # model, task and backend exist
        get_calculator(self.mlip.model, self.mlip.task, self.mlip.device, self.mlip.backend)
        return structure, adsorbates, shifts

    def make(self, bulk, gas_docs: dict | None = None, bulk_id: str | None = None) -> Flow:
        structure, adsorbates, shifts = self.check(bulk)
        scheme = ReferenceScheme(self.reference)
        mlip_key, mlip = self.mlip.key(), asdict(self.mlip)
        formula = structure.composition.reduced_formula
        bulk_id = bulk_id or f"{formula}-{structure_fingerprint(structure)[:8]}"
        jobs = []
        if gas_docs is None:
            gas_jobs, gas_docs = gas_reference_jobs([a.formula for a in adsorbates], scheme,
                                                    self.mlip)
            jobs += gas_jobs
        bulk_job = self.mlip.relaxer(relax_cell=True).make(structure, label=bulk_id)
        bulk_job.name = f"bulk {formula}"
        keyed(bulk_job, "bulk", structure_fingerprint(structure), mlip_key)
        jobs.append(bulk_job)
        spec = asdict(self.slab_spec)
        outputs = []
        for miller, miller_shifts in shifts.items():
            for shift in miller_shifts:
                slab_job = relax_slab(bulk_job.output, bulk_id, miller, shift, spec, mlip)
                slab_job.name = f"slab {formula}({_hkl_label(miller)})"
                slab_key = ("slab", bulk_job.uuid, miller, shift, spec)
                keyed(slab_job, *slab_key)
                jobs.append(slab_job)
                for ads in adsorbates:
                    label = f"{ads.formula}/{formula}({_hkl_label(miller)})"
                    pj = relax_placements(slab_job.output, ads, gas_docs, scheme.value,
                                          self.n_random, self.max_placements, self.seed, mlip)
                    pj.name = f"placements {label}"
                    keyed(pj, "placements", slab_job.uuid, ads, scheme.value, self.n_random,
                          self.max_placements, self.seed)
                    best = best_placement(pj.output)
                    best.name = f"best {label}"
                    keyed(best, "best", pj.uuid)
                    jobs += [pj, best]
                    outputs.append(best.output)
        return Flow(jobs, output=outputs, name=f"{self.name} {formula}")
