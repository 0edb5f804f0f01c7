"""Anomaly detection of relaxed adsorbate placements, after OC20's rules (AdsorbML).

Bonds are covalent-radius neighbours (ASE ``natural_cutoffs`` times a multiplier):
- dissociation: the adsorbate's bond graph has more fragments after relaxation;
- stretched bond: a bond of the adsorbate's start (O-O, O-H) longer than any intact
  molecule has it (``BOND_LIMITS``, with their sources): on its way to breaking, the
  placement is no longer the adsorbate asked for, even before it splits into fragments
  (measured: OOH started upright over a Pt(111) hollow ends with O-O 1.92 A, one fragment
  for the bond graph, whose neighbour list adds ASE's 0.3 A skin to 1.65 A);
- desorption: no adsorbate atom is bonded to any slab atom (generous multiplier);
- surface change: slab bonds clearly made or broken (a hysteresis band between two
  multipliers, so a bond that only stretches does not count);
- intercalation: an adsorbate atom is covered by the slab: at least COVERED_BY slab
  atoms bonded to it lie above it (subsurface sites of fcc(111) have 3). Bonds to
  atoms of lower layers alone do not count: the 4-fold hollow of fcc(100) (O on
  Cu(100): 4 Cu at 2.00 A, the second-layer Cu 2.75 A below), (110) troughs and the
  foot of a step all bond to, or sit near, atoms beneath the top layer.
"""

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.neighborlist import NeighborList, natural_cutoffs
from omni_flows.db_schemas import Anomaly, AnomalyKind
from pymatgen.core import Structure
from scipy.sparse.csgraph import connected_components

# multipliers of the sum of covalent radii; OC20/AdsorbML use 1.5 for desorption
DESORPTION_MULT = 1.5
# adsorbate bonds: C-O 1.13 A is bonded at 1.0 x (1.42 A), a split CO at 2.3 A is not
ADSORBATE_MULT = 1.25
# slab bonds: 1.25 keeps fcc first neighbours (2.5-2.9 A) and drops second ones (3.6-4.1 A);
# OC20's 1.5 would straddle Pt's second shell (4.08 A vs 3.92 A)
SURFACE_MULT = 1.25
# ... and a bond is broken only beyond 1.5 x: a hysteresis band, so a stretched Au-Au bond
# under an O (measured: flagged 2 of 4 O/Au(111) placements with one threshold) is no change
SURFACE_BREAK_MULT = 1.5
# intercalation: slab atoms within INTERCALATION_MULT x covalent radii (no skin) and more than
# ABOVE_MARGIN A higher than an adsorbate atom cover it; COVERED_BY of them make it subsurface
INTERCALATION_MULT = 1.3
ABOVE_MARGIN = 0.3  # A
COVERED_BY = 3
# A: the longest an adsorbate bond gets while the molecule is intact (element pair, sorted).
# O-O: 1.60, 8 % beyond the O-O single bond of H2O2 (1.475 A, gas, experiment; OOH* on
#   Pt(111) in DFT: ~1.45 A); an O-O scission transition state is near 1.9 A.
# O-H: 1.20, where a proton shared by two O in the shortest, symmetric O-H-O hydrogen
#   bond sits (O...O 2.4 A, e.g. H5O2+): beyond it the H is no more its O's than a
#   neighbour's. An O-H stretched to 1.08 A towards a Pt (OOH* on Pt(111), 7net-mf-0,
#   issue 29) stays below: such a minimum is intact, but check it with DFT.
BOND_LIMITS: dict[tuple[str, str], float] = {("O", "O"): 1.60, ("H", "O"): 1.20}


def _atoms(structure: Structure | Atoms) -> Atoms:
    if isinstance(structure, Atoms):
        return structure
    return Atoms([s.specie.symbol for s in structure], positions=structure.cart_coords,
                 cell=structure.lattice.matrix, pbc=True)


def bond_matrix(atoms: Atoms, mult: float) -> np.ndarray:
    """Dense boolean connectivity under ``natural_cutoffs * mult`` (periodic)."""
    nl = NeighborList(natural_cutoffs(atoms, mult=mult), self_interaction=False, bothways=True)
    nl.update(atoms)
    return nl.get_connectivity_matrix(sparse=False).astype(bool)


def changed_bonds(ini: Atoms, fin: Atoms, idx: list[int]) -> int:
    """Bonds among ``idx`` clearly made or broken: a bond counts as broken only when it goes
    from within SURFACE_MULT to beyond SURFACE_BREAK_MULT (and the reverse for made), so
    bonds that merely stretch across one threshold do not count."""
    sub = np.ix_(idx, idx)
    lo0, hi0 = bond_matrix(ini, SURFACE_MULT)[sub], bond_matrix(ini, SURFACE_BREAK_MULT)[sub]
    lo1, hi1 = bond_matrix(fin, SURFACE_MULT)[sub], bond_matrix(fin, SURFACE_BREAK_MULT)[sub]
    return int(((lo0 & ~hi1) | (~hi0 & lo1)).sum() // 2)


def _fragments(bonds: np.ndarray, idx: list[int]) -> int:
    if len(idx) <= 1:
        return len(idx)
    return connected_components(bonds[np.ix_(idx, idx)], directed=False)[0]


def stretched_bonds(ini: Atoms, fin: Atoms, ads: list[int], copies: int = 1) -> list[str]:
    """Bonds within each of the ``copies`` adsorbates in ``ads`` at the start
    (ADSORBATE_MULT) whose element pair has a limit in BOND_LIMITS and that end beyond it,
    in words: 'O-O 1.72 A > 1.60 A (atoms 16, 17)'. Two copies started close are no bond."""
    bonded = bond_matrix(ini, ADSORBATE_MULT)
    symbols = fin.get_chemical_symbols()
    out = []
    pairs = [(int(i), int(j)) for copy in np.array_split(ads, copies)
             for n, i in enumerate(copy) for j in copy[n + 1:]]
    for i, j in pairs:
        pair = tuple(sorted((symbols[i], symbols[j])))
        if not bonded[i, j] or pair not in BOND_LIMITS:
            continue
        d = float(fin.get_distance(i, j, mic=True))
        if d > BOND_LIMITS[pair]:
            out.append(f"{pair[0]}-{pair[1]} {d:.2f} A > {BOND_LIMITS[pair]:.2f} A "
                       f"(atoms {i}, {j})")
    return out


def _covering(atoms: Atoms, i: int, slab: list[int]) -> int:
    """Slab atoms bonded to atom ``i`` (INTERCALATION_MULT x covalent radii) and above it."""
    d = atoms.get_distances(i, slab, mic=True)
    radii = covalent_radii[atoms.numbers[slab]] + covalent_radii[atoms.numbers[i]]
    dz = atoms.positions[slab, 2] - atoms.positions[i, 2]
    return int(((d <= INTERCALATION_MULT * radii) & (dz > ABOVE_MARGIN)).sum())


def detect_anomalies(
    initial: Structure | Atoms, final: Structure | Atoms, adsorbate_indices: list[int],
    copies: int = 1,
) -> list[Anomaly]:
    """The anomalies of one relaxed placement (initial and final share atom order);
    ``copies``: adsorbates in ``adsorbate_indices``, one after the other (coverage), each
    of which must stay bound."""
    ini, fin = _atoms(initial), _atoms(final)
    ads = list(adsorbate_indices)
    slab = [i for i in range(len(ini)) if i not in set(ads)]
    found = []

    b_ini, b_fin = bond_matrix(ini, ADSORBATE_MULT), bond_matrix(fin, ADSORBATE_MULT)
    n0, n1 = _fragments(b_ini, ads), _fragments(b_fin, ads)
    if n1 > n0:
        found.append(Anomaly(kind=AnomalyKind.DISSOCIATION,
                             detail=f"adsorbate in {n1} fragments after relaxation, {n0} before"))

    stretched = stretched_bonds(ini, fin, ads, copies)
    if stretched:
        found.append(Anomaly(kind=AnomalyKind.STRETCHED_BOND, detail="; ".join(stretched)))

    b_des = bond_matrix(fin, DESORPTION_MULT)
    for copy in np.array_split(ads, copies):
        if not b_des[np.ix_(copy, slab)].any():
            dmin = min(fin.get_distances(i, slab, mic=True).min() for i in copy)
            which = f"adsorbate {copy[0]}-{copy[-1]}: " if copies > 1 else ""
            found.append(Anomaly(kind=AnomalyKind.DESORPTION,
                                 detail=f"{which}no adsorbate-slab bond within {DESORPTION_MULT} "
                                 f"x covalent radii; closest {dmin:.2f} A"))
            break

    changed = changed_bonds(ini, fin, slab)
    if changed:
        found.append(Anomaly(kind=AnomalyKind.SURFACE_CHANGE,
                             detail=f"{changed} slab bonds made or broken"))

    covered = {i: _covering(fin, i, slab) for i in ads}
    buried = {i: n for i, n in covered.items() if n >= COVERED_BY}
    if buried:
        found.append(Anomaly(kind=AnomalyKind.INTERCALATION,
                             detail="adsorbate atoms below the surface: " + ", ".join(
                                 f"{i} under {n} slab atoms" for i, n in sorted(buried.items()))))
    return found
