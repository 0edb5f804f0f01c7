"""Guests in MOFs, ODAC-style: framework relax -> guest insertion -> relaxations -> E_ads.

Per placement: relax framework + guest at the relaxed cell, then re-relax the
empty framework from the adsorbed geometry and keep the lower framework energy
(ODAC's flexible-framework protocol). E_ads = E(MOF+guest) - E(MOF) - E(guest).
Guest dissociation and a change of framework connectivity reject a placement;
a new guest-metal bond (chemisorption) is reported in the document, not
rejected; a guest that stays in the pore without bonds is physisorbed, not
"desorbed". Optional D3(BJ) of the task's functional (simple-dftd3, periodic),
added as a single point at every relaxed geometry; the document keeps the D3
part apart, so one run gives E_ads with and without D3.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import units
from jobflow import Flow, Job, Maker, job
from omni_flows.db_schemas import (
    Anomaly,
    AnomalyKind,
    EnergyReference,
    MOFAdsorptionDoc,
    ReferenceScheme,
    adsorption_energy,
)
from omni_flows.db_schemas.fingerprint import structure_fingerprint
from pymatgen.core import Element, Structure

from ..structures.adsorbates import Adsorbate, get_adsorbate
from ..structures.anomaly import ADSORBATE_MULT, _fragments, bond_matrix, changed_bonds
from ..structures.geometry import to_atoms, to_pymatgen
from ..errors import FrameworkError, WorkflowInputError
from ..structures.frameworks import check_framework, insert_guest, load_framework, supercell_for_cutoff
from omni_flows.db_schemas import MLIPCalculationDoc
from omni_flows.db_schemas.identity import result_identity, settings_id

from ..identity import keyed
from ..provenance import provenance_of
from ..thermo.references import gas_molecule
from ..relax import get_calculator, relax
from .relax_maker import OmniRelaxMaker
from ..settings import MLIPSettings

log = logging.getLogger(__name__)


def d3_parameters(task: str | None):
    """simple-dftd3's D3(BJ) parameters of the model task's functional (PBE for a 1-task model).

    Two-body only (simple-dftd3's default for a method name), as VASP's IVDW=12 that
    ODAC's PBE-D3 reference used.
    """
    functional = task or "PBE"
    try:
        from dftd3.interface import RationalDampingParam
    except ImportError:
        raise WorkflowInputError("D3 needs simple-dftd3's Python package: pip install dftd3, "
                                 "or run without --d3") from None
    try:
        return RationalDampingParam(method=functional.lower())
    except RuntimeError:
        raise WorkflowInputError(f"no D3(BJ) parameters for the task {functional!r}; choose a "
                                 "task of a functional D3 knows (PBE, R2SCAN) or run without "
                                 "--d3") from None


def d3_energy(atoms, task: str | None = "PBE") -> float:
    """D3(BJ) dispersion energy (eV) of a molecule or a periodic cell (simple-dftd3)."""
    from dftd3.interface import DispersionModel

    pbc = atoms.pbc if atoms.pbc.any() else None
    model = DispersionModel(atoms.numbers, atoms.positions / units.Bohr,
                            atoms.cell.array / units.Bohr if pbc is not None else None, pbc)
    return float(model.get_dispersion(d3_parameters(task), grad=False)["energy"]) * units.Hartree


def framework_anomalies(initial: Structure, final: Structure, guest_idx: list[int]) -> tuple:
    """(anomalies that reject, new guest-metal bonds) of one relaxed placement."""
    ini, fin = to_atoms(initial), to_atoms(final)
    fw = [i for i in range(len(ini)) if i not in set(guest_idx)]
    found = []
    a0, a1 = bond_matrix(ini, ADSORBATE_MULT), bond_matrix(fin, ADSORBATE_MULT)
    if _fragments(a1, guest_idx) > _fragments(a0, guest_idx):
        found.append(Anomaly(kind=AnomalyKind.DISSOCIATION, detail="guest broke apart"))
    changed = changed_bonds(ini, fin, fw)
    if changed:
        found.append(Anomaly(kind=AnomalyKind.SURFACE_CHANGE,
                             detail=f"framework connectivity: {changed} bonds made or broken"))
    metals = [i for i in fw if Element(fin[i].symbol).is_metal]
    chem = [f"{fin[g].symbol}{g}-{fin[m].symbol}{m}" for g in guest_idx for m in metals
            if a1[g, m] and not a0[g, m]]
    return found, chem


@job
def relax_guest_in_framework(
    framework_doc: MLIPCalculationDoc,
    guest_doc: MLIPCalculationDoc,
    framework_id: str,
    guest: Adsorbate,
    placement_index: int,
    seed: int,
    dispersion: bool,
    mlip: MLIPSettings,
    settings_id: str,
    settings: dict,
) -> MOFAdsorptionDoc:
    framework = framework_doc.output.structure
    rng = np.random.default_rng([seed, placement_index])
    initial = insert_guest(framework, guest, rng)
    guest_idx = list(range(len(framework), len(initial)))
    (cplx,) = relax([to_atoms(initial, [])], mlip)
    empty = cplx.atoms.copy()
    del empty[guest_idx]
    (refw,) = relax([empty], mlip)
    # D3 single points at the relaxed geometries (the relaxations themselves are without D3)
    task = mlip.task
    fw_terms = [(framework_doc.output.energy, to_atoms(framework)), (refw.energy, refw.atoms)]
    if dispersion:
        guest_final = guest_doc.output.structure
        d3_guest = d3_energy(to_atoms(guest_final), task)
        d3_cplx = d3_energy(cplx.atoms, task)
        fw_terms = [(e, d3_energy(atoms, task)) for e, atoms in fw_terms]
    else:
        d3_guest = d3_cplx = 0.0
        fw_terms = [(e, 0.0) for e, _ in fw_terms]
    # ODAC: the lower of the two framework energies, with D3 where it is on
    e_fw, d3_fw = min(fw_terms, key=sum)
    final = to_pymatgen(cplx.atoms)
    anomalies, chem = framework_anomalies(initial, final, guest_idx)
    if chem:
        log.info("%s/%s #%d chemisorbed: %s", framework_id, guest.name, placement_index, chem)
    e_guest = guest_doc.output.energy + d3_guest
    reference = EnergyReference(scheme=ReferenceScheme.GAS_MOLECULES,
                                energies={guest.name: e_guest},
                                source=f"{guest.name} relaxed in a box"
                                + (" + D3(BJ)" if dispersion else ""))
    e_cplx, e_fw = cplx.energy + d3_cplx, e_fw + d3_fw
    return MOFAdsorptionDoc(
        provenance=provenance_of(mlip, settings, reference, str(get_calculator(mlip).device)),
        settings_id=settings_id,
        anomalies=anomalies,
        chemisorption_bonds=chem,
        framework_id=framework_id,
        framework_formula=framework.composition.reduced_formula,
        guest=guest.name,
        placement_index=placement_index,
        dispersion=dispersion,
        final_structure=final,
        complex_energy=e_cplx,
        framework_energy=e_fw,
        guest_energy=e_guest,
        adsorption_energy=adsorption_energy(e_cplx, e_fw, e_guest),
        dispersion_correction=d3_cplx - d3_fw - d3_guest if dispersion else None,
        converged=cplx.converged and refw.converged,
    )


@dataclass
class MOFAdsorptionMaker(Maker):
    """Guests in one framework (CIF path or Structure); inputs checked when the Flow is made."""

    name: str = "mof adsorption"
    guests: list[str] = field(default_factory=lambda: ["CO2", "H2O"])
    n_placements: int = 3
    dispersion: bool = False
    relax_framework_cell: bool = True
    seed: int = 0
    mlip: MLIPSettings = field(default_factory=MLIPSettings)

    def check(self, framework, framework_id: str | None = None) -> tuple[str, Structure, list]:
        """(name, framework, guests) once every input is checked; nothing runs here."""
        if self.n_placements < 1:
            raise WorkflowInputError(f"--placements must be at least 1, not {self.n_placements}")
        if isinstance(framework, Structure):
            check_framework(framework, framework_id or "framework")
            name = framework_id or framework.composition.reduced_formula
        else:
            name = framework_id or Path(framework).stem
            framework = load_framework(framework)
        guests = [get_adsorbate(g) for g in self.guests]
        for guest in guests:
            gas_molecule(guest.name)  # the isolated guest must be a known molecule
        if self.dispersion:
            d3_parameters(self.mlip.task)  # the D3 package is there and knows the functional
        self.mlip.check_elements([el.symbol for el in framework.composition], f"framework {name}")
        for guest in guests:
            self.mlip.check_elements(guest.symbols, f"guest {guest.name}")
        return name, framework, guests

    @property
    def settings(self) -> dict:
        """What decides a MOF adsorption energy (the content of its settings id)."""
        return {"mlip": self.mlip.identity(), "relax_framework_cell": self.relax_framework_cell,
                "dispersion": self.dispersion, "seed": self.seed}

    @property
    def settings_id(self) -> str:
        return settings_id(self.settings)

    def gas_jobs(self) -> dict[str, Job]:
        """One relaxation per isolated guest, keyed like the surface flow's gas references."""
        maker = OmniRelaxMaker(name="gas", mlip=self.mlip)
        return {name: maker.make(gas_molecule(name), label=f"{name}(g)")
                for name in dict.fromkeys(get_adsorbate(g).name for g in self.guests)}

    def make(self, frameworks, framework_id: str | None = None,
             gas_docs: dict | None = None) -> Flow:
        """The Flow of one framework (CIF path or Structure) or of a list of them: one
        screen, every input checked first, the isolated guests relaxed once for all (a
        CIF's file name is its framework's id). With ``gas_docs`` (another Flow's) no gas
        jobs of its own."""
        if not isinstance(frameworks, list | tuple):
            return self._framework_flow(frameworks, framework_id, gas_docs)
        checked = [self.check(f) for f in frameworks]
        names = [name for name, _, _ in checked]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise FrameworkError(f"several CIF files are named {', '.join(twice)}: rename them, "
                                 "the file name is the framework's id")
        gas = self.gas_jobs()
        gas_docs = {guest: j.output for guest, j in gas.items()}
        flows = [self._framework_flow(structure, name, gas_docs)
                 for name, structure, _ in checked]
        return Flow([*gas.values(), *flows], output=[ref for f in flows for ref in f.output],
                    name=f"screen {'+'.join(names)} {' '.join(self.guests)}",
                    metadata={"settings_id": self.settings_id})

    def _framework_flow(self, framework, framework_id: str | None, gas_docs: dict | None
                        ) -> Flow:
        """The Flow of one framework; with ``gas_docs`` no gas jobs of its own."""
        name, framework, guests = self.check(framework, framework_id)
        jobs = []
        if gas_docs is None:
            gas = self.gas_jobs()
            jobs, gas_docs = list(gas.values()), {k: j.output for k, j in gas.items()}
        framework = framework.copy()
        framework.make_supercell(supercell_for_cutoff(framework))
        fw_job = OmniRelaxMaker(name="framework", mlip=self.mlip,
                                relax_cell=self.relax_framework_cell).make(framework, label=name)
        jobs.append(fw_job)
        outputs = []
        settings = self.settings
        for guest in guests:
            for i in range(self.n_placements):
                identity = result_identity("mof placement", {
                    "framework": structure_fingerprint(framework), "name": name,
                    "guest": guest.adsorbate_id, "placement": i}, settings)
                pj = relax_guest_in_framework(fw_job.output, gas_docs[guest.name], name, guest,
                                              i, self.seed, self.dispersion, self.mlip,
                                              identity.settings_id, settings)
                pj.name = f"{guest.name}@{name} #{i}"
                keyed(pj, identity)
                jobs.append(pj)
                outputs.append(pj.output)
        return Flow(jobs, output=outputs, name=f"{self.name} {name}")
