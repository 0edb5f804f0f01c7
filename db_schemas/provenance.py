"""Provenance: what made a number, so that it can always be traced and reproduced.

Every stored result carries one :class:`Provenance`: the model and task
(functional) that produced it, the checkpoint's hash, the package versions,
the adsorption-energy reference scheme with its values, when and by which
jobflow job it was made.

The model, task, checkpoint and optimizer are stored once: in ``settings`` (hashed into
the settings id), under ``mlip`` for a workflow's result, at the top for a benchmark's.
``Provenance.model_name`` and its kin read them from there; they are stored beside
``settings`` only where ``settings`` does not hold them (a DFT code's provenance, and
documents written before 2026-12); ``legacy.identity_of`` reads a stored dict.
"""

from datetime import datetime, timezone
from enum import Enum
from typing import Any
from importlib.metadata import PackageNotFoundError, version

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from .errors import SchemaError
from .legacy import IN_SETTINGS, SCHEME_NAMES, in_settings

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
    of relaxed gas-phase molecules: the adsorbate's own molecule when it is a stable
    gas or a molecule the user gave as a file, else a combination of H2, H2O, N2, CO
    (e.g. O = H2O - H2, OH = H2O - 1/2 H2).
    ``oc20_elemental``: E_ads = E(slab+ads) - E(slab) - sum_el n_el E_el with OC20's
    per-element energies made from the same four molecules (E_H = 1/2 E(H2),
    E_O = E(H2O) - E(H2), E_N = 1/2 E(N2), E_C = E(CO) - E_O). Not isolated atoms: for
    H, C, N, O adsorbates the numbers equal the gas-molecule ones. Stored documents
    of earlier versions call it ``atomic``, which still reads as this scheme.
    """

    GAS_MOLECULES = "gas_molecules"
    OC20_ELEMENTAL = "oc20_elemental"

    @classmethod
    def _missing_(cls, value):
        return cls(SCHEME_NAMES[value]) if value in SCHEME_NAMES else None  # an earlier name


class EnergyReference(BaseModel):
    """The reference scheme of adsorption energies and the values used, in eV."""

    scheme: ReferenceScheme
    energies: dict[str, float] = Field(
        description="eV; molecule -> total energy of the relaxed molecule (gas_molecules) "
        "or element -> OC20 per-element energy from H2, H2O, N2, CO (oc20_elemental)"
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
    """What produced a result. ``model_name``, ``task``, ``checkpoint_hash`` and
    ``optimizer`` are stored in ``settings`` where it holds them (IN_SETTINGS), not again."""

    # in the JSON Schema too, they may be absent: read from settings where they hold them
    model_config = ConfigDict(json_schema_extra=lambda schema, _: schema.update(required=[
        name for name in schema.get("required", []) if name not in IN_SETTINGS]))

    model_name: str = Field(description="MLIP name, e.g. '7net-mf-0'")
    task: str | None = Field(
        None, description="task (functional / data domain) of the model, e.g. 'PBE'; None for "
        "a single-task model")
    checkpoint_hash: str = Field(description="sha256 of the checkpoint file; '' for a DFT "
                                 "code, which has none (see dft_provenance)")
    package_versions: dict[str, str] = Field(default_factory=package_versions)
    energy_reference: EnergyReference | None = Field(
        None, description="reference scheme and values of adsorption energies, if any"
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="everything that decides the number (model, task, checkpoint, dtype, "
        "optimizer, fmax, steps, slab, placements, reference), hashed into settings_id; "
        "query any of them as provenance.settings.<name>",
    )
    backend: str | None = Field(None, description="kernel backend that ran (same numbers)")
    device: str | None = Field(None, description="device that ran, e.g. 'cpu', 'cuda:0'")
    optimizer: str | None = Field(None, description="relaxation optimizer that ran")
    jobflow_uuid: str | None = Field(None, description="uuid of the jobflow job that made it")
    created_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="before")
    @classmethod
    def _identity_from_settings(cls, data: Any) -> Any:
        """A field stored once, in settings, reads from there."""
        if isinstance(data, dict):
            found = {field: value for field, name in IN_SETTINGS.items() if field not in data
                     for held, value in [in_settings(data.get("settings"), name)] if held}
            data = {**data, **found} if found else data
        return data

    @model_serializer(mode="wrap")
    def _stored_once(self, handler):
        """Stored without the fields that settings hold with the same value."""
        data = handler(self)
        for field, name in IN_SETTINGS.items():
            held, value = in_settings(self.settings, name)
            if held and value == getattr(self, field):
                data.pop(field, None)
        return data


def dft_provenance(code: str, functional: str, settings: dict[str, Any],
                   versions: dict[str, str],
                   energy_reference: EnergyReference | None = None) -> Provenance:
    """What produced a DFT number: the code where an MLIP result names its model
    (``model_name``, e.g. 'GPAW'), the functional as its task, no checkpoint (``''``: a
    DFT code has none; its versions are in ``package_versions``) and every setting
    (hashed into the document's settings id)."""
    return Provenance(model_name=code, task=functional, checkpoint_hash="",
                      package_versions={**package_versions(), **versions}, settings=settings,
                      energy_reference=energy_reference)
