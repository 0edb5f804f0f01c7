"""r2SCAN validation of a screen's results: the model's r2SCAN task, and r2SCAN DFT.

For each chosen adsorption result (a :class:`ValidationTarget`: the relaxed
slab+adsorbate, the relaxed clean slab, the relaxed gas molecules and the
screen's reference scheme):

1. MLIP-r2SCAN, always: single points with the model's r2SCAN task at the
   screen's geometries, E_ads = E(slab+ads) - E(slab) - E_ref under the same
   reference scheme as the screen's (PBE-task) value;
2. ``dft="pyscf"``: r2SCAN with PySCF on a cluster cut around the site
   (:mod:`..structures.clusters`) and on the gas molecules, one basis and functional for
   every term (:mod:`..dft.pyscf_r2scan`);
3. ``dft="vasp"``: atomate2 r2SCAN statics of the slab+adsorbate, the slab and
   each gas molecule in a box (:mod:`..dft.vasp_r2scan`), for users with VASP.

Each target ends in one :class:`R2SCANValidationDoc` with the three values side by side.

The maker takes its settings whole: ``mlip`` (:class:`MLIPSettings`, the model's
r2SCAN task) and ``pyscf`` (:class:`PySCFSettings`) or the VASP makers. Every job
is keyed by :func:`result_identity` of what it computes and the settings that
decide its number, so a re-run reuses stored terms (PySCF takes minutes per
cluster) and other settings make other documents, each with the settings id of
its own settings.
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
from omni_flows.db_schemas.identity import ResultIdentity, result_identity
from pymatgen.core import Molecule, Structure

from ..structures.clusters import ClusterSpec, cut_cluster
from ..structures.geometry import to_atoms
from ..errors import WorkflowInputError
from ..identity import keyed
from ..provenance import provenance_of
from ..dft.pyscf_r2scan import PySCFSettings, r2scan_energy
from ..thermo.references import energy_reference, molecules_needed, reference_counts
from ..relax import get_calculator
from ..settings import MLIPSettings
from ..dft.vasp_r2scan import FrameworkR2SCANStaticMaker, SlabR2SCANStaticMaker, molecule_in_box

DFT_CODES = ("none", "pyscf", "vasp")
R2SCAN_TASK = "R2SCAN"  # the r2SCAN task of the multi-task models (7net-mf-0, omni-ads-0)
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
    screen_settings_id: str = ""  # settings id of the screen's result

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
            screen_settings_id=result.settings_id,
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

    def identity(self, mlip: MLIPSettings, dft_code: str, dft: dict) -> ResultIdentity:
        """Its validation document: these geometries, the r2SCAN-task model, the DFT code
        and settings (``dft``), the screen's reference scheme and settings id."""
        return result_identity("r2scan validation", self.key(), {
            "mlip": mlip.identity(), "dft_code": dft_code, "dft": dft,
            "reference": self.scheme, "screen_settings_id": self.screen_settings_id})


def require_one_per_cell(result) -> None:
    """DFT checks of E_ads take one adsorbate per cell: refuse a coverage screen's result."""
    if getattr(result, "coverage", 1) != 1:
        raise WorkflowInputError(
            f"{result.slab_id} + {result.adsorbate} has {result.coverage} adsorbates per cell; "
            "DFT validation compares one adsorbate per cell: validate the screen's results "
            "made without --coverage (filter coverage=1)")


@job
def mlip_r2scan_terms(target: ValidationTarget, mlip: MLIPSettings) -> dict:
    """Single points with the model's task (``mlip.task``) at the screen's geometries, eV."""
    calc = get_calculator(mlip)

    def energy(structure) -> float:
        atoms = to_atoms(structure, fixed=[])
        atoms.calc = calc
        return float(atoms.get_potential_energy())

    gas = {name: energy(m) for name, m in target.gas.items()}
    terms = {SLAB_ADS: energy(target.structure), SLAB: energy(target.slab)}
    value = adsorption_energy(terms[SLAB_ADS], terms[SLAB], target.reference_energy(gas))
    return {"terms": terms, "gas": gas, "adsorption_energy": value}


@job
def pyscf_gas_energy(molecule: Molecule, pyscf: PySCFSettings) -> dict:
    """r2SCAN energy (eV) and spin of one gas molecule."""
    result = r2scan_energy(molecule, pyscf)
    return {"energy": result.energy, "spin": result.spin}


@job
def pyscf_cluster_terms(target: ValidationTarget, spec: ClusterSpec,
                        pyscf: PySCFSettings) -> dict:
    """r2SCAN energies (eV) of the cluster with and without the adsorbate."""
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
    terms: dict,
    mlip: MLIPSettings,
    dft_code: str = "none",
    dft_level: str = "",
    dft: dict | None = None,
    dft_settings: dict | None = None,
) -> R2SCANValidationDoc:
    """The three values of one target side by side.

    ``terms``: the output of :func:`mlip_r2scan_terms`. ``dft``: ``{"with_adsorbate":
    (name, eV), "bare": (name, eV), "gas": {formula: eV}}`` and optionally the
    ``structure`` the DFT saw; anything else goes to the stored ``dft_settings``.
    ``dft_settings``: every DFT setting (the document's identity holds them).
    """
    identity = target.identity(mlip, dft_code, dft_settings or {})
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
    reference = energy_reference(terms["gas"], ReferenceScheme(target.scheme),
                                 "screen's gas molecules, single points with "
                                 f"{mlip.model}/{mlip.task}")
    source = target.source_provenance
    return R2SCANValidationDoc(
        provenance=provenance_of(mlip, settings=identity.settings, energy_reference=reference),
        settings_id=identity.settings_id,
        system_id=target.system_id,
        adsorbate=target.adsorbate,
        structure=target.structure,
        source_provenance=Provenance.model_validate(source) if source else None,
        mlip_pbe=target.mlip_pbe,
        mlip_r2scan=terms["adsorption_energy"],
        mlip_r2scan_terms={**terms["terms"], **{f"{k}(g)": v for k, v in terms["gas"].items()}},
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
    per formula and shared by every target. ``mlip``: the model and its r2SCAN task.
    """

    name: str = "r2SCAN validation"
    mlip: MLIPSettings = field(default_factory=lambda: MLIPSettings(task=R2SCAN_TASK))
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
        jobs, outputs, gas_jobs = [], [], {}
        for target in targets:
            mlip = keyed(mlip_r2scan_terms(target, self.mlip), result_identity(
                "r2scan mlip", target.key(), {"mlip": self.mlip.identity()}))
            mlip.name = f"r2SCAN-task {target.system_id}"
            jobs.append(mlip)
            dft, level, settings = None, "", {}
            if self.dft == "pyscf":
                dft, level, settings = self._pyscf(target, jobs, gas_jobs)
            elif self.dft == "vasp":
                dft, level, settings = self._vasp(target, jobs, gas_jobs)
            doc = keyed(validation_document(target, mlip.output, self.mlip, self.dft, level,
                                            dft, settings),
                        target.identity(self.mlip, self.dft, settings))
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
        pyscf = self.pyscf

        def gas_job(name, molecule):
            j = keyed(pyscf_gas_energy(molecule, pyscf), result_identity(
                "pyscf gas", structure_fingerprint(molecule), pyscf.key()))
            j.name = f"PySCF r2SCAN {name}(g)"
            return j

        gas = {k: ref["energy"] for k, ref in self._gas(target, jobs, gas_jobs, gas_job).items()}
        cluster = keyed(pyscf_cluster_terms(target, self.cluster, pyscf), result_identity(
            "pyscf cluster", target.key(), {"pyscf": pyscf.key(),
                                            "cluster": asdict(self.cluster)}))
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
        # the cluster cut decides the number too: stored with the PySCF settings
        return dft, level, {**self.pyscf.key(), "cluster_spec": asdict(self.cluster)}

    def _vasp(self, target, jobs, gas_jobs):
        def static(maker, structure):
            """The maker's static job, keyed by the structure and the user's VASP settings."""
            return keyed(maker.make(structure), result_identity(
                "vasp r2scan", structure_fingerprint(structure), vasp_settings(maker)))

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
        settings = {"code": "vasp", "slab": vasp_settings(self.slab_maker),
                    "molecule": vasp_settings(self.molecule_maker)}
        return dft, "r2scan/PAW/periodic slab", settings


def vasp_settings(maker: Maker) -> dict:
    """What a VASP static's number depends on beyond its structure: the user's settings
    of the maker's input set (the set's own defaults are its class, fixed per version)."""
    gen = maker.input_set_generator
    return {"input_set": type(gen).__name__, "incar": gen.user_incar_settings,
            "kpoints": gen.user_kpoints_settings, "potcar": gen.user_potcar_settings,
            "potcar_functional": gen.user_potcar_functional}
