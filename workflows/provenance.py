"""The provenance of a workflow result: the settings that made it, read without a model.

The checkpoint hash comes from the settings (read from the checkpoint's header
when they were made), so provenance needs neither torch nor the weights.
"""

from omni_flows.db_schemas import EnergyReference, Provenance

from .settings import MLIPSettings


def provenance_of(
    mlip: MLIPSettings,
    settings: dict | None = None,
    energy_reference: EnergyReference | None = None,
    device: str | None = None,
) -> Provenance:
    """``settings``: everything that decided the number (hashed into the settings id);
    ``device``: the one that ran (resolved from "auto")."""
    return Provenance(
        model_name=mlip.model,
        task=mlip.task,
        checkpoint_hash=mlip.checkpoint_hash,
        settings=settings if settings is not None else {"mlip": mlip.identity()},
        backend=mlip.backend,
        device=device or mlip.device,
        optimizer=mlip.optimizer,
        energy_reference=energy_reference,
    )
