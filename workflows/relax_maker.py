"""MLIP relaxation and static Makers: atomate2 force-field Makers running the project's MLIP.

``OmniRelaxMaker`` is an atomate2 ``ForceFieldRelaxMaker`` whose calculator is the
project's :class:`~omni_flows.model.OmniCalculator` (one per model, task, device
and backend in a process): atomate2's ``AseRelaxer`` runs the ASE optimizer and
the output is atomate2's force-field task document, plus the provenance (model,
task, checkpoint hash, package versions) and a label. ``is_force_converged`` is
the convergence flag. ``omni_flows.stores`` files these documents in the
``calculations`` collection as :class:`~omni_flows.db_schemas.MLIPCalculationDoc`.
"""

from dataclasses import dataclass
from pathlib import Path

from atomate2.forcefields.jobs import (
    ForceFieldRelaxMaker,
    ForceFieldStaticMaker,
    forcefield_job,
)
from atomate2.forcefields.schemas import ForceFieldMoleculeTaskDocument, ForceFieldTaskDocument
from omni_flows.db_schemas import Provenance
from pydantic import BaseModel, Field
from pymatgen.core import Molecule, Structure

from .conversion import selective_dynamics
from .provenance import provenance_of
from .relax import (
    DEFAULT_FMAX,
    DEFAULT_OPTIMIZER,
    DEFAULT_STEPS,
    get_calculator,
    optimizer_threads,
)


class OmniMeta(BaseModel):
    """What the MLIP Makers add to atomate2's task documents."""

    provenance: Provenance
    label: str | None = Field(None, description="user/workflow name of the system")


class OmniTaskDocument(ForceFieldTaskDocument, OmniMeta):
    """atomate2's force-field task document of a structure, with provenance and label."""


class OmniMoleculeTaskDocument(ForceFieldMoleculeTaskDocument, OmniMeta):
    """atomate2's force-field task document of a molecule, with provenance and label."""


@dataclass
class OmniRelaxMaker(ForceFieldRelaxMaker):
    """Relax a structure or molecule with the MLIP (an atomate2 ``ForceFieldRelaxMaker``).

    ``model`` is a pretrained name or a checkpoint path, ``task`` the functional
    of a multi-task model, ``backend`` the kernels (see ``omni_flows.model.backends``).
    Fixed atoms (``selective_dynamics`` all False, or ``fixed`` in ``make``) stay
    in place; the cell relaxes only with ``relax_cell``. ``fmax`` (eV/A) and
    ``optimizer`` are the one place these are set: they fill atomate2's
    ``relax_kwargs`` and ``optimizer_kwargs``. The output's ``is_force_converged``
    says whether fmax was reached within ``steps``.
    """

    name: str = "omni relax"
    calculator_meta: str = "omni_flows.model.OmniCalculator"
    model: str = "7net-mf-0"
    task: str = "PBE"
    device: str = "auto"
    backend: str = "e3nn"
    fmax: float = DEFAULT_FMAX
    steps: int = DEFAULT_STEPS
    relax_cell: bool = False
    optimizer: str = DEFAULT_OPTIMIZER

    def __post_init__(self) -> None:
        super().__post_init__()
        # no final_atoms_object.xyz appended to the working directory by every job
        self.relax_kwargs = {"final_atoms_object_file": None, **self.relax_kwargs,
                             "fmax": self.fmax}
        self.optimizer_kwargs = {**self.optimizer_kwargs, "optimizer": self.optimizer}
        self.task_document_kwargs = {}  # atomate2's deprecated channel; the fields say it all

    def _get_calculator(self):
        return get_calculator(self.model, self.task, self.device, self.backend)

    @forcefield_job
    def make(
        self,
        structure: Structure | Molecule,
        prev_dir: str | Path | None = None,
        fixed: list[int] | None = None,
        label: str | None = None,
    ) -> OmniTaskDocument | OmniMoleculeTaskDocument:
        """Relax (or, for the static Maker, evaluate) ``structure``.

        ``fixed``: indices of atoms held in place, replacing the structure's
        ``selective_dynamics``. ``prev_dir`` is unused (atomate2's signature).
        """
        if fixed is not None:
            structure = structure.copy()
            structure.add_site_property("selective_dynamics",
                                        selective_dynamics(len(structure), fixed))
        with optimizer_threads():
            doc = ForceFieldRelaxMaker.make.original(self, structure, prev_dir)
        # the given structure, with its fixed atoms, rather than the trajectory's bare first frame
        doc.input.mol_or_struct = structure
        fields = {k: v for k, v in dict(doc).items() if v is not None}
        if isinstance(structure, Molecule):  # atomate2 0.1.5 leaves `molecule` empty
            cls, fields["molecule"] = OmniMoleculeTaskDocument, doc.output.mol_or_struct
        else:
            cls = OmniTaskDocument
        return cls.model_validate({
            **fields,
            "forcefield_name": self.model,
            "provenance": provenance_of(self.model, self.task, self.device,
                                        backend=self.backend),
            "label": label,
        })


@dataclass
class OmniStaticMaker(OmniRelaxMaker, ForceFieldStaticMaker):
    """A single point (energy, forces, stress) with the MLIP; ``is_force_converged`` reports fmax."""

    name: str = "omni static"
    steps: int = 1  # atomate2: at most one step is a single point
