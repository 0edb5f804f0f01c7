"""Adsorbate placements on a slab: pymatgen's AdsorbateSiteFinder sites plus random ones.

The binding atom goes down, at the height where its closest surface atom is one
covalent bond (sum of covalent radii) away; molecules get a random turn about
the surface normal. Everything is seeded, so the same input gives the same
placements (a re-run recomputes nothing).

Numbers used (AdsorbML, Lan et al., npj Comput. Mater. 9, 172 (2023), places
heuristic sites plus random ones; ours): every symmetry-distinct ontop, bridge
and hollow site of the top layer (pymatgen, ``SYMM_REDUCE``), interleaved
hollow/ontop/bridge, then ``n_random`` (default 2) uniformly random spots in the
cell, capped at ``max_placements``. A molecule gets a uniformly random turn about the
surface normal and its axis tipped to a uniformly random direction within ``tilt``
(default 20 degrees, AdsorbML's cone; 0: upright): an upright molecule over a
high-symmetry site feels no lateral force and can stay on a saddle. Measured
(benchmarks/results/placement_convergence*.txt, best of k = 4 vs 2k = 8 placements):
upright, OH on Pt(111) ends at 1.260 eV (fcc) with 4 and at 0.887 eV (bridge) with 8;
tipped, at 0.893 and 0.890 eV (bridge); CO and the other systems within 0.003 eV.

Orientations (``orientations``, default all three): a molecule that stands on its binding
atom (OH, OOH, H2O, CO, NH3; not one centred on it, CH3, CO2) starts ``up`` (its axis
along the normal, tipped within ``tilt``) over every site, then ``flat`` (turned 90
degrees: its axis, and its plane if it has one, parallel to the surface) over every
site, then ``h-down`` (an H-bearing molecule with its H towards the surface: the
heavy-atom axis flat and the H below it, OOH; or the H straight below the binding atom,
OH, H2O) over every site; random spots take the orientations in turn. Measured on OOH*
(7net-mf-0/PBE, 2x2, benchmarks/results/placement_convergence_ooh.txt): the upright
starts alone stop 0.27 eV (Pt(111)), 0.05 eV (Pt3Ni(111)) and 0.003 eV (Pd(111)) above
the best of all starts, an OOH* ontop with its H towards a Pt; with them the best E_ads
changes by at most 0.009 eV from k to 2k placements. Upright
starts come first, so a screen capped at the number of sites places what it did before
these starts existed (its settings id differs: ``orientations`` is part of it).

Multidentate adsorbates (``Adsorbate.binders``: OC20's ``*N*NH``, ``*CH2*O``) lie
with every binding atom down: the first binding atom sits over the site, the
axis to the second points to a neighbouring site (every site of the cell at the
distance closest to the binding atoms' separation, one placement per direction),
the molecule tilts about that axis until each binding atom is at its own bonding
height, the rest of the molecule above. Random spots get a random direction.

Coverage (``coverage`` adsorbates per cell, default 1): each placement puts the adsorbate
on its spot and on ``coverage - 1`` copies of that spot, images of it under the slab's
lattice translations (the tiling of its primitive surface cell), chosen farthest-first so
the adsorbates sit as far apart as the cell allows (2 per 3x3 fcc(111) cell: 2/9 ML). A cell
with fewer translations than ``coverage`` is refused (give a larger ``--supercell``).

Placements equivalent under a symmetry operation of the slab that keeps the
surface normal (spglib through pymatgen, ``SYMPREC``) are one: the later ones
are dropped before the cap (``DEDUPE_TOLERANCE``). A monodentate adsorbate's
placements are those it had before multidentate placement and deduplication
existed, less any duplicate. Measured (benchmarks/results/placement_dedupe.txt): the
default O and CO placements on Pt(111), (100), (211) lose none (pymatgen's sites are
already distinct); with 50 random spots 20 of 54 go on Pt(111), 21-22 of 53 on Pt(100),
1 of 62 on Pt(211) (a 3x1 cell: translations only); *N*NH keeps 10 of 22 on Pt(111).
"""

from dataclasses import asdict, dataclass

import numpy as np
from ase.data import atomic_numbers, covalent_radii
from monty.json import MSONable
from pymatgen.analysis.adsorption import AdsorbateSiteFinder
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from scipy.optimize import linear_sum_assignment

from .adsorbates import Adsorbate
from ..errors import WorkflowInputError
from .geometry import lateral_images, lateral_shifts

SITE_TYPES = ("hollow", "ontop", "bridge")  # round-robin order: the usual minima first
# random placements after the heuristic sites (the Maker's and the CLI's default)
DEFAULT_RANDOM = 2
# degrees: molecules tipped at random within this cone of the normal (AdsorbML's pi/9)
DEFAULT_TILT = 20.0
DEFAULT_SEED = 0
# A: the same symmetry and distance reductions as pymatgen's defaults
SYMM_REDUCE = 1e-2
NEAR_REDUCE = 1e-2
# A: spglib's tolerance for the slab's symmetry operations (a relaxed slab keeps its symmetry
# to ~1e-3 A; 0.1 A finds it without merging distinct atoms, > 2 A apart in a metal)
SYMPREC = 0.1
# A: two placements are one when an operation takes every adsorbate atom of the later one
# within this distance of a like atom of the earlier one: far less than a relaxation moves
# atoms, so the two relax to the same minimum
DEDUPE_TOLERANCE = 0.1
# starts of a molecule standing on its binding atom, in the order they are placed
ORIENTATIONS = ("up", "flat", "h-down")
# A: a molecule whose centre is this close to its binding atom is centred on it (CH3, CO2):
# it has no axis to lay down or turn
CENTRED = 0.1
# A: partner sites of a multidentate adsorbate within this of the best-matching distance
PARTNER_TOLERANCE = 0.1
# A: lateral sites closer than this to the anchor are the anchor itself
MIN_PARTNER_DISTANCE = 0.3


@dataclass(frozen=True)
class PlacementSettings(MSONable):
    """How adsorbates are placed: ``n_random`` random spots after the distinct heuristic
    sites, at most ``max_placements`` in all (None: no cap), seeded; ``coverage``
    adsorbates per cell; a molecule's axis tipped at random within ``tilt`` degrees of
    the surface normal (0: upright, as before tilting existed); a standing molecule started
    in each of ``orientations`` (:data:`ORIENTATIONS`; ``("up",)``: as before they
    existed)."""

    n_random: int = DEFAULT_RANDOM
    max_placements: int | None = None
    seed: int = DEFAULT_SEED
    coverage: int = 1
    tilt: float = DEFAULT_TILT
    orientations: tuple[str, ...] = ORIENTATIONS

    def __post_init__(self) -> None:
        given = tuple(self.orientations)  # a list after a JSON round trip
        unknown = [o for o in given if o not in ORIENTATIONS]
        if unknown or not given:
            raise WorkflowInputError(
                f"orientations {list(given)}: give one or more of {', '.join(ORIENTATIONS)}")
        # one order, whatever the order given: the same starts are the same settings
        object.__setattr__(self, "orientations", tuple(o for o in ORIENTATIONS if o in given))
        if self.n_random < 0:
            raise WorkflowInputError(f"--n-random must be 0 or more, not {self.n_random}")
        if self.max_placements is not None and self.max_placements < 1:
            raise WorkflowInputError(
                f"--max-placements must be at least 1, not {self.max_placements} (leave it "
                "out for every heuristic site plus the random ones)")
        if self.seed < 0:
            raise WorkflowInputError(f"--seed must be 0 or more, not {self.seed}")
        if not 0.0 <= self.tilt <= 90.0:
            raise WorkflowInputError(f"--tilt is a cone half-angle in degrees, 0 to 90, not "
                                     f"{self.tilt} (AdsorbML's is 20)")
        if not isinstance(self.coverage, int) or self.coverage < 1:
            raise WorkflowInputError(f"--coverage is adsorbates per cell: a whole number of at "
                                     f"least 1, not {self.coverage}")

    def identity(self) -> dict:
        """What of these settings decides a result (one adsorbate per cell, upright
        molecules and upright starts only, the placements made before coverage, tilt and
        orientations existed, keep the settings id they had)."""
        out = asdict(self)
        out["orientations"] = list(self.orientations)
        for name, before in (("coverage", 1), ("tilt", 0.0), ("orientations", ["up"])):
            if out[name] == before:
                del out[name]
        return out


@dataclass
class Placement:
    """One starting geometry: slab + adsorbate (adsorbate atoms last; with several
    adsorbates per cell, copy after copy, the first over the placement's site)."""

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
    return lateral_images(structure.cart_coords, structure.lattice)


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


def starts(adsorbate: Adsorbate) -> tuple[str, ...]:
    """The orientations an adsorbate can start in: all of :data:`ORIENTATIONS` for a
    molecule standing on its binding atom (``h-down`` only with an H that does not bind),
    ``up`` alone for an atom, a multidentate adsorbate or a molecule centred on its binder."""
    local = adsorbate.oriented()
    if adsorbate.multidentate or len(local) == 1 or \
            np.linalg.norm(local.mean(axis=0)) < CENTRED:
        return ("up",)
    hydrogens = [i for i, s in enumerate(adsorbate.symbols)
                 if s == "H" and i != adsorbate.binding_index]
    return ORIENTATIONS if hydrogens else ("up", "flat")


def oriented_start(adsorbate: Adsorbate, orientation: str = "up") -> np.ndarray:
    """Positions of a monodentate adsorbate, binding atom at the origin, in ``orientation``
    (one of :func:`starts`): ``up`` is :meth:`Adsorbate.oriented`; ``flat`` turns it 90
    degrees (its centre along +x) and about that axis until its atoms spread in the xy
    plane; ``h-down`` points its H atoms at the surface: with other heavy atoms their
    axis along +x and the H centre below it (-z side), without, the H centre along -z."""
    local = adsorbate.oriented()
    if orientation == "up":
        return local
    x, z = np.array([1.0, 0, 0]), np.array([0, 0, 1.0])
    if orientation == "flat":
        local = local @ _rotation_about(np.array([0, 1.0, 0]), np.pi / 2).T  # +z -> +x
        _, _, vt = np.linalg.svd(local[:, 1:])  # widest direction in the yz plane
        return local @ _rotation_about(x, -np.arctan2(vt[0][1], vt[0][0])).T
    symbols, binder = adsorbate.symbols, adsorbate.binding_index
    hydrogens = [i for i, s in enumerate(symbols) if s == "H" and i != binder]
    heavy = [i for i, s in enumerate(symbols) if s != "H" and i != binder]
    if not heavy:
        return local @ _onto(local[hydrogens].mean(axis=0), -z).T
    local = local @ _onto(local[heavy].mean(axis=0), x).T
    y_h, z_h = local[hydrogens].mean(axis=0)[1:]
    return local @ _rotation_about(x, -np.pi / 2 - np.arctan2(z_h, y_h)).T


def _onto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A rotation taking the direction of ``a`` onto unit ``b``."""
    a = a / np.linalg.norm(a)
    axis = np.cross(a, b)
    if np.linalg.norm(axis) < 1e-9:  # parallel or antiparallel
        if np.dot(a, b) > 0:
            return np.eye(3)
        axis = np.cross(a, [1.0, 0, 0] if abs(a[0]) < 0.9 else [0, 1.0, 0])
    axis /= np.linalg.norm(axis)
    return _rotation_about(axis, float(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))))


def place(
    slab: Structure, fixed: list[int], adsorbate: Adsorbate, xy: np.ndarray, angle: float,
    tilt: np.ndarray | None = None, orientation: str = "up",
) -> tuple[Structure, list[int]]:
    """Slab + adsorbate with its binding atom over ``xy``, bound; adsorbate atoms appended.

    The molecule starts in ``orientation`` (:func:`oriented_start`); ``angle`` turns it
    about the surface normal, then ``tilt`` (a rotation about the binding atom,
    :func:`random_tilt`) tips it; a multidentate adsorbate's second binding atom lies in
    the ``angle`` direction from the first (:func:`_multidentate_positions`) and is not
    tipped."""
    if adsorbate.multidentate:
        positions = _multidentate_positions(slab, adsorbate, xy, angle)
    else:
        binder = adsorbate.symbols[adsorbate.binding_index]
        z = binding_height(slab, xy, binder)
        local = oriented_start(adsorbate, orientation) @ _rotation_z(angle).T
        if tilt is not None:
            local = local @ tilt.T
        positions = local + np.array([xy[0], xy[1], z])
    # lift the whole molecule if another of its atoms comes too close to the slab
    pos = _images(slab)
    radii = np.tile([_radius(s.specie.symbol) for s in slab], 9)
    for _ in range(20):
        d = np.linalg.norm(pos[None] - positions[:, None], axis=2)
        limit = 0.8 * (radii[None] + np.array([_radius(s) for s in adsorbate.symbols])[:, None])
        limit[list(adsorbate.binders)] = 0.0
        if (d >= limit).all():
            break
        positions[:, 2] += 0.2
    structure = slab.copy()
    for symbol, p in zip(adsorbate.symbols, positions):
        structure.append(symbol, p, coords_are_cartesian=True)
    n = len(slab)
    return structure, list(range(n, n + len(adsorbate.symbols)))


def _multidentate_positions(slab: Structure, adsorbate: Adsorbate, xy: np.ndarray,
                            angle: float) -> np.ndarray:
    """Cartesian positions of a multidentate adsorbate: first binding atom over ``xy`` at its
    bonding height; two binding atoms: the molecule tilted about the horizontal axis
    normal to theirs until the second is at its own bonding height too (a rigid turn:
    the gas bond length is kept); more: lifted until every one is at least at its own."""
    binders = list(adsorbate.binders)
    symbols = adsorbate.symbols
    local = adsorbate.oriented() @ _rotation_z(angle).T
    xy = np.asarray(xy, float)[:2]
    z0 = binding_height(slab, xy, symbols[binders[0]])
    if len(binders) == 2:
        second = local[binders[1]]
        d = float(np.linalg.norm(second))
        u = second[:2] / np.linalg.norm(second[:2])
        tilt = 0.0
        for _ in range(20):  # the second atom's height depends on where the tilt puts it
            z1 = binding_height(slab, xy + d * np.cos(tilt) * u, symbols[binders[1]])
            new = float(np.arcsin(np.clip((z1 - z0) / d, -1.0, 1.0)))
            if abs(new - tilt) < 1e-6:
                break
            tilt = new
        axis = np.array([u[1], -u[0], 0.0])  # u x z: a positive turn lifts the second atom
        local = local @ _rotation_about(axis, tilt).T
        return local + np.array([xy[0], xy[1], z0])
    positions = local + np.array([xy[0], xy[1], 0.0])
    lift = max(binding_height(slab, positions[i, :2], symbols[i]) - positions[i, 2]
               for i in binders)
    positions[:, 2] += lift
    return positions


def random_tilt(rng, degrees: float) -> np.ndarray:
    """A rotation taking the surface normal to a direction drawn uniformly on the cap of
    half-angle ``degrees`` around it (AdsorbML's wobble of heuristic placements)."""
    cos_z = rng.uniform(np.cos(np.radians(degrees)), 1.0)
    phi = rng.uniform(0.0, 2 * np.pi)
    angle = float(np.arccos(cos_z))
    axis = np.array([-np.sin(phi), np.cos(phi), 0.0])  # z x (direction): tips +z towards phi
    return _rotation_about(axis, angle)


def _rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix by ``angle`` about the unit vector ``axis`` (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


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


def all_sites(slab: Structure) -> list[tuple[str, np.ndarray]]:
    """Every ontop, bridge and hollow site of the cell (no symmetry reduction)."""
    sites = AdsorbateSiteFinder(slab).find_adsorption_sites(
        distance=0.0, symm_reduce=0, near_reduce=NEAR_REDUCE, positions=list(SITE_TYPES))
    return [(kind, np.asarray(p, float)) for kind in SITE_TYPES for p in sites.get(kind, [])]


def partner_directions(slab: Structure, point: np.ndarray, separation: float,
                       sites: list[tuple[str, np.ndarray]]) -> list[tuple[str, float]]:
    """(kind, angle) of the sites around ``point`` whose lateral distance is closest to
    ``separation`` (within PARTNER_TOLERANCE of the best), by angle: where a multidentate
    adsorbate's second binding atom goes when its first sits over ``point``."""
    found = []
    for kind, site in sites:
        for shift in lateral_shifts(slab.lattice):
            v = (site + shift - point)[:2]
            r = float(np.linalg.norm(v))
            if r > MIN_PARTNER_DISTANCE:
                found.append((abs(r - separation), kind, float(np.arctan2(v[1], v[0]))))
    if not found:
        return []
    best = min(f[0] for f in found)
    chosen = sorted((round(angle % (2 * np.pi), 6), kind) for miss, kind, angle in found
                    if miss <= best + PARTNER_TOLERANCE)
    out = []
    for angle, kind in chosen:  # one per direction
        if not out or angle - out[-1][1] > 1e-3:
            out.append((kind, angle))
    return out


def surface_operations(slab: Structure) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cartesian (rotation, translation) of the slab's symmetry operations that keep the
    surface normal (+z stays +z), found by spglib at SYMPREC; identity only if none."""
    identity = [(np.eye(3), np.zeros(3))]
    try:
        ops = SpacegroupAnalyzer(slab, symprec=SYMPREC).get_symmetry_operations(cartesian=True)
    except Exception:  # spglib finds no cell: compare placements as they are
        return identity
    kept = [(op.rotation_matrix, op.translation_vector) for op in ops
            if abs(op.rotation_matrix[2, 2] - 1.0) < 1e-6]
    return kept or identity


def equivalent(lattice, species: list[str], first: np.ndarray, second: np.ndarray,
               operations: list[tuple[np.ndarray, np.ndarray]],
               tolerance: float = DEDUPE_TOLERANCE) -> bool:
    """Whether an operation takes every atom of ``second`` (Cartesian, adsorbate atoms
    only) within ``tolerance`` of a like atom of ``first``, periodic images included."""
    species = np.asarray(species)
    groups = [np.flatnonzero(species == s) for s in dict.fromkeys(species)]
    inverse = np.linalg.inv(lattice.matrix)
    for rotation, translation in operations:
        moved = second @ rotation.T + translation
        for group in groups:
            diff = (moved[group][:, None] - first[group][None]) @ inverse
            diff -= np.round(diff)
            dist = np.linalg.norm(diff @ lattice.matrix, axis=2)
            rows, cols = linear_sum_assignment(dist)
            if dist[rows, cols].max() > tolerance:
                break
        else:
            return True
    return False


def lattice_translations(slab: Structure) -> np.ndarray:
    """Cartesian in-plane translations that map the slab onto itself (the tiling of its
    primitive surface cell), the zero translation first: (n, 3)."""
    found = [np.zeros(2)]  # fractional a, b
    inverse = np.linalg.inv(slab.lattice.matrix)
    for rotation, translation in surface_operations(slab):
        t = translation @ inverse
        t -= np.round(t)
        if not np.allclose(rotation, np.eye(3), atol=1e-6) or abs(t[2]) > 1e-3:
            continue
        if not any(np.allclose((t[:2] - f + 0.5) % 1.0 - 0.5, 0, atol=1e-3) for f in found):
            found.append(t[:2])
    return np.array([f[0] * slab.lattice.matrix[0] + f[1] * slab.lattice.matrix[1]
                     for f in found])


def check_coverage(slab: Structure, coverage: int,
                   translations: np.ndarray | None = None) -> None:
    """Refuse a coverage the cell cannot hold as images of one spot."""
    if coverage == 1:
        return
    n = len(lattice_translations(slab) if translations is None else translations)
    if n < coverage:
        raise WorkflowInputError(
            f"--coverage {coverage}: the {slab.composition.reduced_formula} slab's cell holds "
            f"{n} translation images of a site, fewer than {coverage}: give a larger "
            "--supercell (e.g. 3x3 holds 9 on fcc(111)) or a lower --coverage")


def coverage_points(slab: Structure, point: np.ndarray, coverage: int,
                    translations: np.ndarray) -> list[np.ndarray]:
    """``point`` and ``coverage - 1`` of its images under ``translations``
    (:func:`lattice_translations`), each next one the image farthest (periodically, in
    plane) from those already chosen."""
    images = [np.asarray(point, float) + t for t in translations]
    chosen = [images.pop(0)]
    shifts = lateral_shifts(slab.lattice)[:, :2]

    def gap(p):
        return min(np.linalg.norm(p[:2] - c[:2] + shifts, axis=1).min() for c in chosen)

    while len(chosen) < coverage:
        chosen.append(images.pop(int(np.argmax([gap(p) for p in images]))))
    return chosen


def _candidates(slab: Structure, adsorbate: Adsorbate, spots: list, rng,
                orientations: tuple[str, ...] = ("up",)) -> list:
    """(kind, point, angle, orientation) of every placement to try, in order: every site
    in each orientation in turn, then the random spots, taking the orientations in turn."""
    if not adsorbate.multidentate:  # one turn per spot, drawn in order (as ever)
        turns = [float(rng.uniform(0, 2 * np.pi)) if len(adsorbate.symbols) > 1 else 0.0
                 for _ in spots]
        kinds = [o for o in orientations if o in starts(adsorbate)] or ["up"]
        sites = [(kind, point, turn) for (kind, point), turn in zip(spots, turns)
                 if kind != "random"]
        out = []
        for orientation in kinds:
            if orientation == "up":
                out += [(kind, point, turn, "up") for kind, point, turn in sites]
            else:  # turns of their own, drawn after those of the upright starts
                out += [(f"{kind}/{orientation}", point, float(rng.uniform(0, 2 * np.pi)),
                         orientation) for kind, point, _ in sites]
        randoms = [(kind, point, turn) for (kind, point), turn in zip(spots, turns)
                   if kind == "random"]
        for i, (kind, point, turn) in enumerate(randoms):
            orientation = kinds[i % len(kinds)]
            label = kind if orientation == "up" else f"{kind}/{orientation}"
            out.append((label, point, turn, orientation))
        return out
    local = adsorbate.oriented()
    separation = float(np.linalg.norm(local[adsorbate.binders[1], :2]))
    sites = all_sites(slab)
    heuristic = [(kind, point, partner_directions(slab, point, separation, sites))
                 for kind, point in spots if kind != "random"]
    out = []
    for rank in range(max((len(d) for *_, d in heuristic), default=0)):
        for kind, point, directions in heuristic:  # each site's first direction first
            if rank < len(directions):
                partner, angle = directions[rank]
                out.append((f"{kind}+{partner}", point, angle, "up"))
    out += [(kind, point, float(rng.uniform(0, 2 * np.pi)), "up")
            for kind, point in spots if kind == "random"]
    return out


def placement_bound(slab: Structure, adsorbate: Adsorbate,
                    settings: PlacementSettings = PlacementSettings()) -> int:
    """At most this many placements of ``adsorbate`` on ``slab``: the candidates of
    :func:`make_placements` before symmetry duplicates are dropped, capped by
    ``max_placements``, found without placing any (a screen's plan sizes its batches by
    it; the placements themselves are made once, on the relaxed slab)."""
    spots = heuristic_sites(slab) + [("random", np.zeros(3))] * settings.n_random
    n = len(_candidates(slab, adsorbate, spots, np.random.default_rng(settings.seed),
                        settings.orientations))
    return n if settings.max_placements is None else min(n, settings.max_placements)


def make_placements(
    slab: Structure,
    fixed: list[int],
    adsorbate: Adsorbate,
    settings: PlacementSettings = PlacementSettings(),
) -> list[Placement]:
    """Heuristic placements (one per distinct site and orientation; per distinct site and
    direction for a multidentate adsorbate) then ``n_random`` random ones; symmetry
    duplicates dropped, then at most ``max_placements``."""
    rng = np.random.default_rng(settings.seed)
    spots = heuristic_sites(slab)
    a, b = slab.lattice.matrix[:2]
    for _ in range(settings.n_random):
        u, v = rng.random(2)
        spots.append(("random", u * a + v * b))
    operations = surface_operations(slab)
    placements, kept = [], []
    # one adsorbate per cell: no translations needed (spglib once per slab otherwise)
    translations = lattice_translations(slab) if settings.coverage > 1 else np.zeros((1, 3))
    check_coverage(slab, settings.coverage, translations)
    # tilts from a stream of their own: the sites and turns stay those drawn without tilt
    tilts = np.random.default_rng([settings.seed, 1])
    tipped = settings.tilt > 0 and len(adsorbate.symbols) > 1 and not adsorbate.multidentate
    for kind, point, angle, orientation in _candidates(slab, adsorbate, spots, rng,
                                                       settings.orientations):
        if settings.max_placements is not None and len(placements) >= settings.max_placements:
            break
        tilt = random_tilt(tilts, settings.tilt) if tipped else None
        structure, ads_idx = slab, []
        for copy in coverage_points(slab, point, settings.coverage, translations):
            structure, atoms = place(structure, fixed, adsorbate, copy, angle, tilt,
                                     orientation)
            ads_idx += atoms
        positions = structure.cart_coords[ads_idx]
        species = list(adsorbate.symbols) * settings.coverage
        if any(equivalent(slab.lattice, species, other, positions, operations)
               for other in kept):
            continue
        kept.append(positions)
        site = structure.cart_coords[ads_idx[adsorbate.binding_index]]
        placements.append(Placement(len(placements), kind, tuple(float(x) for x in site),
                                    structure, list(fixed), ads_idx))
    return placements
