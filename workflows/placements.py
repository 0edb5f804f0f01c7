"""Adsorbate placements on a slab: pymatgen's AdsorbateSiteFinder sites plus random ones.

The binding atom goes down, at the height where its closest surface atom is one
covalent bond (sum of covalent radii) away; molecules get a random turn about
the surface normal. Everything is seeded, so the same input gives the same
placements (a re-run recomputes nothing).
"""

from dataclasses import dataclass

import numpy as np
from ase.data import atomic_numbers, covalent_radii
from monty.json import MSONable
from pymatgen.analysis.adsorption import AdsorbateSiteFinder
from pymatgen.core import Structure

from .adsorbates import Adsorbate
from .errors import WorkflowInputError

SITE_TYPES = ("hollow", "ontop", "bridge")  # round-robin order: the usual minima first
# random placements after the heuristic sites (the Maker's and the CLI's default)
DEFAULT_RANDOM = 2
DEFAULT_SEED = 0
# A: the same symmetry and distance reductions as pymatgen's defaults
SYMM_REDUCE = 1e-2
NEAR_REDUCE = 1e-2


@dataclass(frozen=True)
class PlacementSettings(MSONable):
    """How adsorbates are placed: ``n_random`` random spots after the distinct heuristic
    sites, at most ``max_placements`` in all (None: no cap), seeded."""

    n_random: int = DEFAULT_RANDOM
    max_placements: int | None = None
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.n_random < 0:
            raise WorkflowInputError(f"--n-random must be 0 or more, not {self.n_random}")
        if self.max_placements is not None and self.max_placements < 1:
            raise WorkflowInputError(
                f"--max-placements must be at least 1, not {self.max_placements} (leave it "
                "out for every heuristic site plus the random ones)")
        if self.seed < 0:
            raise WorkflowInputError(f"--seed must be 0 or more, not {self.seed}")


@dataclass
class Placement:
    """One starting geometry: slab + adsorbate (adsorbate atoms last)."""

    index: int
    site_type: str
    site_position: tuple[float, float, float]
    structure: Structure
    fixed: list[int]
    adsorbate_indices: list[int]


def _radius(symbol: str) -> float:
    return float(covalent_radii[atomic_numbers[symbol]])


def _images(structure: Structure) -> np.ndarray:
    """Cartesian positions of all atoms and their 8 lateral periodic images, (9N, 3)."""
    a, b = structure.lattice.matrix[:2]
    shifts = [i * a + j * b for i in (-1, 0, 1) for j in (-1, 0, 1)]
    return np.concatenate([structure.cart_coords + s for s in shifts])


def binding_height(structure: Structure, xy: np.ndarray, symbol: str) -> float:
    """The z where an atom at ``xy`` is one covalent bond from its closest slab atom."""
    pos = _images(structure)
    radii = np.tile([_radius(s.specie.symbol) for s in structure], 9) + _radius(symbol)
    rxy = np.linalg.norm(pos[:, :2] - xy[:2], axis=1)
    near = rxy < radii
    if not near.any():
        return float(structure.cart_coords[:, 2].max() + _radius(symbol))
    return float(np.max(pos[near, 2] + np.sqrt(radii[near] ** 2 - rxy[near] ** 2)))


def _rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def place(
    slab: Structure, fixed: list[int], adsorbate: Adsorbate, xy: np.ndarray, angle: float
) -> tuple[Structure, list[int]]:
    """Slab + adsorbate with its binding atom over ``xy``, bound; adsorbate atoms appended."""
    binder = adsorbate.symbols[adsorbate.binding_index]
    z = binding_height(slab, xy, binder)
    local = adsorbate.oriented() @ _rotation_z(angle).T
    positions = local + np.array([xy[0], xy[1], z])
    # lift the whole molecule if another of its atoms comes too close to the slab
    pos = _images(slab)
    radii = np.tile([_radius(s.specie.symbol) for s in slab], 9)
    for _ in range(20):
        d = np.linalg.norm(pos[None] - positions[:, None], axis=2)
        limit = 0.8 * (radii[None] + np.array([_radius(s) for s in adsorbate.symbols])[:, None])
        limit[adsorbate.binding_index] = 0.0
        if (d >= limit).all():
            break
        positions[:, 2] += 0.2
    structure = slab.copy()
    for symbol, p in zip(adsorbate.symbols, positions):
        structure.append(symbol, p, coords_are_cartesian=True)
    n = len(slab)
    return structure, list(range(n, n + len(adsorbate.symbols)))


def heuristic_sites(slab: Structure) -> list[tuple[str, np.ndarray]]:
    """Symmetry-distinct ontop, bridge and hollow sites, interleaved hollow/ontop/bridge."""
    finder = AdsorbateSiteFinder(slab)
    sites = finder.find_adsorption_sites(
        distance=0.0, symm_reduce=SYMM_REDUCE, near_reduce=NEAR_REDUCE,
        positions=list(SITE_TYPES),
    )
    ordered = []
    for rank in range(max(len(sites.get(t, [])) for t in SITE_TYPES)):
        for kind in SITE_TYPES:
            if rank < len(sites.get(kind, [])):
                ordered.append((kind, np.asarray(sites[kind][rank], float)))
    return ordered


def make_placements(
    slab: Structure,
    fixed: list[int],
    adsorbate: Adsorbate,
    settings: PlacementSettings = PlacementSettings(),
) -> list[Placement]:
    """Heuristic placements (one per distinct site) then ``n_random`` random ones."""
    rng = np.random.default_rng(settings.seed)
    spots = heuristic_sites(slab)
    a, b = slab.lattice.matrix[:2]
    for _ in range(settings.n_random):
        u, v = rng.random(2)
        spots.append(("random", u * a + v * b))
    if settings.max_placements is not None:
        spots = spots[:settings.max_placements]
    placements = []
    for index, (kind, point) in enumerate(spots):
        angle = float(rng.uniform(0, 2 * np.pi)) if len(adsorbate.symbols) > 1 else 0.0
        structure, ads_idx = place(slab, fixed, adsorbate, point, angle)
        site = structure.cart_coords[ads_idx[adsorbate.binding_index]]
        placements.append(
            Placement(index, kind, tuple(float(x) for x in site), structure, list(fixed), ads_idx)
        )
    return placements
