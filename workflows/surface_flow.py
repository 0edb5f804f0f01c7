"""Surface adsorption: bulk -> slabs -> sites and placements -> relaxations -> E_ads -> best.

One static jobflow Flow (no jobs made at run time, so an interrupted or repeated
run resumes from the store): a bulk relaxation (cell too), one job per clean
slab, one per gas reference molecule, placement jobs relaxing the placements of
one or several (slab, adsorbate) pairs in one batch (then site, anomaly checks
and E_ads per placement) and one job per (slab, adsorbate) choosing the best
valid placement.

Batching (``batch_atoms``): pairs are grouped, in order, into jobs of at most
``batch_atoms`` atoms of placements (estimated from the unrelaxed slab; a pair
is never split, so a pair larger than the cap is a job of its own), across the
slabs and bulks of a campaign. A group of one pair is the plain per-pair job
(:func:`relax_placements`); 0 makes every pair its own job. Batching is an
execution choice: the placement documents, their natural keys and settings id
are the same batched or not (one document per placement, filed as before).

Identity: every job is keyed, and every document carries the settings id, from
:func:`omni_flows.db_schemas.identity.result_identity` over the system and the
settings that decide its number (:func:`surface_settings`). A screen with
another fmax, placement cap, reference scheme or adsorbate geometry is other
jobs and other documents; the same screen again is the same jobs.
"""

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from jobflow import Flow, Maker, job
from omni_flows.db_schemas import (
    AdsorptionPlacementDoc,
    BestAdsorptionDoc,
    MLIPCalculationDoc,
    ReferenceScheme,
    SlabDoc,
    adsorption_energy,
    slab_id,
)
from omni_flows.db_schemas.fingerprint import structure_fingerprint
from omni_flows.db_schemas.identity import ResultIdentity, result_identity, settings_id
from pymatgen.core import Structure

from .adsorbates import Adsorbate, get_adsorbate
from .anomaly import detect_anomalies
from .conversion import to_atoms, to_pymatgen
from .errors import WorkflowInputError
from .free_energy_flow import best_placement_free_energy, free_energy_settings
from .identity import keyed
from .placements import Placement, PlacementSettings, check_coverage, make_placements
from .provenance import provenance_of
from .references import adsorbate_references, energy_reference, reference_molecules
from .relax import get_calculator, relax
from .relax_maker import OmniRelaxMaker
from .settings import MLIPSettings
from .sites import adsorbate_site
from .slabs import SlabSpec, bulk_structure, make_slab, terminations, top_layer
from .thermochemistry import FreeEnergySettings

__all__ = ["DEFAULT_BATCH_ATOMS", "MLIPSettings", "SurfaceAdsorptionMaker", "batch_groups",
           "gas_reference_jobs", "surface_settings"]

# atoms of placements per relaxation job (the placements of several slabs and adsorbates);
# the relaxation splits each optimizer step into graphs the device holds (relax_batch)
DEFAULT_BATCH_ATOMS = 1024


def slab_settings(mlip: MLIPSettings, spec: SlabSpec) -> dict:
    """What decides a clean slab's numbers."""
    return {"mlip": mlip.identity(), "slab": asdict(spec)}


def surface_settings(mlip: MLIPSettings, spec: SlabSpec, placements: PlacementSettings,
                     reference: ReferenceScheme) -> dict:
    """What decides an adsorption energy of a surface screen (its settings id's content)."""
    return {**slab_settings(mlip, spec), "placements": placements.identity(),
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


def placement_documents(
    slab: SlabDoc,
    adsorbate: Adsorbate,
    placements: list[Placement],
    outcomes: list,
    gas_docs: dict,
    scheme: ReferenceScheme,
    mlip: MLIPSettings,
    settings_id: str,
    settings: dict,
) -> list[AdsorptionPlacementDoc]:
    """One document per relaxed placement of ``adsorbate`` on ``slab``: the site it ended
    in, anomaly checks and E_ads (``outcomes``: :func:`relax`'s, in placement order)."""
    scheme = ReferenceScheme(scheme)
    gas = {name: doc.output.energy for name, doc in gas_docs.items()}
    reference = energy_reference(gas, scheme, f"gas molecules relaxed in a box with "
                                 f"{mlip.model}/{mlip.task or 'single-task'}")
    e_ref = reference.energy_of(adsorbate_references(adsorbate, scheme))
    provenance = provenance_of(mlip, settings, reference, str(get_calculator(mlip).device))
    docs = []
    n_slab = len(slab.structure)
    n = len(placements[0].adsorbate_indices) // len(adsorbate.symbols) if placements else 1
    slab_atoms = list(range(n_slab))
    coverage_ml = n / len(top_layer(slab.structure, slab_atoms))
    for i, (p, out) in enumerate(zip(placements, outcomes, strict=True)):
        final = to_pymatgen(out.atoms)
        binder = p.adsorbate_indices[adsorbate.binding_index]
        site, composition = adsorbate_site(
            out.atoms, slab_atoms, [p.adsorbate_indices[i] for i in adsorbate.binders])
        docs.append(AdsorptionPlacementDoc(
            provenance=provenance,
            settings_id=settings_id,
            anomalies=detect_anomalies(p.structure, final, p.adsorbate_indices, copies=n),
            slab_id=slab.slab_id,
            bulk_id=slab.bulk_id,
            bulk_formula=slab.bulk_formula,
            miller_index=slab.miller_index,
            adsorbate=adsorbate.formula,
            adsorbate_id=adsorbate.adsorbate_id,
            placement_index=i,
            site_type=site,
            site_composition=composition,
            initial_site_type=p.site_type,
            site_position=tuple(float(x) for x in out.atoms.positions[binder]),
            initial_structure=p.structure,
            final_structure=final,
            energy=out.energy,
            slab_energy=slab.energy,
            reference_energy=e_ref,
            coverage=n,
            coverage_ml=coverage_ml,
            adsorption_energy=adsorption_energy(out.energy, slab.energy, e_ref, n),
            converged=out.converged,
        ))
    return docs


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
    pair = {"slab": slab, "adsorbate": adsorbate, "gas_docs": gas_docs}
    return relax_placement_batch.original([pair], scheme, placement, mlip, settings_id,
                                          settings)


@job
def relax_placement_batch(
    pairs: list[dict],
    scheme: ReferenceScheme,
    placement: PlacementSettings,
    mlip: MLIPSettings,
    settings_id: str,
    settings: dict,
) -> list[AdsorptionPlacementDoc]:
    """:func:`relax_placements` of several (slab, adsorbate) pairs in one relaxation:
    ``pairs`` are ``{"slab": SlabDoc, "adsorbate": Adsorbate, "gas_docs": {...}}``; the
    documents of every pair, pair after pair (each pair's ``placement_index`` from 0)."""
    built = [make_placements(p["slab"].structure, p["slab"].fixed_indices, p["adsorbate"],
                             placement) for p in pairs]
    structures = [to_atoms(x.structure, p["slab"].fixed_indices)
                  for p, placements in zip(pairs, built) for x in placements]
    outcomes = iter(relax(structures, mlip))
    docs = []
    for p, placements in zip(pairs, built):
        docs += placement_documents(p["slab"], p["adsorbate"], placements,
                                    [next(outcomes) for _ in placements], p["gas_docs"],
                                    scheme, mlip, settings_id, settings)
    return docs


def pair_placements(placements: list[AdsorptionPlacementDoc], slab_id: str | None,
                    adsorbate_id: str | None) -> list[AdsorptionPlacementDoc]:
    """The placements of one (slab, adsorbate) among a batch's (all of them for None)."""
    if slab_id is None:
        return placements
    return [p for p in placements if p.slab_id == slab_id and p.adsorbate_id == adsorbate_id]


@job
def best_placement(placements: list[AdsorptionPlacementDoc], slab_id: str | None = None,
                   adsorbate_id: str | None = None) -> BestAdsorptionDoc:
    """The valid placement of lowest E_ads (None when every placement is flagged), among
    the placements of ``slab_id`` and ``adsorbate_id`` when given (a batch's output)."""
    return BestAdsorptionDoc.from_placements(pair_placements(placements, slab_id, adsorbate_id))


@job
def best_placement_free_energy_of(placements: list[AdsorptionPlacementDoc], slab_id: str,
                                  adsorbate_id: str, *args) -> BestAdsorptionDoc:
    """:func:`best_placement_free_energy` of one pair among a batch's placements."""
    return best_placement_free_energy.original(
        pair_placements(placements, slab_id, adsorbate_id), *args)


def batch_groups(sizes: list[int], batch_atoms: int) -> list[list[int]]:
    """Consecutive groups of the indices of ``sizes`` (atoms of each pair's placements)
    holding at most ``batch_atoms`` atoms each; a pair is never split (one larger than
    the cap is a group of its own); ``batch_atoms`` 0: one group per pair."""
    groups: list[list[int]] = []
    total = 0
    for i, size in enumerate(sizes):
        if not groups or batch_atoms <= 0 or total + size > batch_atoms:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += size
    return groups


@dataclass
class PlacementPair:
    """One (slab, adsorbate) of a screen, before its placement and best jobs exist."""

    slab: Any  # the slab job's output (a SlabDoc once run)
    slab_id: str
    adsorbate: Adsorbate
    gas_docs: dict
    identity: ResultIdentity  # of its placements
    best_identity: ResultIdentity
    label: str
    n_atoms: int  # atoms of all its placements, from the unrelaxed slab


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

    ``batch_atoms``: atoms of placements per relaxation job (several slabs and
    adsorbates in one job); 0: one job per (slab, adsorbate). Not a setting of
    the results: the same screen batched or not files the same documents.
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
    batch_atoms: int = DEFAULT_BATCH_ATOMS

    def __post_init__(self) -> None:
        if not isinstance(self.batch_atoms, int) or self.batch_atoms < 0:
            raise WorkflowInputError(
                f"--batch-atoms must be 0 (one job per slab and adsorbate) or a number of "
                f"atoms per relaxation job, not {self.batch_atoms}")

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
            if self.placements.coverage > 1:  # the cell must hold that many images of a site
                for shift in shifts[tuple(miller)]:
                    with warnings.catch_warnings():  # slab notes come when it is relaxed
                        warnings.simplefilter("ignore")
                        check_coverage(make_slab(structure, tuple(miller), shift,
                                                 self.slab_spec)[0], self.placements.coverage)
        return structure, adsorbates, shifts

    def make(self, bulk, gas_docs: dict | None = None, bulk_id: str | None = None) -> Flow:
        structure, adsorbates, _ = self.check(bulk)
        jobs = []
        if gas_docs is None:
            gas_jobs, gas_docs = gas_reference_jobs(adsorbates, ReferenceScheme(self.reference),
                                                    self.mlip)
            jobs += gas_jobs
        slab_jobs, pairs = self.slab_jobs(bulk, gas_docs, bulk_id)
        placement_jobs, outputs = self.placement_jobs(pairs)
        formula = structure.composition.reduced_formula
        return Flow(jobs + slab_jobs + placement_jobs, output=outputs,
                    name=f"{self.name} {formula}")

    def slab_jobs(self, bulk, gas_docs: dict, bulk_id: str | None = None
                  ) -> tuple[list, list[PlacementPair]]:
        """The bulk and clean-slab jobs of ``bulk``, and its (slab, adsorbate) pairs."""
        structure, adsorbates, shifts = self.check(bulk)
        scheme = ReferenceScheme(self.reference)
        formula = structure.composition.reduced_formula
        bulk_id = bulk_id or bulk_name(structure)
        bulk_job = OmniRelaxMaker(name="bulk", mlip=self.mlip, relax_cell=True).make(
            structure, label=bulk_id)
        jobs = [bulk_job]
        slab_set, best_set = slab_settings(self.mlip, self.slab_spec), self.settings
        ads_set = surface_settings(self.mlip, self.slab_spec, self.placements, self.reference)
        pairs = []
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
                # sizes for batching only: the unrelaxed slab has the relaxed one's atoms
                n_slab, n_sites = self._slab_size(structure, miller, shift, adsorbates)
                for ads in adsorbates:
                    refs = adsorbate_references(ads, scheme)
                    system_ads = {**system, "adsorbate": ads.adsorbate_id}
                    pairs.append(PlacementPair(
                        slab=slab_job.output,
                        slab_id=slab_name(bulk_id, miller, shift, self.slab_spec),
                        adsorbate=ads,
                        gas_docs={name: gas_docs[name] for name in
                                  (refs if scheme == ReferenceScheme.GAS_MOLECULES
                                   else gas_docs)},
                        identity=result_identity("placements", system_ads, ads_set),
                        best_identity=result_identity("best", system_ads, best_set),
                        label=f"{ads.label}/{formula}({_hkl_label(miller)})",
                        n_atoms=n_sites * (n_slab + self.placements.coverage
                                           * len(ads.symbols)),
                    ))
        return jobs, pairs

    def _slab_size(self, bulk: Structure, miller, shift: float, adsorbates) -> tuple[int, int]:
        """(atoms of the slab, placements per adsorbate) from the unrelaxed bulk; (0, 0)
        when nothing is batched (no slab is cut here then)."""
        if self.batch_atoms == 0 or not adsorbates:
            return 0, 0
        with warnings.catch_warnings():  # a thin slab is reported once, when it is relaxed
            warnings.simplefilter("ignore")
            slab, fixed = make_slab(bulk, tuple(miller), shift, self.slab_spec)
            return len(slab), len(make_placements(slab, fixed, adsorbates[0], self.placements))

    def placement_jobs(self, pairs: list[PlacementPair]) -> tuple[list, list]:
        """Placement jobs of ``pairs`` (batched by ``batch_atoms``) and one best job per
        pair; returns the jobs and the best jobs' outputs."""
        scheme = ReferenceScheme(self.reference)
        ads_set = surface_settings(self.mlip, self.slab_spec, self.placements, self.reference)
        ads_id = settings_id(ads_set)
        jobs, outputs = [], []
        for group in batch_groups([p.n_atoms for p in pairs], self.batch_atoms):
            members = [pairs[i] for i in group]
            if len(members) == 1:  # the per-pair job, keyed by the pair's identity
                (pair,) = members
                pj = relax_placements(pair.slab, pair.adsorbate, pair.gas_docs, scheme,
                                      self.placements, self.mlip, ads_id, ads_set)
                pj.name = f"placements {pair.label}"
                keyed(pj, pair.identity)
                picks = [(pair, None, None)]
            else:
                pj = relax_placement_batch(
                    [{"slab": p.slab, "adsorbate": p.adsorbate, "gas_docs": p.gas_docs}
                     for p in members], scheme, self.placements, self.mlip, ads_id, ads_set)
                pj.name = f"placements {members[0].label} +{len(members) - 1}"
                # the batch is named by its members' identities: the same pairs, the same job
                keyed(pj, result_identity("placement batch",
                                          [p.identity.key for p in members], ads_set))
                # its consumers all done (a re-run batched otherwise): not needed; the key
                # read by omni_flows.engines.local.not_needed
                pj.metadata["execution_only"] = True
                picks = [(p, p.slab_id, p.adsorbate.adsorbate_id) for p in members]
            jobs.append(pj)
            for pair, slab_id, adsorbate_id in picks:
                if self.free_energy is None:
                    best = best_placement(pj.output, slab_id, adsorbate_id)
                else:
                    best = best_placement_free_energy_of(
                        pj.output, slab_id, adsorbate_id, pair.adsorbate, pair.gas_docs, scheme,
                        self.mlip, self.free_energy, ads_set)
                best.name = f"best {pair.label}"
                keyed(best, pair.best_identity)
                jobs.append(best)
                outputs.append(best.output)
        return jobs, outputs
