"""MLIP relaxation and static Makers, in atomate2's force-field Maker family.

Like atomate2's ``ForceFieldRelaxMaker``/``ForceFieldStaticMaker`` (a dataclass with a
name, the force field, relax_cell, fmax and a step limit; one ``make``), with the
project's MLIP and its task, and an :class:`MLIPCalculationDoc` as the output.
"""

from dataclasses import dataclass, field

from ase import Atoms
from jobflow import Maker, job
from omni_flows.db_schemas import (
    CalcType,
    CalculationInput,
    CalculationOutput,
    EnergyReference,
    MLIPCalculationDoc,
)
from pymatgen.core import Molecule, Structure

from .conversion import as_array, fixed_from_site_properties, to_atoms, to_pymatgen
from .provenance import provenance_of
from .relax import (
    DEFAULT_FMAX,
    DEFAULT_OPTIMIZER,
    DEFAULT_STEPS,
    fixed_indices,
    max_free_force,
    relax_structures,
)


def calculation_doc(
    structure: Structure | Molecule,
    outcome,
    calc_type: CalcType,
    model: str,
    task: str,
    device: str,
    fmax: float | None,
    steps: int | None,
    relax_cell: bool,
    optimizer: str | None,
    fixed: list[int],
    label: str | None = None,
    energy_reference: EnergyReference | None = None,
) -> MLIPCalculationDoc:
    """The document of one relaxation or static outcome (see :mod:`.relax`)."""
    molecule = isinstance(structure, Molecule)
    final = to_pymatgen(outcome.atoms, molecule=molecule)
    n = len(final)
    return MLIPCalculationDoc(
        provenance=provenance_of(model, task, device, energy_reference),
        label=label,
        input=CalculationInput(
            structure=structure, calc_type=calc_type, fmax=fmax, max_steps=steps,
            relax_cell=relax_cell, optimizer=optimizer, fixed_indices=fixed,
        ),
        output=CalculationOutput(
            structure=final,
            energy=outcome.energy,
            energy_per_atom=outcome.energy / n,
            forces=as_array(outcome.forces),
            stress=None if outcome.stress is None else [float(x) for x in outcome.stress],
            max_force=max_free_force(outcome.atoms, outcome.forces),
            n_steps=outcome.nsteps,
            converged=outcome.converged,
            energy_downhill=outcome.initial_energy is None
            or outcome.energy <= outcome.initial_energy + 1e-6,
        ),
    )


@dataclass
class OmniRelaxMaker(Maker):
    """Relax a structure (fixed atoms kept; the cell only with ``relax_cell``) with the MLIP.

    ``model`` is a pretrained name or a checkpoint path, ``task`` the functional
    of a multi-task model. The output's ``converged`` says whether fmax was
    reached within ``steps``.
    """

    name: str = "omni relax"
    model: str = "7net-mf-0"
    task: str = "PBE"
    device: str = "auto"
    backend: str = "e3nn"  # kernel backend: "e3nn" or "compile" (see omni_flows.model.backends)
    fmax: float = DEFAULT_FMAX
    steps: int = DEFAULT_STEPS
    relax_cell: bool = False
    optimizer: str = DEFAULT_OPTIMIZER
    calc_type: CalcType = field(default=CalcType.RELAX, init=False)

    @job
    def make(
        self,
        structure: Structure | Molecule | Atoms,
        fixed: list[int] | None = None,
        label: str | None = None,
    ) -> MLIPCalculationDoc:
        return self.compute(structure, fixed, label)

    def compute(self, structure, fixed=None, label=None) -> MLIPCalculationDoc:
        """The work of ``make`` without jobflow (used by the flows inside one job)."""
        if isinstance(structure, Atoms):
            fixed = fixed_indices(structure) if fixed is None else fixed
            structure = to_pymatgen(structure)
        fixed = fixed_from_site_properties(structure) if fixed is None else list(fixed)
        static = self.calc_type == CalcType.STATIC
        (outcome,) = relax_structures(
            [to_atoms(structure, fixed)], self.model, self.task, self.device, fmax=self.fmax,
            steps=0 if static else self.steps, relax_cell=self.relax_cell and not static,
            optimizer=self.optimizer, backend=self.backend,
        )
        return calculation_doc(
            structure, outcome, self.calc_type, self.model, self.task, self.device,
            None if static else self.fmax, None if static else self.steps,
            self.relax_cell and not static, None if static else self.optimizer, fixed, label,
        )


@dataclass
class OmniStaticMaker(OmniRelaxMaker):
    """A single point (energy, forces, stress) with the MLIP; ``converged`` reports fmax."""

    name: str = "omni static"
    calc_type: CalcType = field(default=CalcType.STATIC, init=False)
