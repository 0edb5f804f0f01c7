"""How many placements the symmetry deduplication removes (workflows/structures/placements.py).

For O, CO and *N*NH (bidentate, OC20) on the default Pt(111), (100) and (211) slabs:
the candidates before and the placements after deduplication with the default
``n_random`` (2) and with 50 random spots, and, for the monodentate ones, O/CO put on
every ontop, bridge and hollow site of the cell (no reduction) reduced by the slab's
surface operations. Tolerances: SYMPREC (spglib) and DEDUPE_TOLERANCE, both 0.1 A.

Usage: OMP_NUM_THREADS=1 python benchmarks/placement_dedupe.py
"""

import warnings

import numpy as np

from omni_flows.workflows.structures import placements as P
from omni_flows.workflows.structures.adsorbates import get_adsorbate
from omni_flows.workflows.structures.slabs import SlabSpec, bulk_structure, make_slab, terminations


def candidates(slab, adsorbate, n_random: int) -> int:
    rng = np.random.default_rng(P.DEFAULT_SEED)
    spots = P.heuristic_sites(slab)
    a, b = slab.lattice.matrix[:2]
    for _ in range(n_random):
        u, v = rng.random(2)
        spots.append(("random", u * a + v * b))
    return len(P._candidates(slab, adsorbate, spots, rng))


def main() -> None:
    warnings.simplefilter("ignore")
    bulk = bulk_structure("Pt")
    print(f"tolerances: SYMPREC {P.SYMPREC} A, DEDUPE_TOLERANCE {P.DEDUPE_TOLERANCE} A")
    for hkl in ((1, 1, 1), (1, 0, 0), (2, 1, 1)):
        slab, fixed = make_slab(bulk, hkl, terminations(bulk, hkl, SlabSpec())[0], SlabSpec())
        ops = P.surface_operations(slab)
        for name in ("O", "CO", "*N*NH"):
            adsorbate = get_adsorbate(name)
            out = []
            for n_random in (P.DEFAULT_RANDOM, 50):
                before = candidates(slab, adsorbate, n_random)
                after = len(P.make_placements(slab, fixed, adsorbate,
                                              P.PlacementSettings(n_random=n_random)))
                out.append(f"n_random={n_random}: {before} -> {after} (-{before - after})")
            if not adsorbate.multidentate:
                every, kept = P.all_sites(slab), []
                for _, point in every:
                    structure, idx = P.place(slab, fixed, adsorbate, point, 0.0)
                    pos = structure.cart_coords[idx]
                    if not any(P.equivalent(slab.lattice, list(adsorbate.symbols), k, pos, ops)
                               for k in kept):
                        kept.append(pos)
                out.append(f"every site of the cell: {len(every)} -> {len(kept)}")
            facet = "".join(map(str, hkl))
            print(f"Pt({facet}) {len(slab)} atoms, {len(ops)} surface operations, {name:6s} "
                  + "; ".join(out))


if __name__ == "__main__":
    main()
