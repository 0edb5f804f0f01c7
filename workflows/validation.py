"""r2SCAN validation of a screen's results: the model's r2SCAN task, and r2SCAN DFT.

For each chosen adsorption result (a :class:`ValidationTarget`: the relaxed
slab+adsorbate, the relaxed clean slab, the relaxed gas molecules and the
screen's reference scheme):

1. MLIP-r2SCAN, always: single points with the model's r2SCAN task at the
   screen's geometries, E_ads = E(slab+ads) - E(slab) - E_ref under the same
   reference scheme as the screen's (PBE-task) value;
2. ``dft="pyscf"``: r2SCAN with PySCF on a cluster cut around the site
   (:mod:`.clusters`) and on the gas molecules, one basis and functional for
   every term (:mod:`.pyscf_r2scan`);
3. ``dft="vasp"``: atomate2 r2SCAN statics of the slab+adsorbate, the slab and
   each gas molecule in a box (:mod:`.vasp_r2scan`), for users with VASP.

Each target ends in one :class:`R2SCANValidationDoc` with the three values side by side.
"""

from dataclasses import asdict, dataclass, field

from jobflow import Flow, Maker, job
from monty.json import MSONable
from omni_flows.db_schemas import (
    AdsorptionPlacementDoc,
    BestAdsorptionDoc,
    MLIPCalculationDoc,
    Provenance,
    R2SCANValidationDoc,
    ReferenceScheme,
    SlabDoc,
    adsorption_energy,
)
from omni_flows.db_schemas.fingerprint import structure_fingerprint
from pymatgen.core import Molecule, Structure

from .clusters import ClusterSpec, cut_cluster
from .geometry import to_atoms
from .errors import WorkflowInputError
from .identity import keyed
from .provenance import provenance_of
from .pyscf_r2scan import PySCFSettings, r2scan_energy
from .references import energy_reference, molecules_needed, reference_counts
from .relax import get_calculator
from .settings import MLIPSettings
from .vasp_r2scan import FrameworkR2SCANStaticMaker, SlabR2SCANStaticMaker, molecule_in_box

DFT_CODES = ("none", "pyscf", "vasp")
SLAB_ADS, SLAB = "slab+adsorbate", "slab"
CLUSTER_ADS, CLUSTER = "cluster+adsorbate", "cluster"


@dataclass
class ValidationTarget(MSONable):
    """One screen result to validate, with every geometry its adsorption energy is made of."""

    system_id: str
    adsorbate: str
    structure: Structure  # relaxed slab + adsorbate, the adsorbate's atoms last
    slab: Structure  # relaxed clean slab, the same atoms in the same order
    gas: dict[str, Molecule]  # relaxed gas molecules, by formula
    scheme: str  # ReferenceScheme value
    mlip_pbe: float | None = None  # eV, the screen's E_ads
    source_provenance: dict = field(default_factory=dict)

    @classmethod
    def from_documents(
        cls,
        result: BestAdsorptionDoc | AdsorptionPlacementDoc | dict,
        slab: SlabDoc | dict,
        gas: dict[str, MLIPCalculationDoc | dict],
    ) -> "ValidationTarget":
        """From a screen's stored documents: the result, its clean slab, its gas molecules."""
        if isinstance(result, dict):
            kind = AdsorptionPlacementDoc if "placement_index" in result else BestAdsorptionDoc
            result = kind.model_validate(result)
        slab = SlabDoc.model_validate(slab) if isinstance(slab, dict) else slab
        require_one_per_cell(result)
        if result.final_structure is None:
            raise WorkflowInputError(
                f"{result.slab_id} + {result.adsorbate} has no valid placement: nothing to validate"
            )
        if slab.slab_id != result.slab_id:
            raise WorkflowInputError(f"slab {slab.slab_id} is not the result's {result.slab_id}")
        scheme = ReferenceScheme(result.provenance.energy_reference.scheme)
        needed = molecules_needed([result.adsorbate], scheme)
        molecules = {}
        for name in needed:
            if name not in gas:
                raise WorkflowInputError(
                    f"the gas molecule {name} of the {scheme.value} reference of "
                    f"{result.adsorbate} is missing; give the screen's relaxed {name}"
                )
            doc = gas[name]
            doc = MLIPCalculationDoc.model_validate(doc) if isinstance(doc, dict) else doc
            molecules[name] = doc.output.structure
        index = getattr(result, "placement_index", None)
        suffix = "" if index is None else f"#{index}"
        return cls(
            system_id=f"{result.slab_id}|{result.adsorbate}{suffix}",
            adsorbate=result.adsorbate,
            structure=result.final_structure,
            slab=slab.structure,
            gas=molecules,
            scheme=scheme.value,
            mlip_pbe=result.adsorption_energy,
            source_provenance=result.provenance.model_dump(mode="json"),
        )

    def reference_energy(self, gas_energies: dict[str, float]) -> float:
        """E_ref of the adsorbate (eV) from gas-molecule energies, in the screen's scheme."""
        scheme = ReferenceScheme(self.scheme)
        return energy_reference(gas_energies, scheme, "").energy_of(
            reference_counts(self.adsorbate, scheme)
        )

    @property
    def n_adsorbate(self) -> int:
        return len(self.structure) - len(self.slab)

    def key(self) -> dict:
        """What its validation depends on: the geometries and the reference scheme."""
        return {"system_id": self.system_id, "scheme": self.scheme,
                "structure": structure_fingerprint(self.structure),
                "slab": structure_fingerprint(self.slab),
                "gas": {k: structure_fingerprint(m) for k, m in sorted(self.gas.items())}}


def require_one_per_cell(result) -> None:
    """DFT checks of E_ads take one adsorbate per cell: refuse a coverage screen's result."""
    if getattr(result, "coverage", 1) != 1:
        raise WorkflowInputError(
            f"{result.slab_id} + {result.adsorbate} has {result.coverage} adsorbates per cell; "
            "DFT validation compares one adsorbate per cell: validate the screen's results "
            "made without --coverage (filter coverage=1)")


@job
def mlip_r2scan_terms(target: ValidationTarget, model: str, task: str, device: str) -> dict:
    """Single points with the model's ``task`` at the screen's geometries, eV."""
    calc = get_calculator(model, task, device)

    def energy(structure) -> float:
        atoms = to_atoms(structure, fixed=[])
        atoms.calc = calc
        return float(atoms.get_potential_energy())

    gas = {name: energy(m) for name, m in target.gas.items()}
    terms = {SLAB_ADS: energy(target.structure), SLAB: energy(target.slab)}
    value = adsorption_energy(terms[SLAB_ADS], terms[SLAB], target.reference_energy(gas))
    return {"terms": terms, "gas": gas, "adsorption_energy": value}


@job
def pyscf_gas_energy(molecule: Molecule, settings: dict) -> dict:
    """r2SCAN energy (eV) and spin of one gas molecule."""
    result = r2scan_energy(molecule, PySCFSettings(**settings))
    return {"energy": result.energy, "spin": result.spin}


@job
def pyscf_cluster_terms(target: ValidationTarget, cluster: dict, settings: dict) -> dict:
    """r2SCAN energies (eV) of the cluster with and without the adsorbate."""
    spec, pyscf = ClusterSpec(**cluster), PySCFSettings(**settings)
    model = cut_cluster(target.structure, target.n_adsorbate, spec, clean_slab=target.slab)
    with_ads, bare = r2scan_energy(model.with_adsorbate, pyscf), r2scan_energy(model.bare, pyscf)
    return {
        "terms": {CLUSTER_ADS: with_ads.energy, CLUSTER: bare.energy},
        "spins": {CLUSTER_ADS: with_ads.spin, CLUSTER: bare.spin},
        "structure": model.with_adsorbate,
        "cluster": {**asdict(spec), "cut": spec.label(),
                    "formula": model.bare.composition.formula.replace(" ", "")},
    }


@job
def validation_document(
    target: ValidationTarget,
    mlip: dict,
    model: str,
    task: str,
    device: str,
    dft_code: str = "none",
    dft_level: str = "",
    dft: dict | None = None,
    dft_settings: dict | None = None,
) -> R2SCANValidationDoc:
    """The three values of one target side by side.

    ``dft``: ``{"with_adsorbate": (name, eV), "bare": (name, eV), "gas": {formula: eV}}``
    and optionally the ``structure`` the DFT saw; anything else goes to ``dft_settings``.
    """
    settings = dict(dft_settings or {})
    dft_value, dft_terms, dft_structure = None, {}, None
    if dft is not None:
        (with_name, e_with), (bare_name, e_bare) = dft["with_adsorbate"], dft["bare"]
        gas = {name: float(v) for name, v in dft["gas"].items()}
        dft_value = adsorption_energy(e_with, e_bare, target.reference_energy(gas))
        dft_terms = {with_name: e_with, bare_name: e_bare,
                     **{f"{name}(g)": e for name, e in gas.items()}}
        dft_structure = dft.get("structure")
        rest = set(dft) - {"with_adsorbate", "bare", "gas", "structure"}
        settings.update({k: dft[k] for k in rest})
    reference = energy_reference(mlip["gas"], ReferenceScheme(target.scheme),
                                 f"screen's gas molecules, single points with {model}/{task}")
    source = target.source_provenance
    return R2SCANValidationDoc(
        provenance=provenance_of(MLIPSettings(model=model, task=task, device=device),
                                 energy_reference=reference),
        system_id=target.system_id,
        adsorbate=target.adsorbate,
        structure=target.structure,
        source_provenance=Provenance.model_validate(source) if source else None,
        mlip_pbe=target.mlip_pbe,
        mlip_r2scan=mlip["adsorption_energy"],
        mlip_r2scan_terms={**mlip["terms"], **{f"{k}(g)": v for k, v in mlip["gas"].items()}},
        dft_code=dft_code,
        dft_level=dft_level,
        dft_r2scan=dft_value,
        dft_terms=dft_terms,
        dft_structure=dft_structure,
        dft_settings=settings,
    )


@dataclass
class R2SCANValidationMaker(Maker):
    """MLIP-r2SCAN (always) and r2SCAN DFT (``dft``: 'none', 'pyscf' or 'vasp') of screen results.

    ``make(targets)`` takes :class:`ValidationTarget` s (see
    ``ValidationTarget.from_documents``) and returns a Flow whose output is the
    list of :class:`R2SCANValidationDoc`. PySCF gas molecules are computed once
    per formula and shared by every target.
    """

    name: str = "r2SCAN validation"
    model: str = "7net-mf-0"
    task: str = "R2SCAN"
    device: str = "auto"
    dft: str = "none"
    pyscf: PySCFSettings = field(default_factory=PySCFSettings)
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    slab_maker: Maker = field(default_factory=SlabR2SCANStaticMaker)
    molecule_maker: Maker = field(default_factory=FrameworkR2SCANStaticMaker)

    def make(self, targets: list[ValidationTarget]) -> Flow:
        if self.dft not in DFT_CODES:
            raise WorkflowInputError(f"dft must be one of {', '.join(DFT_CODES)}, not {self.dft!r}")
        if not targets:
            raise WorkflowInputError("no results to validate: choose at least one")
        # the model has this task; its hash read from the checkpoint header
        mlip_settings = MLIPSettings(model=self.model, task=self.task, device=self.device)
        # keyed jobs: a re-run reuses stored terms (PySCF takes minutes per cluster)
        mlip_key = {"model": self.model, "task": self.task,
                    "checkpoint": mlip_settings.checkpoint_hash}
        jobs, outputs, gas_jobs = [], [], {}
        mlip_args = (self.model, self.task, self.device)
        for target in targets:
            mlip = keyed(mlip_r2scan_terms(target, *mlip_args), "r2scan mlip", target.key(),
                         mlip_key)
            mlip.name = f"r2SCAN-task {target.system_id}"
            jobs.append(mlip)
            n_before = len(jobs)  # the DFT jobs of this target come next
            dft, level, settings = None, "", {}
            if self.dft == "pyscf":
                dft, level, settings = self._pyscf(target, jobs, gas_jobs)
            elif self.dft == "vasp":
                dft, level, settings = self._vasp(target, jobs, gas_jobs)
            dft_jobs = {j.uuid for j in jobs[n_before:]} | {
                gas_jobs[name].uuid for name in target.gas if name in gas_jobs}  # shared gas
            doc = keyed(validation_document(target, mlip.output, *mlip_args, self.dft, level,
                                            dft, settings),
                        "r2scan validation", mlip.uuid, self.dft, sorted(dft_jobs))
            doc.name = f"r2SCAN validation {target.system_id}"
            jobs.append(doc)
            outputs.append(doc.output)
        return Flow(jobs, output=outputs, name=self.name)

    def _gas(self, target: ValidationTarget, jobs: list, gas_jobs: dict, make_job) -> dict:
        """Energies of the target's gas molecules, one job per formula (shared)."""
        energies = {}
        for name, molecule in target.gas.items():
            if name not in gas_jobs:
                gas_jobs[name] = make_job(name, molecule)
                jobs.append(gas_jobs[name])
            energies[name] = gas_jobs[name].output
        return energies

    def _pyscf(self, target, jobs, gas_jobs):
        settings = asdict(self.pyscf)

        def gas_job(name, molecule):
            j = keyed(pyscf_gas_energy(molecule, settings), "pyscf gas",
                      structure_fingerprint(molecule), settings)
            j.name = f"PySCF r2SCAN {name}(g)"
            return j

        gas = {k: ref["energy"] for k, ref in self._gas(target, jobs, gas_jobs, gas_job).items()}
        cluster = keyed(pyscf_cluster_terms(target, asdict(self.cluster), settings),
                        "pyscf cluster", target.key(), asdict(self.cluster), settings)
        cluster.name = f"PySCF r2SCAN cluster {target.system_id}"
        jobs.append(cluster)
        terms = cluster.output["terms"]
        dft = {"with_adsorbate": (CLUSTER_ADS, terms[CLUSTER_ADS]),
               "bare": (CLUSTER, terms[CLUSTER]), "gas": gas,
               "spins": cluster.output["spins"], "cluster": cluster.output["cluster"],
               "structure": cluster.output["structure"]}
        cap = f"n{self.cluster.max_atoms}" if self.cluster.max_atoms else ""
        basis = self.pyscf.basis
        if isinstance(basis, dict):
            basis = ",".join(f"{el}:{b}" for el, b in sorted(basis.items()))
        level = f"{self.pyscf.xc}/{basis}/cluster r{self.cluster.radius:g}{cap}"
        return dft, level, self.pyscf.as_dict()

    def _vasp(self, target, jobs, gas_jobs):
        slab_incar = self.slab_maker.input_set_generator.user_incar_settings
        molecule_incar = self.molecule_maker.input_set_generator.user_incar_settings

        def static(maker, structure):
            """The maker's static job, keyed by the structure and the user's VASP settings."""
            gen = maker.input_set_generator
            return keyed(maker.make(structure), "vasp r2scan", structure_fingerprint(structure),
                         gen.user_incar_settings, gen.user_kpoints_settings,
                         gen.user_potcar_settings, gen.user_potcar_functional)

        def gas_job(name, molecule):
            j = static(self.molecule_maker, molecule_in_box(molecule))
            j.name = f"VASP r2SCAN {name}(g)"
            return j

        gas = {k: out.output.energy for k, out in self._gas(target, jobs, gas_jobs,
                                                            gas_job).items()}
        with_ads, bare = (static(self.slab_maker, s) for s in (target.structure, target.slab))
        with_ads.name, bare.name = (f"VASP r2SCAN {target.system_id}",
                                    f"VASP r2SCAN slab {target.system_id}")
        jobs += [with_ads, bare]
        dft = {"with_adsorbate": (SLAB_ADS, with_ads.output.output.energy),
               "bare": (SLAB, bare.output.output.energy), "gas": gas}
        settings = {"code": "vasp", "slab_incar": slab_incar, "molecule_incar": molecule_incar}
        return dft, "r2scan/PAW/periodic slab", settings
