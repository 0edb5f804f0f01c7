"""Surface adsorption: bulks -> slabs -> placements -> relaxations -> E_ads -> best.

One screen, one plan: :meth:`SurfaceAdsorptionMaker.plan` checks every input and
cuts each slab once per facet and termination (one SlabGenerator per facet), sizes
the batches, and freezes it all in a :class:`SurfacePlan`; ``make()`` and the
table's selection (:meth:`SurfacePlan.select`) read that plan.

One static jobflow Flow (no jobs made at run time, so an interrupted or repeated
run resumes from the store): per bulk a relaxation (cell too), one job per clean
slab, one per gas reference molecule (shared by all bulks), relaxation jobs
relaxing the placements of one or several (slab, adsorbate) pairs in one batch
(site and anomaly checks per placement), and per pair one job of adsorption
energies and one choosing the best valid placement.

Relaxations do not depend on the reference scheme: their jobs are keyed by the
MLIP settings, the slab and the placement settings only, and their outputs
(:class:`~omni_flows.db_schemas.PlacementRelaxation`) hold no E_ads. The
adsorption-energy job of a pair (cheap: no relaxation) makes the placement documents
under the screen's reference with :func:`~omni_flows.db_schemas.adsorption_energy`,
so a screen with another ``reference`` relaxes nothing. With ``uncertainty`` (default:
on where the task has a committee) that job also evaluates the committee at the final
geometries and stores each member's E_ads and sigma (:mod:`.uncertainty`); every
document names the elements the task never saw (``out_of_domain``).

Batching (``batch_atoms``): pairs are grouped, in order, into relaxation jobs of at
most ``batch_atoms`` atoms of placements (bounded from the unrelaxed slab by
:func:`.placements.placement_bound`, nothing placed; a pair is never split, so a pair
larger than the cap is a job of its own), across the
slabs and bulks of a screen; 0 makes every pair its own job. Batching is an
execution choice: the documents, their natural keys and settings id are the same
batched or not.

Identity: every job is keyed, and every document carries the settings id, from
:func:`omni_flows.db_schemas.identity.result_identity` over the system and the
settings that decide its number (:func:`surface_settings`). A screen with
another fmax, placement cap, reference scheme or adsorbate geometry is other
documents; the same screen again is the same jobs. The adsorption-energy job of a
pair has the key that the pair's placement job had before relaxations were keyed
without the reference, so a database screened before finds its results.
"""

import warnings
from dataclasses import asdict, dataclass, field

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
from omni_flows.db_schemas.adsorption import PlacementRelaxation
from omni_flows.db_schemas.fingerprint import structure_fingerprint
from omni_flows.db_schemas.identity import result_identity, settings_id
from pymatgen.core import Structure

from ..structures.adsorbates import Adsorbate, get_adsorbate
from ..structures.anomaly import detect_anomalies
from ..structures.geometry import to_atoms, to_pymatgen
from ..errors import WorkflowInputError
from ..thermo.free_energy_flow import (
    best_placement_free_energy,
    free_energy_settings,
    gas_counts,
    gas_thermochemistry,
)
from ..identity import keyed
from ..structures.placements import PlacementSettings, check_coverage, make_placements, placement_bound
from ..provenance import provenance_of
from ..thermo.references import adsorbate_references, energy_reference, reference_molecules
from ..relax import get_calculator, relax
from .relax_maker import OmniRelaxMaker
from ..settings import MLIPSettings
from ..structures.sites import adsorbate_site
from ..structures.slabs import SlabSpec, bulk_structure, facet_slabs, make_slab, termination_label, top_layer
from ..thermo.thermochemistry import FreeEnergySettings
from .uncertainty import domain_flag, member_adsorption_energies, resolve_uncertainty

__all__ = ["DEFAULT_BATCH_ATOMS", "MLIPSettings", "SurfaceAdsorptionMaker", "SurfacePlan",
           "batch_groups", "gas_reference_jobs", "surface_settings"]

# atoms of placements per relaxation job (the placements of several slabs and adsorbates);
# the relaxation splits each optimizer step into graphs the device holds (relax_batch)
DEFAULT_BATCH_ATOMS = 1024

# job metadata read by omni_flows.engines.local.not_needed: a job that only feeds others
EXECUTION_ONLY = "execution_only"


def slab_settings(mlip: MLIPSettings, spec: SlabSpec) -> dict:
    """What decides a clean slab's numbers."""
    return {"mlip": mlip.identity(), "slab": asdict(spec)}


def relaxation_settings(mlip: MLIPSettings, spec: SlabSpec,
                        placements: PlacementSettings) -> dict:
    """What decides a relaxed placement: no reference scheme."""
    return {**slab_settings(mlip, spec), "placements": placements.identity()}


def surface_settings(mlip: MLIPSettings, spec: SlabSpec, placements: PlacementSettings,
                     reference: ReferenceScheme, uncertainty: bool = False) -> dict:
    """What decides an adsorption energy of a surface screen (its settings id's content).
    ``uncertainty`` is named only when on: results screened without it, or before it
    existed, keep their settings ids."""
    settings = {**relaxation_settings(mlip, spec, placements),
                "reference": ReferenceScheme(reference).value}
    return {**settings, "uncertainty": True} if uncertainty else settings


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


# --- jobs ---------------------------------------------------------------------------------

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
        termination=termination_label(structure),
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
    pairs: list[dict],
    placement: PlacementSettings,
    mlip: MLIPSettings,
) -> list[PlacementRelaxation]:
    """Place each adsorbate on its relaxed slab and relax every placement of ``pairs``
    (``{"slab": SlabDoc, "adsorbate": Adsorbate}``) in one batched relaxation; name the
    site each ended in and check anomalies. Pair after pair, each from placement 0."""
    built = [(p["slab"], p["adsorbate"], make_placements(
        p["slab"].structure, p["slab"].fixed_indices, p["adsorbate"], placement))
        for p in pairs]
    initial = [to_atoms(x.structure, slab.fixed_indices) for slab, _, xs in built for x in xs]
    outcomes = iter(zip(initial, relax(initial, mlip)))
    device = str(get_calculator(mlip).device)
    relaxations = []
    for slab, adsorbate, placements in built:
        slab_atoms = list(range(len(slab.structure)))
        coverage_ml = placement.coverage / len(top_layer(slab.structure, slab_atoms))
        for p in placements:
            start, out = next(outcomes)
            ads = p.adsorbate_indices
            site, composition = adsorbate_site(
                out.atoms, slab_atoms, [ads[i] for i in adsorbate.binders])
            relaxations.append(PlacementRelaxation(
                slab_id=slab.slab_id, adsorbate_id=adsorbate.adsorbate_id,
                placement_index=p.index, initial_site_type=p.site_type, site_type=site,
                site_composition=composition,
                site_position=tuple(float(x) for x in
                                    out.atoms.positions[ads[adsorbate.binding_index]]),
                initial_structure=p.structure, final_structure=to_pymatgen(out.atoms),
                energy=out.energy, coverage=placement.coverage, coverage_ml=coverage_ml,
                converged=out.converged, device=device,
                anomalies=detect_anomalies(start, out.atoms, ads, copies=placement.coverage),
            ))
    return relaxations


@job
def adsorption_energies(
    relaxations: list[PlacementRelaxation],
    slab: SlabDoc,
    adsorbate: Adsorbate,
    gas_docs: dict,
    scheme: ReferenceScheme,
    mlip: MLIPSettings,
    settings_id: str,
    settings: dict,
    uncertainty: bool = False,
) -> list[AdsorptionPlacementDoc]:
    """The placement documents of ``adsorbate`` on ``slab`` (its relaxations among a
    batch's) under ``scheme``: E_ads from stored energies, no model needed; with
    ``uncertainty`` each committee member's E_ads and sigma too (one energy-only pass at
    the final geometries, :mod:`.uncertainty`)."""
    scheme = ReferenceScheme(scheme)
    gas = {name: doc.output.energy for name, doc in gas_docs.items()}
    reference = energy_reference(gas, scheme, f"gas molecules relaxed in a box with "
                                 f"{mlip.model}/{mlip.task or 'single-task'}")
    e_ref = reference.energy_of(adsorbate_references(adsorbate, scheme))
    mine = [r for r in relaxations
            if r.slab_id == slab.slab_id and r.adsorbate_id == adsorbate.adsorbate_id]
    flags = {"out_of_domain": domain_flag(mlip, [str(el) for el in slab.structure.composition]
                                          + list(adsorbate.symbols))}
    fields = [flags] * len(mine)  # what each document adds: the domain flag, sigma
    if uncertainty and mine:
        energies, sigmas, scale = member_adsorption_energies(
            mine, slab.structure, {name: doc.output.structure for name, doc in gas_docs.items()},
            adsorbate, scheme, mlip)
        fields = [{**flags, "adsorption_energy_members": e.tolist(),
                    "adsorption_energy_std": float(sigma), "committee_scale": scale}
                   for e, sigma in zip(energies, sigmas)]
    provenance = {}  # one per device (the same for all of a pair's relaxations)
    docs = []
    for r, extra in zip(mine, fields):
        if r.device not in provenance:
            provenance[r.device] = provenance_of(mlip, settings, reference, r.device or None)
        docs.append(AdsorptionPlacementDoc(
            provenance=provenance[r.device], settings_id=settings_id,
            bulk_id=slab.bulk_id, bulk_formula=slab.bulk_formula,
            miller_index=slab.miller_index, termination=slab.termination,
            adsorbate=adsorbate.formula,
            slab_energy=slab.energy, reference_energy=e_ref,
            adsorption_energy=adsorption_energy(r.energy, slab.energy, e_ref, r.coverage),
            **{name: getattr(r, name) for name in PlacementRelaxation.model_fields
               if name != "device"}, **extra,
        ))
    return docs


@job
def best_placement(placements: list[AdsorptionPlacementDoc]) -> BestAdsorptionDoc:
    """The valid placement of lowest E_ads (None when every placement is flagged)."""
    return BestAdsorptionDoc.from_placements(placements)


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


def gas_reference_jobs(
    adsorbates: list[Adsorbate], scheme: ReferenceScheme, mlip: MLIPSettings
) -> tuple[list, dict]:
    """One relaxation per reference molecule, by reference name (keyed by its identity:
    the same molecule under either scheme, for any slab and adsorbate, is one job)."""
    jobs, docs = {}, {}
    maker = OmniRelaxMaker(name="gas", mlip=mlip)
    for name, molecule in reference_molecules(adsorbates, ReferenceScheme(scheme)).items():
        j = maker.make(molecule, label=f"{name}(g)")
        j = jobs.setdefault(j.uuid, j)  # one molecule read for two binding atoms: one job
        docs[name] = j.output
    return list(jobs.values()), docs


# --- the plan -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedBulk:
    """A bulk of the screen: as given (``label``), read, and its id."""

    label: str
    structure: Structure
    bulk_id: str


@dataclass(frozen=True)
class PlannedSlab:
    """One facet and termination of one bulk, cut once from the unrelaxed bulk."""

    bulk: PlannedBulk
    miller: tuple[int, int, int]
    shift: float
    slab_id: str
    n_atoms: int
    # at most this many placements per adsorbate (batch sizes only); () when not batching
    n_placements: tuple[int, ...]

    @property
    def system(self) -> dict:
        return {"bulk": structure_fingerprint(self.bulk.structure), "miller": self.miller,
                "shift": self.shift}

    @property
    def label(self) -> str:
        return f"{self.bulk.structure.composition.reduced_formula}({_hkl_label(self.miller)})"


@dataclass(frozen=True)
class SurfacePlan:
    """Everything a screen does, checked and decided before any job exists: its bulks,
    adsorbates, slabs (each cut once), its (slab, adsorbate) pairs in order and their
    relaxation batches (indices into ``pairs``)."""

    bulks: tuple[PlannedBulk, ...]
    adsorbates: tuple[Adsorbate, ...]
    millers: tuple[tuple[int, int, int], ...]
    slabs: tuple[PlannedSlab, ...]
    batches: tuple[tuple[int, ...], ...]

    @property
    def pairs(self) -> list[tuple[PlannedSlab, Adsorbate]]:
        return [(slab, ads) for slab in self.slabs for ads in self.adsorbates]

    def elements(self) -> list[str]:
        """Every element of the screen's bulks and adsorbates, sorted (for domain checks)."""
        return sorted({str(el) for b in self.bulks for el in b.structure.composition.elements}
                      | {sym for a in self.adsorbates for sym in a.symbols})

    def systems(self) -> dict:
        """What the screen's table holds: bulk ids, Miller indices, slab ids (the
        terminations screened), adsorbate ids."""
        return {
            "bulk_id": sorted({b.bulk_id for b in self.bulks}),
            "miller_index": sorted(set(self.millers)),
            "slab_id": sorted({s.slab_id for s in self.slabs}),
            "adsorbate_id": sorted({a.adsorbate_id for a in self.adsorbates}),
        }

    def select(self, docs: list[dict], settings_id: str) -> list[dict]:
        """The screen's documents among ``docs`` (of ``settings_id``)."""
        systems = self.systems()
        return [d for d in docs if d.get("settings_id") == settings_id
                and d.get("bulk_id") in systems["bulk_id"]
                and tuple(d.get("miller_index") or ()) in systems["miller_index"]
                and d.get("slab_id") in systems["slab_id"]
                and d.get("adsorbate_id") in systems["adsorbate_id"]]


def _bulk_label(bulk) -> str:
    return bulk if isinstance(bulk, str) else bulk.composition.reduced_formula


@dataclass
class SurfaceAdsorptionMaker(Maker):
    """Adsorbates on the slabs of one or several bulks, screened with the MLIP.

    ``make(bulks)`` takes element symbols, structure files or Structures (one or a
    list). All input is checked when the plan is made (unknown adsorbate, impossible
    facet, element the model does not know, missing reference): a bad input fails
    before any relaxation. Building the Flow loads no model.

    ``bulk_maker`` relaxes each bulk (cell too; None: an :class:`OmniRelaxMaker` with
    ``mlip``). ``batch_atoms``: atoms of placements per relaxation job (several slabs,
    adsorbates and bulks in one job); 0: one job per (slab, adsorbate). Not a setting
    of the results: the same screen batched or not files the same documents.
    """

    name: str = "surface adsorption"
    miller_indices: list[tuple[int, int, int]] = field(default_factory=lambda: [(1, 1, 1)])
    adsorbates: list[str] = field(default_factory=lambda: ["O", "H"])
    mlip: MLIPSettings = field(default_factory=MLIPSettings)
    slab_spec: SlabSpec = field(default_factory=SlabSpec)
    placements: PlacementSettings = field(default_factory=PlacementSettings)
    reference: ReferenceScheme = ReferenceScheme.GAS_MOLECULES
    # every distinct termination of each facet, not only the first (pymatgen's order)
    all_terminations: bool = False
    # T, p and vibration settings of --free-energy; None: no free energies
    free_energy: FreeEnergySettings | None = None
    # the committee's sigma on every E_ads (.uncertainty); None: on where the task has a
    # committee. Resolved (True/False) when the Maker is made
    uncertainty: bool | None = None
    batch_atoms: int = DEFAULT_BATCH_ATOMS
    bulk_maker: OmniRelaxMaker | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.batch_atoms, int) or self.batch_atoms < 0:
            raise WorkflowInputError(
                f"--batch-atoms must be 0 (one job per slab and adsorbate) or a number of "
                f"atoms per relaxation job, not {self.batch_atoms}")
        try:
            self.reference = ReferenceScheme(self.reference)
        except ValueError:
            raise WorkflowInputError(f"--reference must be gas_molecules or oc20_elemental, "
                                     f"not {self.reference!r}") from None
        if self.bulk_maker is None:
            self.bulk_maker = OmniRelaxMaker(name="bulk", mlip=self.mlip, relax_cell=True)
        self.uncertainty = resolve_uncertainty(self.mlip, self.uncertainty)

    @property
    def settings(self) -> dict:
        """The settings of the best-placement documents (with free_energy when asked)."""
        settings = surface_settings(self.mlip, self.slab_spec, self.placements, self.reference,
                                    self.uncertainty)
        return settings if self.free_energy is None else \
            free_energy_settings(settings, self.free_energy)

    @property
    def settings_id(self) -> str:
        """The id every best-placement document of this Maker carries (its placement
        documents carry that of the surface settings alone, shared with and without
        free energies)."""
        return settings_id(self.settings)

    def plan(self, bulks) -> SurfacePlan:
        """Check every input and decide the screen: slabs cut once per facet and
        termination, batches sized by each adsorbate's bound on its placements."""
        bulks = bulks if isinstance(bulks, list | tuple) else [bulks]
        adsorbates, planned, slabs = None, {}, []
        for bulk in bulks:
            structure = bulk_structure(bulk)
            self.mlip.check_elements([el.symbol for el in structure.composition],
                                     f"bulk {structure.composition.reduced_formula}")
            if adsorbates is None:  # once, after the first bulk (the order errors come in)
                adsorbates = [get_adsorbate(a) for a in self.adsorbates]
                for ads in adsorbates:
                    self.mlip.check_elements(ads.symbols, f"adsorbate {ads.label}")
                reference_molecules(adsorbates, self.reference)
            entry = PlannedBulk(_bulk_label(bulk), structure, bulk_name(structure))
            if entry.bulk_id in planned:  # one bulk given twice: screened once
                continue
            planned[entry.bulk_id] = entry
            slabs += self._slabs(entry, adsorbates)
        adsorbates = adsorbates or [get_adsorbate(a) for a in self.adsorbates]
        sizes = [n * (slab.n_atoms + self.placements.coverage * len(ads.symbols))
                 for slab in slabs for n, ads in zip(slab.n_placements or
                                                     [0] * len(adsorbates), adsorbates)]
        return SurfacePlan(
            bulks=tuple(planned.values()), adsorbates=tuple(adsorbates),
            millers=tuple(tuple(m) for m in self.miller_indices), slabs=tuple(slabs),
            batches=tuple(tuple(g) for g in batch_groups(sizes, self.batch_atoms)))

    def _slabs(self, bulk: PlannedBulk, adsorbates: list[Adsorbate]) -> list[PlannedSlab]:
        """The bulk's slabs, each cut once; the coverage checked on each."""
        out = []
        for miller in self.miller_indices:
            miller = tuple(miller)
            with warnings.catch_warnings():  # slab notes come when it is relaxed
                warnings.simplefilter("ignore")
                cut = facet_slabs(bulk.structure, miller, self.slab_spec,
                                  first_only=not self.all_terminations)
                for shift, (structure, _) in cut.items():
                    check_coverage(structure, self.placements.coverage)
                    # batch sizes only, no placement made: they are made once, at run time
                    bounds = tuple(placement_bound(structure, ads, self.placements)
                                   for ads in adsorbates) if self.batch_atoms else ()
                    out.append(PlannedSlab(
                        bulk, miller, shift, slab_name(bulk.bulk_id, miller, shift,
                                                       self.slab_spec),
                        len(structure), bounds))
        return out

    def make(self, bulks) -> Flow:
        """The screen's Flow: ``bulks`` (one or a list) or the :class:`SurfacePlan` of
        :meth:`plan`. Every input is checked first; nothing runs here."""
        plan = bulks if isinstance(bulks, SurfacePlan) else self.plan(bulks)
        scheme, mlip = self.reference, self.mlip
        slab_set = slab_settings(mlip, self.slab_spec)
        relax_set = relaxation_settings(mlip, self.slab_spec, self.placements)
        ads_set = surface_settings(mlip, self.slab_spec, self.placements, scheme,
                                   self.uncertainty)
        best_set = ads_set if self.free_energy is None else \
            free_energy_settings(ads_set, self.free_energy)
        ads_id = settings_id(ads_set)
        gas_jobs, gas_docs = gas_reference_jobs(list(plan.adsorbates), scheme, mlip)
        jobs = list(gas_jobs)
        gas_thermo = self._gas_thermo_jobs(plan, gas_docs)
        jobs += gas_thermo.values()
        bulk_jobs = {}
        for bulk in plan.bulks:
            bulk_jobs[bulk.bulk_id] = self.bulk_maker.make(bulk.structure, label=bulk.bulk_id)
            jobs.append(bulk_jobs[bulk.bulk_id])
        slab_jobs = {}
        for slab in plan.slabs:
            identity = result_identity("slab", slab.system, slab_set)
            j = relax_slab(bulk_jobs[slab.bulk.bulk_id].output, slab.bulk.bulk_id, slab.miller,
                           slab.shift, self.slab_spec, mlip, identity.settings_id, slab_set)
            j.name = f"slab {slab.label}"
            slab_jobs[slab.slab_id] = keyed(j, identity)
            jobs.append(j)
        pairs = plan.pairs
        outputs = []
        for group in plan.batches:
            members = [pairs[i] for i in group]
            systems = [{**slab.system, "adsorbate": ads.adsorbate_id} for slab, ads in members]
            relaxation = relax_placements(
                [{"slab": slab_jobs[slab.slab_id].output, "adsorbate": ads}
                 for slab, ads in members], self.placements, mlip)
            first = f"{members[0][1].label}/{members[0][0].label}"
            if len(members) == 1:  # one pair: keyed by the pair's relaxations
                relaxation.name = f"placements {first}"
                keyed(relaxation, result_identity("placement relaxations", systems[0],
                                                  relax_set))
            else:  # named by its members: the same pairs, the same job
                relaxation.name = f"placements {first} +{len(members) - 1}"
                keyed(relaxation, result_identity("placement relaxation batch", systems,
                                                  relax_set))
            relaxation.metadata[EXECUTION_ONLY] = True
            jobs.append(relaxation)
            for (slab, ads), system in zip(members, systems):
                label = f"{ads.label}/{slab.label}"
                refs = adsorbate_references(ads, scheme)
                gas = {name: gas_docs[name] for name in
                       (refs if scheme == ReferenceScheme.GAS_MOLECULES else gas_docs)}
                energies = adsorption_energies(relaxation.output, slab_jobs[slab.slab_id].output,
                                               ads, gas, scheme, mlip, ads_id, ads_set,
                                               self.uncertainty)
                energies.name = f"adsorption energies {label}"
                # the key of the pair's placement job before relaxations were keyed without
                # the reference: a database screened then finds these documents' job done
                keyed(energies, result_identity("placements", system, ads_set))
                energies.metadata[EXECUTION_ONLY] = True  # its best job done: filed before
                if self.free_energy is None:
                    best = best_placement(energies.output)
                else:
                    thermo = {name: gas_thermo[name].output for name in gas_counts(ads, scheme)}
                    best = best_placement_free_energy(energies.output, ads, thermo, scheme, mlip,
                                                      self.free_energy, ads_set)
                best.name = f"best {label}"
                keyed(best, result_identity("best", system, best_set))
                jobs += [energies, best]
                outputs.append(best.output)
        # the settings id travels with the flow: `omni-flows status` tells campaigns apart
        return Flow(jobs, output=outputs, name=self.flow_name(plan),
                    metadata={"settings_id": self.settings_id})

    def _gas_thermo_jobs(self, plan: SurfacePlan, gas_docs: dict) -> dict:
        """With ``free_energy``: one vibration job per gas molecule that a free-energy
        correction subtracts (once per molecule, for every slab and adsorbate)."""
        if self.free_energy is None:
            return {}
        names = sorted({name for ads in plan.adsorbates
                        for name in gas_counts(ads, self.reference)})
        settings = {"mlip": self.mlip.identity(), "free_energy": self.free_energy.key()}
        jobs = {}
        for name in names:
            j = gas_thermochemistry(gas_docs[name], name, self.mlip, self.free_energy)
            j.name = f"gas free energy {name}"
            jobs[name] = keyed(j, result_identity(
                "gas free energy", {"gas": name, "calculation": gas_docs[name].uuid}, settings))
        return jobs

    def flow_name(self, plan: SurfacePlan) -> str:
        """``screen Pt+Cu (111 100) O H``: what `omni-flows status` shows."""
        bulks = "+".join(b.label for b in plan.bulks)
        facets = " ".join(_hkl_label(m) for m in plan.millers)
        return f"screen {bulks} ({facets}) {' '.join(self.adsorbates)}"
