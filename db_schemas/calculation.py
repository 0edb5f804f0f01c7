"""One MLIP calculation (static or relaxation) of a structure or molecule.

Modelled on atomate2's force-field task document (input / output / convergence
flags), without its emmet and ASE dependencies. Trajectories do not go into
the document: the job saves them to the blob store (jobflow ``data=``) and the
document keeps the reference.
"""

from enum import Enum
from typing import Any

from pydantic import BaseModel, Field, computed_field, model_validator
from pymatgen.core import Molecule, Structure

from .document import ResultDoc
from .fingerprint import content_hash, structure_fingerprint


class CalcType(str, Enum):
    STATIC = "static"
    RELAX = "relax"


class CalculationInput(BaseModel):
    """What was asked for."""

    structure: Structure | Molecule
    calc_type: CalcType
    fmax: float | None = Field(None, description="eV/A, force criterion of a relaxation")
    max_steps: int | None = None
    relax_cell: bool = False
    optimizer: str | None = None
    fixed_indices: list[int] = Field(default_factory=list, description="atoms held fixed")


class CalculationOutput(BaseModel):
    """What came out, in eV, eV/A and eV/A^3."""

    structure: Structure | Molecule
    energy: float = Field(description="eV, total energy of the final structure")
    energy_per_atom: float = Field(description="eV/atom")
    forces: list[tuple[float, float, float]] = Field(description="eV/A, per atom")
    stress: list[float] | None = Field(None, description="eV/A^3, Voigt xx yy zz yz xz xy")
    max_force: float = Field(description="eV/A, largest force norm on a free atom")
    n_steps: int = 0
    converged: bool = Field(True, description="max_force <= fmax (atomate2: is_force_converged)")
    energy_downhill: bool = Field(True, description="final energy <= initial energy")


class MLIPCalculationDoc(ResultDoc):
    """An MLIP static or relaxation result."""

    collection = "calculations"
    key_fields = ("input_hash",)
    index_fields = ("formula_pretty", "elements", "input.calc_type", "label")
    summary_fields = (
        "label",
        "formula_pretty",
        "input.calc_type",
        "output.energy",
        "output.max_force",
        "output.converged",
        "provenance.model_name",
        "provenance.task",
    )

    label: str | None = Field(None, description="user/workflow name of the system")
    formula_pretty: str = ""
    elements: list[str] = Field(default_factory=list)
    nsites: int = 0
    input: CalculationInput
    output: CalculationOutput
    input_hash: str = Field("", description="hash of the input structure and parameters")
    trajectory: Any = Field(None, description="relaxation trajectory, or its blob reference")
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _derive(self):
        structure = self.input.structure
        self.formula_pretty = self.formula_pretty or structure.composition.reduced_formula
        self.elements = self.elements or sorted(el.symbol for el in structure.composition)
        self.nsites = self.nsites or len(structure)
        if not self.input_hash:
            parameters = self.input.model_dump(exclude={"structure"}, mode="json")
            self.input_hash = content_hash(
                {"structure": structure_fingerprint(structure), "parameters": parameters}
            )
        return self

    @computed_field
    @property
    def valid(self) -> bool:
        return not self.anomalies and self.output.converged
