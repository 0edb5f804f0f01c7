"""Electrochemical reaction networks (``reactions.yaml``) and the free energies of their species.

Every species' free energy is expressed relative to the basis H2(g), H2O(l), N2(g),
CO(g) (the gas references of E_ads, ``references.BASIS``; water as liquid, i.e. as gas
at 0.035 bar, see :mod:`.thermochemistry`):

- an adsorbate X*: its adsorption free energy from the screen, plus, when E_ads is
  referenced to X's own gas molecule (CO2, NH3, ...), that molecule's formation free
  energy from the basis;
- a gas or liquid: experimental formation free energies from the basis, 298.15 K,
  standard states. O2 is placed at +4.92 eV above 2 H2O(l) - 2 H2, from the formation
  free energy of liquid water (2 x 2.46 eV), as Nørskov et al. (J. Phys. Chem. B 108,
  17886 (2004)) do to avoid DFT's error on the O2 bond; no correction is applied to
  the other gases (CO2's known GGA error is left in);
- a proton-electron pair at pH 0: 1/2 H2 - eU (the computational hydrogen electrode).
"""

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml
from ase import units
from pymatgen.core import Composition

from ..errors import WorkflowInputError
from .references import BASIS, gas_coefficients

PAIR = "H+ + e-"
SITE = "*"
_KJ_MOL = units.kJ / units.mol  # eV per kJ/mol

# eV relative to the basis at 298.15 K; formation free energies (kJ/mol) from NIST-JANAF:
# H2O(l) -237.14, CO(g) -137.17, CO2(g) -394.36, NH3(g) -16.41
GAS_FREE_ENERGIES: dict[str, float] = {
    "H2": 0.0,
    "H2O": 0.0,
    "N2": 0.0,
    "CO": 0.0,
    "O2": 4.92,  # 2 H2O(l) -> O2 + 2 H2, Nørskov et al. 2004
    "CO2": (-394.36 - (-137.17 - 237.14)) * _KJ_MOL,  # CO2 = CO + H2O - H2: -0.208 eV
    "NH3": -16.41 * _KJ_MOL,  # NH3 = 1/2 N2 + 3/2 H2: -0.170 eV
}
assert set(BASIS) <= set(GAS_FREE_ENERGIES)


@dataclass(frozen=True)
class Species:
    """One entry of a step: ``name`` without its phase mark; ``phase`` is 'ads', 'g', 'l',
    'site' or 'pair'."""

    name: str
    phase: str

    @classmethod
    def parse(cls, text: str) -> "Species":
        text = text.strip()
        if text == PAIR:
            return cls(PAIR, "pair")
        if text == SITE:
            return cls(SITE, "site")
        if text.endswith("*"):
            return cls(text[:-1], "ads")
        for phase in ("g", "l"):
            if text.endswith(f"({phase})"):
                return cls(text[: -len(phase) - 2], phase)
        raise WorkflowInputError(f"species {text!r}: write X*, X(g), X(l), * or '{PAIR}'")

    @property
    def label(self) -> str:
        return {"ads": f"{self.name}*", "g": f"{self.name}(g)", "l": f"{self.name}(l)"}.get(
            self.phase, self.name)

    def composition(self) -> Composition:
        if self.phase == "site":
            return Composition()
        return Composition("H") if self.phase == "pair" else Composition(self.name)


@dataclass(frozen=True)
class Step:
    reactants: tuple[Species, ...]
    products: tuple[Species, ...]

    @property
    def electrons(self) -> int:
        """Proton-electron pairs consumed (> 0: reduction) or released (< 0: oxidation)."""
        return sum(s.phase == "pair" for s in self.reactants) - \
            sum(s.phase == "pair" for s in self.products)

    @property
    def label(self) -> str:
        def side(species):
            return " + ".join(s.label for s in species)
        return f"{side(self.reactants)} -> {side(self.products)}"

    def check_balance(self) -> None:
        left = sum((s.composition() for s in self.reactants), Composition())
        right = sum((s.composition() for s in self.products), Composition())
        sites = [sum(s.phase in ("site", "ads") for s in side)
                 for side in (self.reactants, self.products)]
        if left != right or sites[0] != sites[1]:
            raise WorkflowInputError(f"step {self.label} does not balance")


@dataclass(frozen=True)
class ReactionNetwork:
    """A named sequence of steps, from the initial state to the final one."""

    name: str
    title: str
    source: str
    descriptor: str
    steps: tuple[Step, ...]

    @property
    def intermediates(self) -> list[str]:
        """Adsorbates of the network, in order of appearance (names without '*')."""
        seen = []
        for step in self.steps:
            for s in step.reactants + step.products:
                if s.phase == "ads" and s.name not in seen:
                    seen.append(s.name)
        return seen

    @property
    def electrons(self) -> int:
        return sum(step.electrons for step in self.steps)

    @property
    def is_reduction(self) -> bool:
        return self.electrons > 0

    def equilibrium_potential(self) -> float:
        """U0 vs RHE of the overall reaction, from the gas and liquid free energies (V):
        the adsorbates cancel over the whole network."""
        total = 0.0
        for step in self.steps:
            total += sum(gas_free_energy(s) for s in step.products if s.phase in ("g", "l"))
            total -= sum(gas_free_energy(s) for s in step.reactants if s.phase in ("g", "l"))
        return -total / self.electrons


def gas_free_energy(species: Species) -> float:
    """Free energy of a gas or liquid relative to the basis (eV)."""
    if species.name not in GAS_FREE_ENERGIES:
        raise WorkflowInputError(
            f"no formation free energy for {species.label}; known: {', '.join(GAS_FREE_ENERGIES)}")
    return GAS_FREE_ENERGIES[species.name]


def adsorbate_offset(name: str) -> float:
    """What to add to an adsorption free energy to put X* on the basis scale: the formation
    free energy of the gas molecules its E_ads is referenced to (0 for basis molecules)."""
    return sum(n * gas_free_energy(Species(gas, "g"))
               for gas, n in gas_coefficients(name).items())


@cache
def reaction_networks() -> dict[str, ReactionNetwork]:
    """Every network of ``reactions.yaml``, checked for balance."""
    text = resources.files("omni_flows.workflows.thermo").joinpath("reactions.yaml").read_text()
    networks = {}
    for name, spec in yaml.safe_load(text).items():
        steps = tuple(Step(tuple(map(Species.parse, s["reactants"])),
                           tuple(map(Species.parse, s["products"]))) for s in spec["steps"])
        for step in steps:
            step.check_balance()
        networks[name] = ReactionNetwork(name, spec["title"], spec["source"],
                                         spec["descriptor"], steps)
    return networks


def get_reaction(name: str) -> ReactionNetwork:
    networks = reaction_networks()
    if name.lower() not in networks:
        raise WorkflowInputError(f"unknown reaction {name!r}: use one of {', '.join(networks)}")
    return networks[name.lower()]
