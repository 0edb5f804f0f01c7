"""Guests in MOFs, ODAC-style: framework relax -> guest insertion -> relaxations -> E_ads.

Per placement: relax framework + guest at the relaxed cell, then re-relax the
empty framework from the adsorbed geometry and keep the lower framework energy
(ODAC's flexible-framework protocol). E_ads = E(MOF+guest) - E(MOF) - E(guest).
Guest dissociation and a change of framework connectivity reject a placement;
a new guest-metal bond (chemisorption) is only reported in the log; a guest
that stays in the pore without bonds is physisorbed, not "desorbed".
Optional D3(BJ) for PBE (tad-dftd3), added as a single point at every relaxed geometry.
"""

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
from jobflow import Flow, Maker, job
from omni_flows.db_schemas import (
    Anomaly,
    AnomalyKind,
    EnergyReference,
    MLIPCalculationDoc,
    MOFAdsorptionDoc,
    ReferenceScheme,
)
from omni_flows.db_schemas.fingerprint import structure_fingerprint
from pymatgen.core import Element, Structure

from .adsorbates import Adsorbate, get_adsorbate
from .anomaly import ADSORBATE_MULT, _fragments, bond_matrix, changed_bonds
from .conversion import to_atoms, to_pymatgen
from .errors import WorkflowInputError
from .frameworks import check_framework, insert_guest, load_framework, supercell_for_cutoff
from .identity import keyed
from .provenance import provenance_of
from .references import gas_molecule
from .relax import get_calculator, relax_structures
from .surface_flow import MLIPSettings

log = logging.getLogger(__name__)


def d3_energy(atoms) -> float:
    """D3(BJ) dispersion energy for PBE, eV (tad-dftd3, Grimme's PBE parameters).

    tad-dftd3 0.7 has no periodic boundary conditions, so frameworks are refused
    with a clear error until a periodic D3 (simple-dftd3's ``dftd3`` package) is wired in.
    """
    try:
        import tad_dftd3 as d3
        import tad_mctc as mctc
        import torch
    except ImportError:
        raise WorkflowInputError("D3 needs the tad-dftd3 package: pip install tad-dftd3") from None
    if atoms.pbc.any():
        raise WorkflowInputError("D3 for periodic frameworks is not available yet (tad-dftd3 "
                                 "is molecular only); run without --d3")
    numbers = torch.tensor(atoms.numbers)
    positions = torch.tensor(atoms.positions, dtype=torch.float64) * mctc.units.AA2AU
    param = {k: torch.tensor(v, dtype=torch.float64)
             for k, v in {"a1": 0.4289, "s8": 0.7875, "a2": 4.4407}.items()}  # PBE-D3(BJ)
    return float(d3.dftd3(numbers, positions, param).sum()) * mctc.units.AU2EV


def _energy(outcome, dispersion: bool) -> float:
    return outcome.energy + (d3_energy(outcome.atoms) if dispersion else 0.0)


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
    mlip: dict,
) -> MOFAdsorptionDoc:
    settings = MLIPSettings(**mlip)
    framework = framework_doc.output.structure
    rng = np.random.default_rng([seed, placement_index])
    initial = insert_guest(framework, guest, rng)
    guest_idx = list(range(len(framework), len(initial)))
    args = (settings.model, settings.task, settings.device)
    (cplx,) = relax_structures([to_atoms(initial, [])], *args, fmax=settings.fmax,
                               steps=settings.steps)
    empty = cplx.atoms.copy()
    del empty[guest_idx]
    (refw,) = relax_structures([empty], *args, fmax=settings.fmax, steps=settings.steps)
    e_fw = min(framework_doc.output.energy + (d3_energy(to_atoms(framework)) if dispersion
                                              else 0.0), _energy(refw, dispersion))
    e_guest = guest_doc.output.energy + (d3_energy(to_atoms(guest_doc.output.structure))
                                         if dispersion else 0.0)
    e_cplx = _energy(cplx, dispersion)
    final = to_pymatgen(cplx.atoms)
    anomalies, chem = framework_anomalies(initial, final, guest_idx)
    if chem:
        log.info("%s/%s #%d chemisorbed: %s", framework_id, guest.name, placement_index, chem)
    reference = EnergyReference(scheme=ReferenceScheme.GAS_MOLECULES,
                                energies={guest.name: e_guest},
                                source=f"{guest.name} relaxed in a box"
                                + (" + D3(BJ)" if dispersion else ""))
    return MOFAdsorptionDoc(
        provenance=provenance_of(settings.model, settings.task, settings.device, reference),
        anomalies=anomalies,
        framework_id=framework_id,
        framework_formula=framework.composition.reduced_formula,
        guest=guest.name,
        placement_index=placement_index,
        dispersion=dispersion,
        final_structure=final,
        complex_energy=e_cplx,
        framework_energy=e_fw,
        guest_energy=e_guest,
        adsorption_energy=e_cplx - e_fw - e_guest,
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

    def make(self, framework, framework_id: str | None = None) -> Flow:
        if isinstance(framework, Structure):
            check_framework(framework, framework_id or "framework")
            name = framework_id or framework.composition.reduced_formula
        else:
            name = framework_id or str(framework).rsplit("/", 1)[-1].removesuffix(".cif")
            framework = load_framework(framework)
        guests = [get_adsorbate(g) for g in self.guests]
        if self.dispersion:
            d3_energy(to_atoms(framework))  # the D3 package is there and handles cells
        get_calculator(self.mlip.model, self.mlip.task, self.mlip.device)
        framework = framework.copy()
        framework.make_supercell(supercell_for_cutoff(framework))
        mlip_key, mlip = self.mlip.key(), asdict(self.mlip)
        fw_job = self.mlip.relaxer(relax_cell=self.relax_framework_cell).make(framework,
                                                                              label=name)
        fw_job.name = f"framework {name}"
        keyed(fw_job, "framework", structure_fingerprint(framework), mlip_key,
              self.relax_framework_cell)
        jobs, outputs = [fw_job], []
        for guest in guests:
            g_job = self.mlip.relaxer().make(gas_molecule(guest.name), label=f"{guest.name}(g)")
            g_job.name = f"gas {guest.name}"
            keyed(g_job, "gas", guest.name, mlip_key)
            jobs.append(g_job)
            for i in range(self.n_placements):
                pj = relax_guest_in_framework(fw_job.output, g_job.output, name, guest, i,
                                              self.seed, self.dispersion, mlip)
                pj.name = f"{guest.name}@{name} #{i}"
                keyed(pj, "mof placement", fw_job.uuid, guest, i, self.seed, self.dispersion)
                jobs.append(pj)
                outputs.append(pj.output)
        return Flow(jobs, output=outputs, name=f"{self.name} {name}")
