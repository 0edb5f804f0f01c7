"""The provenance of a workflow result: which model, task and checkpoint made it."""

from omni_flows.db_schemas import EnergyReference, Provenance

from .relax import get_calculator


def provenance_of(
    model: str,
    task: str,
    device: str = "auto",
    energy_reference: EnergyReference | None = None,
    backend: str = "e3nn",
) -> Provenance:
    calc = get_calculator(model, task, device, backend)
    return Provenance(
        model_name=model,
        task=task,
        checkpoint_hash=calc.checkpoint_hash,
        energy_reference=energy_reference,
    )
