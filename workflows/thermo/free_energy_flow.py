"""The best placement with its free energy (``--free-energy``): one job per (slab, adsorbate).

It chooses the best valid placement as :func:`BestAdsorptionDoc.from_placements`
does, vibrates the adsorbate's atoms of that relaxed structure (slab fixed) and the
gas references of its E_ads (all in batched graphs, :mod:`.vibrations`; each gas
molecule once per screen, in a job of its own that every pair reads), and stores

    zpe, free_energy_correction = F(adsorbate) - sum_i n_i G(gas_i),
    adsorption_free_energy = adsorption_energy + free_energy_correction

at the temperature and pressures of :class:`.thermochemistry.FreeEnergySettings`.
Those settings are part of the result's identity: the document's settings id is
that of the surface settings plus ``free_energy``, so a screen with and one
without free energies (or at another T) are different documents, side by side.
"""

from dataclasses import asdict

from jobflow import job
from omni_flows.db_schemas import BestAdsorptionDoc, MLIPCalculationDoc, ReferenceScheme
from omni_flows.db_schemas.identity import settings_id as make_settings_id
from pymatgen.core import Composition

from ..structures.adsorbates import Adsorbate
from ..structures.geometry import to_atoms
from .references import adsorbate_references, gas_coefficients
from ..relax import get_calculator
from ..settings import MLIPSettings
from .thermochemistry import (
    FreeEnergySettings,
    Thermo,
    adsorbate_free_energy,
    free_energy_correction,
    gas_free_energy,
)


def free_energy_settings(settings: dict, free_energy: FreeEnergySettings) -> dict:
    """The settings of a free-energy result: the surface screen's plus ``free_energy``."""
    return {**settings, "free_energy": free_energy.key()}


def gas_counts(adsorbate: Adsorbate, scheme: ReferenceScheme) -> dict[str, float]:
    """``{gas molecule: n}`` the free-energy correction subtracts: the E_ads references under
    the gas-molecule scheme; under OC20's per-element scheme the same basis molecules the
    element energies come from (E_O = E(H2O) - E(H2), ...)."""
    if ReferenceScheme(scheme) == ReferenceScheme.GAS_MOLECULES:
        return adsorbate_references(adsorbate, scheme)
    return gas_coefficients(Composition("".join(adsorbate.symbols)).formula.replace(" ", ""))


@job
def gas_thermochemistry(gas_doc: MLIPCalculationDoc, name: str, mlip: MLIPSettings,
                        free_energy: FreeEnergySettings) -> dict:
    """Vibrate one relaxed gas molecule (all atoms): its ideal-gas terms at the settings' T
    and p, as the fields of a :class:`.thermochemistry.Thermo`. One job per molecule and
    screen, read by the free energies of every (slab, adsorbate)."""
    thermo = gas_free_energy(name, to_atoms(gas_doc.output.structure), get_calculator(mlip),
                             free_energy)
    return asdict(thermo)


@job
def best_placement_free_energy(
    placements: list,
    adsorbate: Adsorbate,
    gas_thermo: dict,
    scheme: ReferenceScheme,
    mlip: MLIPSettings,
    free_energy: FreeEnergySettings,
    settings: dict,
) -> BestAdsorptionDoc:
    """The valid placement of lowest E_ads with zpe, free-energy correction and adsorption
    free energy (all None when no placement is valid); ``gas_thermo``: the outputs of
    :func:`gas_thermochemistry` by molecule."""
    best = BestAdsorptionDoc.from_placements(placements)
    settings = free_energy_settings(settings, free_energy)
    update = {"settings_id": make_settings_id(settings),
              "provenance": best.provenance.model_copy(update={"settings": settings})}
    if best.adsorption_energy is not None:
        calc = get_calculator(mlip)
        atoms = to_atoms(best.final_structure)
        # the adsorbates' atoms follow the slab's; with several per cell (coverage) all
        # vibrate together and the correction is per adsorbate
        copies = best.coverage
        n = copies * len(adsorbate.symbols)
        thermo = adsorbate_free_energy(atoms, range(len(atoms) - n, len(atoms)), calc,
                                       free_energy)
        counts = gas_counts(adsorbate, scheme)
        gases = {name: Thermo(**{**gas_thermo[name], "frequencies": tuple(
            gas_thermo[name]["frequencies"])}) for name in counts}
        correction = free_energy_correction({k: copies * v for k, v in counts.items()},
                                            thermo, gases).per_adsorbate(copies)
        update.update(zpe=correction.zpe,
                      free_energy_correction=correction.free_energy_correction,
                      adsorption_free_energy=correction.adsorption_free_energy(
                          best.adsorption_energy),
                      n_imaginary=correction.n_imaginary,
                      # the correction is the task's own, the same for every member: the
                      # members' free energies spread as their E_ads do
                      adsorption_free_energy_std=best.adsorption_energy_std)
    return best.model_copy(update=update)
