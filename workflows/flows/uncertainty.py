"""The committee's error bar on a surface screen's adsorption energies (issue 27).

With ``uncertainty`` on, the adsorption-energy job of a (slab, adsorbate) evaluates every
member of the task's committee (:mod:`omni_flows.model.committee`) at the final relaxed
geometries of its placements, its clean slab and its gas molecules, in one batched
energy-only pass, and takes each member's own adsorption energy with the one formula
(:func:`omni_flows.db_schemas.adsorption_energy`, element-wise). Gas references and
clean slab come from the same member, so what a member shares between them cancels.
sigma = the committee's scale x the members' std (:func:`spread`).

Relaxations are untouched: they are keyed without ``uncertainty``, so turning it on
relaxes nothing again and adds one pass per pair (about 1.05x a screen's model time,
docs/uncertainty.md). The setting is part of the adsorption energies' settings only
when on: results screened before it existed keep their settings ids.
"""

import numpy as np
from omni_flows.db_schemas import ReferenceScheme, adsorption_energy
from omni_flows.db_schemas.adsorption import PlacementRelaxation
from omni_flows.model.committee import committee_energies, spread
from omni_flows.model.header import checkpoint_header, out_of_domain

from ..errors import WorkflowInputError
from ..relax import get_calculator
from ..settings import MLIPSettings
from ..structures.geometry import to_atoms
from ..thermo.references import adsorbate_references, energy_reference


def resolve_uncertainty(mlip: MLIPSettings, asked: bool | None) -> bool:
    """``asked``, or where None: on exactly when the model's task has a committee. Asking
    for it on a task without one is refused here, before any job."""
    committees = checkpoint_header(mlip.model).committees
    if asked is None:
        return mlip.task in committees
    if asked and mlip.task not in committees:
        have = ", ".join(sorted(committees)) or "none"
        raise WorkflowInputError(
            f"--uncertainty: model {mlip.model} has no committee for task {mlip.task!r} "
            f"(tasks with one: {have}); screen with --no-uncertainty or a model that has one")
    return bool(asked)


def domain_flag(mlip: MLIPSettings, elements) -> list[str]:
    """The ``elements`` the task was never trained on; empty also where the checkpoint does
    not record its training elements (nothing can be said then)."""
    return out_of_domain(sorted(set(elements)), mlip.model, mlip.task) or []


def member_adsorption_energies(relaxations: list[PlacementRelaxation], slab_structure,
                               gas_structures: dict, adsorbate, scheme: ReferenceScheme,
                               mlip: MLIPSettings) -> tuple[np.ndarray, np.ndarray, float]:
    """Each member's E_ads of each relaxation, shape (placements, K); sigma of each
    (scale x std over the members); the committee's scale. ``gas_structures``: the relaxed
    reference molecules by name, as the screen's reference uses them."""
    model = get_calculator(mlip).model
    committee = model.committee(mlip.task)
    names = list(gas_structures)
    structures = [to_atoms(r.final_structure) for r in relaxations] + [to_atoms(slab_structure)]
    structures += [to_atoms(gas_structures[name]) for name in names]
    energies = committee_energies(model, structures, mlip.task)  # (n + 1 + gases, K), one pass
    n = len(relaxations)
    counts = adsorbate_references(adsorbate, scheme)
    references = np.array([  # E_ref of one adsorbate, member by member
        energy_reference(dict(zip(names, energies[n + 1:, k].tolist())), scheme, "member")
        .energy_of(counts) for k in range(committee.size)])
    copies = np.array([[r.coverage] for r in relaxations])
    members = adsorption_energy(energies[:n], energies[n], references, copies)
    return members, spread(members, committee.scale), committee.scale

