"""MLIP relaxation and single-point Makers: one job per structure, the one relaxation engine.

``OmniRelaxMaker(mlip=MLIPSettings(...), relax_cell=...)`` relaxes a pymatgen
Structure (bulk, slab; fixed atoms from ``selective_dynamics`` or ``fixed``) or a
Molecule (in a 15 A box) with :func:`omni_flows.workflows.relax.relax`, the same
engine, optimizer and convergence rule as every other relaxation of the
workflows. The output is an :class:`~omni_flows.db_schemas.MLIPCalculationDoc`
(filed in ``calculations``), with the settings id and the provenance of the
settings that made it. ``make`` keys the job by its identity: the same structure
with the same settings is the same job, so a re-run reuses it.
"""

from dataclasses import dataclass, field

from jobflow import Job, Maker, job
from omni_flows.db_schemas import (
    CalcType,
    CalculationInput,
    CalculationOutput,
    MLIPCalculationDoc,
)
from omni_flows.db_schemas.fingerprint import structure_fingerprint
from omni_flows.db_schemas.identity import ResultIdentity, result_identity
from pymatgen.core import Molecule, Structure

from ..structures.geometry import as_array, selective_dynamics, to_atoms, to_pymatgen
from ..identity import keyed
from ..provenance import provenance_of
from ..relax import get_calculator, max_free_force, relax
from ..settings import MLIPSettings


@job
def mlip_calculation(
    structure: Structure | Molecule,
    mlip: MLIPSettings,
    relax_cell: bool,
    single_point: bool,
    label: str | None,
    settings_id: str,
) -> MLIPCalculationDoc:
    """Relax (or evaluate) ``structure``; its fixed atoms are its selective_dynamics."""
    molecule = isinstance(structure, Molecule)
    atoms = to_atoms(structure)
    (out,) = relax([atoms], mlip, relax_cell=relax_cell, single_point=single_point)
    final = to_pymatgen(out.atoms, molecule=molecule)
    fixed = sorted(int(i) for c in atoms.constraints for i in c.get_indices())
    device = str(get_calculator(mlip).device)
    return MLIPCalculationDoc(
        provenance=provenance_of(mlip, {"mlip": mlip.identity()}, device=device),
        settings_id=settings_id,
        label=label,
        input=CalculationInput(
            structure=structure,
            calc_type=CalcType.STATIC if single_point else CalcType.RELAX,
            fmax=mlip.fmax, max_steps=None if single_point else mlip.steps,
            relax_cell=relax_cell and not single_point,
            optimizer=None if single_point else mlip.optimizer, fixed_indices=fixed,
        ),
        output=CalculationOutput(
            structure=final,
            energy=out.energy,
            energy_per_atom=out.energy / len(atoms),
            forces=as_array(out.forces),
            stress=None if out.stress is None else [float(x) for x in out.stress],
            max_force=max_free_force(out.atoms, out.forces),
            n_steps=out.nsteps,
            converged=out.converged,
            energy_downhill=out.energy <= out.initial_energy + 1e-6,
        ),
        trajectory={"energies": out.energies} if not single_point else None,
    )


@dataclass
class OmniRelaxMaker(Maker):
    """Relax a structure or molecule with the MLIP settings ``mlip``.

    ``relax_cell`` relaxes the cell too (through ASE's FrechetCellFilter). The
    output's ``output.converged`` says whether fmax was reached within the steps.
    """

    name: str = "omni relax"
    mlip: MLIPSettings = field(default_factory=MLIPSettings)
    relax_cell: bool = False
    single_point: bool = False

    def identity(self, structure: Structure | Molecule) -> ResultIdentity:
        """What decides this calculation: the structure with its fixed atoms, the settings."""
        flags = structure.site_properties.get("selective_dynamics")
        system = {"structure": structure_fingerprint(structure),
                  "fixed": None if flags is None else [not any(f) for f in flags]}
        return result_identity("calculation", system, {
            "mlip": self.mlip.identity(), "relax_cell": self.relax_cell,
            "single_point": self.single_point})

    def make(
        self,
        structure: Structure | Molecule,
        fixed: list[int] | None = None,
        label: str | None = None,
    ) -> Job:
        """The job relaxing (or evaluating) ``structure``; ``fixed``: indices held in place,
        replacing the structure's ``selective_dynamics``."""
        if fixed is not None:
            structure = structure.copy()
            structure.add_site_property("selective_dynamics",
                                        selective_dynamics(len(structure), fixed))
        identity = self.identity(structure)
        j = mlip_calculation(structure, self.mlip, self.relax_cell, self.single_point, label,
                             identity.settings_id)
        j.name = self.name if label is None else f"{self.name} {label}"
        return keyed(j, identity)


@dataclass
class OmniStaticMaker(OmniRelaxMaker):
    """A single point (energy, forces, stress) with the MLIP; ``output.converged`` reports
    whether the forces are within fmax."""

    name: str = "omni static"
    single_point: bool = True

