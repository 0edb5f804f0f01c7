"""One MLIP calculation (static or relaxation) of a structure or molecule.

The stored form of the MLIP Makers' output, atomate2's force-field task
document (``omni_flows.workflows.flows.relax_maker``): input / output / convergence
flag and provenance, read from the task document's JSON form so that this
package needs neither atomate2 nor ASE. Trajectories do not go into the
document: the job saves them to the blob store (jobflow ``data=``) and the
document keeps the reference.
"""

from enum import Enum
from typing import Any

from pydantic import BaseModel, Field, computed_field, model_validator
from pymatgen.core import Molecule, Structure

from .document import ResultDoc
from .fingerprint import content_hash, structure_fingerprint

# the task documents of the MLIP Makers (omni_flows.workflows.flows.relax_maker), by class name
TASK_DOCUMENT_CLASSES = ("OmniTaskDocument", "OmniMoleculeTaskDocument")

# kbar per eV/A^3 (1 eV/A^3 = 160.21766 GPa): atomate2 reports stress in kbar, sign flipped
KBAR_PER_EV_PER_A3 = 1602.1766208


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

    @classmethod
    def from_task_document(cls, task_doc: dict[str, Any]) -> "MLIPCalculationDoc":
        """The stored form of an MLIP Maker's task document, given as its JSON dict."""
        inp, out = task_doc["input"], task_doc["output"]
        structure, final = _pymatgen(inp["mol_or_struct"]), _pymatgen(out["mol_or_struct"])
        static = inp["steps"] <= 1  # atomate2: at most one step is a single point
        flags = structure.site_properties.get("selective_dynamics") or []
        forces = out.get("forces") or []
        stress = out.get("stress")
        trajectory = out.get("ionic_steps")
        return cls(
            provenance=task_doc["provenance"],
            label=task_doc.get("label"),
            input=CalculationInput(
                structure=structure,
                calc_type=CalcType.STATIC if static else CalcType.RELAX,
                fmax=None if static else (inp.get("relax_kwargs") or {}).get("fmax"),
                max_steps=None if static else inp["steps"],
                relax_cell=bool(inp.get("relax_cell")) and not static,
                optimizer=None if static else (inp.get("optimizer_kwargs") or {}).get("optimizer"),
                # VASP's convention, as pymatgen's ASE adaptor writes FixAtoms
                fixed_indices=[i for i, f in enumerate(flags) if f is not None and not any(f)],
            ),
            output=CalculationOutput(
                structure=final,
                energy=out["energy"],
                energy_per_atom=out["energy_per_atom"],
                forces=[tuple(f) for f in forces],
                stress=None if stress is None else [
                    -stress[i][j] / KBAR_PER_EV_PER_A3
                    for i, j in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
                ],
                max_force=max((sum(x * x for x in f) ** 0.5 for f in forces), default=0.0),
                n_steps=out.get("n_steps") or 0,
                converged=bool(task_doc.get("is_force_converged")),
                energy_downhill=static or bool(task_doc.get("energy_downhill")),
            ),
            trajectory=trajectory if isinstance(trajectory, dict) else None,  # blob reference
            tags=task_doc.get("tags") or [],
        )


def _pymatgen(d: dict[str, Any]) -> Structure | Molecule:
    return (Molecule if d["@class"] == "Molecule" else Structure).from_dict(d)
