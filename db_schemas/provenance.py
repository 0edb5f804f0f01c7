"""Provenance: what made a number, so that it can always be traced and reproduced.

Every stored result carries one :class:`Provenance`: the model and task
(functional) that produced it, the checkpoint's hash, the package versions,
the adsorption-energy reference scheme with its values, when and by which
jobflow job it was made.
"""

from datetime import datetime, timezone
from enum import Enum
from importlib.metadata import PackageNotFoundError, version

from pydantic import BaseModel, Field

from .errors import SchemaError

# the packages whose versions decide a result (read from metadata: nothing is imported)
TRACKED_PACKAGES = ("omni-flows", "torch", "e3nn", "ase", "pymatgen", "jobflow", "atomate2", "sevenn")


class MissingReferenceError(SchemaError, KeyError):
    """An adsorption energy needs a reference energy that the scheme does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def utcnow() -> datetime:
    """Timezone-aware now; MongoDB stores datetimes in UTC."""
    return datetime.now(timezone.utc)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names``; packages that are not installed are left out."""
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


class ReferenceScheme(str, Enum):
    """How adsorption energies are referenced.

    ``gas_molecules``: E_ads = E(slab+ads) - E(slab) - sum_i n_i E(gas_i), energies
    of relaxed gas-phase molecules (e.g. H2O, H2, CO).
    ``atomic``: E_ads = E(slab+ads) - E(slab) - sum_el n_el E_el, per-element
    references (the OC20 convention, e.g. E_O = E(H2O) - E(H2)).
    """

    GAS_MOLECULES = "gas_molecules"
    ATOMIC = "atomic"


class EnergyReference(BaseModel):
    """The reference scheme of adsorption energies and the values used, in eV."""

    scheme: ReferenceScheme
    energies: dict[str, float] = Field(
        description="eV; molecule formula -> total energy (gas_molecules) "
        "or element -> energy per atom (atomic)"
    )
    source: str = Field("", description="where the values come from")

    def energy_of(self, counts: dict[str, float]) -> float:
        """Sum of ``n * E_ref`` over ``counts`` (molecules or elements, by scheme), in eV."""
        missing = sorted(set(counts) - set(self.energies))
        if missing:
            raise MissingReferenceError(
                f"no {self.scheme.value} reference energy for {', '.join(missing)}; "
                f"known: {', '.join(sorted(self.energies)) or 'none'}. Add them to the reference."
            )
        return sum(n * self.energies[name] for name, n in counts.items())


class Provenance(BaseModel):
    """What produced a result."""

    model_name: str = Field(description="MLIP name, e.g. '7net-mf-0'")
    task: str = Field(description="task (functional / data domain) of the model, e.g. 'PBE'")
    checkpoint_hash: str = Field(description="sha256 of the checkpoint file")
    package_versions: dict[str, str] = Field(default_factory=package_versions)
    energy_reference: EnergyReference | None = Field(
        None, description="reference scheme and values of adsorption energies, if any"
    )
    jobflow_uuid: str | None = Field(None, description="uuid of the jobflow job that made it")
    created_at: datetime = Field(default_factory=utcnow)
