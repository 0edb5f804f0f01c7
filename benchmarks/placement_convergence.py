"""Is the best E_ads of a screen stable from k to 2k placements?

The surface screen (SurfaceAdsorptionMaker, the library behind ``omni-flows screen
surfaces``) runs once per system with ``--n-random R --max-placements 2k``. Its first k
placements are exactly those of the same screen with ``--max-placements k`` (placements
are seeded and the cap cuts an ordered list: checked here on every relaxed slab by
making the k placements again), so one run gives both answers: the best valid E_ads
over the first k placements and over all 2k, and the site each ended in. ``--k auto``
(the default) takes k = the default screen's count on the system (every site in every
orientation, plus 2 random spots); "best up" is the best over the upright starts on
the sites alone (the screen before flat and H-down starts existed, tipped within --tilt).

Systems (p(2x2)-sized cells, 0.25 ML, 4 layers, 2 fixed; 7net-mf-0/PBE on CPU by default):
Pt(111) and Pd(111) 2x2, Cu(100) 2x2 of its primitive cell, Pt3Ni(111) (examples/Pt3Ni.cif,
L1_2, a = 3.83 A, its primitive (111) cell is the fcc 2x2); adsorbates referenced to H2O,
H2 and CO gas (*OOH = 2 H2O - 3/2 H2).

Usage:
    OMP_NUM_THREADS=1 python benchmarks/placement_convergence.py [--k auto] [--n-random R]
        [--systems Pt:111 Pt3Ni:111 Pd:111] [--adsorbates '*OOH'] [--tilt 20] [--out FILE.json]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Structure

from omni_flows.workflows import MLIPSettings, PlacementSettings, SurfaceAdsorptionMaker
from omni_flows.workflows.structures.adsorbates import get_adsorbate
from omni_flows.workflows.structures.placements import DEFAULT_RANDOM, make_placements
from omni_flows.workflows.structures.slabs import SlabSpec, bulk_structure, make_slab, terminations

# L1_2 Pt3Ni: Ni at the cube corner, Pt at the face centres; a = 3.83 A (experiment ~3.83 A)
PT3NI = Structure.from_file(Path(__file__).parents[1] / "examples" / "Pt3Ni.cif")
BULKS = {"Pt3Ni": PT3NI}
# lateral cells of the p(2x2)-sized slabs (in units of the slab's primitive surface cell)
SUPERCELL = {"Pt3Ni": (1, 1)}


def default_count(bulk: str, miller: tuple[int, int, int], adsorbate: str, spec: SlabSpec,
                  tilt: float) -> tuple[int, int]:
    """(placements of the default screen, upright starts on sites) on the unrelaxed slab."""
    structure = bulk_structure(BULKS.get(bulk, bulk))
    slab, fixed = make_slab(structure, miller, terminations(structure, miller, spec)[0], spec)
    made = make_placements(slab, fixed, get_adsorbate(adsorbate), PlacementSettings(tilt=tilt))
    return len(made), sum("/" not in p.site_type and p.site_type != "random" for p in made)


def run_system(bulk: str, miller: tuple[int, int, int], adsorbates: list[str], k: int | None,
               n_random: int | None, mlip: MLIPSettings, tilt: float) -> list[dict]:
    spec = SlabSpec(n_layers=4, n_fixed_layers=2, supercell=SUPERCELL.get(bulk, (2, 2)))
    if k is None:  # the default screen's count; 2k by more random spots
        k, n_up = max(default_count(bulk, miller, a, spec, tilt) for a in adsorbates)
        n_random = 2 * k - (k - DEFAULT_RANDOM)
    else:
        n_up = None
    placements = PlacementSettings(n_random=n_random, max_placements=2 * k, tilt=tilt)
    maker = SurfaceAdsorptionMaker(miller_indices=[miller], adsorbates=adsorbates, mlip=mlip,
                                   slab_spec=spec, placements=placements)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    start = time.perf_counter()
    run_locally(maker.make(BULKS.get(bulk, bulk)), store=store, log=False,
                raise_immediately=True)
    seconds = time.perf_counter() - start
    rows = []
    # placement documents, from whichever jobs relaxed them (one per pair or batched)
    groups: dict[str, list[dict]] = {}
    for doc in store.query({}):
        for out in doc["output"] if isinstance(doc.get("output"), list) else []:
            # adsorption-energy documents (relaxation outputs have no E_ads)
            if isinstance(out, dict) and "adsorption_energy" in out and "placement_index" in out:
                groups.setdefault(out["adsorbate_id"], []).append(out)
    slab_doc = store.query_one({"name": {"$regex": "^slab "}})["output"]
    slab = Structure.from_dict(slab_doc["structure"])
    fixed = slab_doc["fixed_indices"]
    for adsorbate_id, docs in groups.items():
        docs = sorted(docs, key=lambda d: d["placement_index"])
        name = docs[0]["adsorbate"]
        # the k-screen's placements are the first k of this one
        again = make_placements(slab, fixed, get_adsorbate(adsorbate_id),
                                PlacementSettings(n_random=n_random, max_placements=k,
                                                  tilt=tilt))
        assert all(a.structure == Structure.from_dict(d["initial_structure"])
                   for a, d in zip(make_placements(slab, fixed, get_adsorbate(adsorbate_id),
                                                   placements), docs)), "placements differ"
        prefix = all(a.structure == Structure.from_dict(d["initial_structure"])
                     for a, d in zip(again, docs))
        row = {"system": f"{bulk}({''.join(map(str, miller))})", "adsorbate": name,
               "n_placements": len(docs), "k_prefix_identical": prefix and len(again) <= k,
               "seconds_system": round(seconds, 1), "k": k, "n_random": n_random}
        up = [d for d in docs[:n_up or 0] if d["anomalies"] == [] and d["converged"]]
        row["best_up"] = min(d["adsorption_energy"] for d in up) if up else None
        row["n_invalid"] = sum(bool(d["anomalies"]) or not d["converged"] for d in docs)
        row["anomalies"] = sorted({a["kind"] for d in docs for a in d["anomalies"]})
        for label, subset in (("k", docs[:k]), ("2k", docs)):
            valid = [d for d in subset if not d["anomalies"] and d["converged"]]
            best = min(valid, key=lambda d: d["adsorption_energy"]) if valid else None
            row[f"best_{label}"] = best["adsorption_energy"] if best else None
            row[f"site_{label}"] = best["site_type"] if best else None
            row[f"start_{label}"] = best["initial_site_type"] if best else None
            row[f"n_valid_{label}"] = len(valid)
        row["change"] = (row["best_2k"] - row["best_k"]
                         if row["best_k"] is not None and row["best_2k"] is not None else None)
        row["all"] = [(d["placement_index"], d["initial_site_type"], d["site_type"],
                       round(d["adsorption_energy"], 4),
                       not d["anomalies"] and d["converged"],
                       [a["kind"] for a in d["anomalies"]]) for d in docs]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", default="auto",
                        help="placements of the smaller screen; auto: the default screen's")
    parser.add_argument("--n-random", type=int, default=None,
                        help="random spots (with --k N; auto: 2k minus the sites' starts)")
    parser.add_argument("--systems", nargs="+", default=["Pt:111", "Pt3Ni:111", "Pd:111"])
    parser.add_argument("--adsorbates", nargs="+", default=["*OOH"])
    parser.add_argument("--model", default="7net-mf-0")
    parser.add_argument("--task", default="PBE")
    parser.add_argument("--tilt", type=float, default=20.0,
                        help="degrees, molecules tipped at random within this cone")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    mlip = MLIPSettings(model=args.model, task=args.task, device="cpu")
    k = None if args.k == "auto" else int(args.k)
    if k is not None and args.n_random is None:
        parser.error("--k N needs --n-random")
    rows = []
    for system in args.systems:
        bulk, hkl = system.split(":")
        rows += run_system(bulk, tuple(int(c) for c in hkl), args.adsorbates, k,
                           args.n_random, mlip, args.tilt)

    def fmt(value):
        return "-" if value is None else f"{value:.3f}"

    print(f"best valid E_ads (eV) over the first k and all 2k placements (--k {args.k}, "
          f"--tilt {args.tilt:g}), {args.model}/{args.task}")
    print(f"{'system':<11}{'ads':<5}{'k':>3}{'2k':>4} {'best up':>8} {'best k':>7} "
          f"{'start k':<14}{'best 2k':>8} {'change':>7} {'invalid':>7}  prefix")
    for r in rows:
        change = "-" if r["change"] is None else f"{r['change']:+.3f}"
        print(f"{r['system']:<11}{r['adsorbate']:<5}{r['k']:>3}{r['n_placements']:>4} "
              f"{fmt(r['best_up']):>8} {fmt(r['best_k']):>7} {str(r['start_k']):<14}"
              f"{fmt(r['best_2k']):>8} {change:>7} {r['n_invalid']:>7}  "
              f"{r['k_prefix_identical']}")
    for r in rows:
        print(f"# {r['system']} {r['adsorbate']}: (index, start, end site, E_ads eV, valid, "
              "anomalies)")
        for entry in r["all"]:
            print(f"#   {tuple(entry)}")
    changes = [abs(r["change"]) for r in rows if r["change"] is not None]
    if changes:
        print(f"|change|: max {max(changes):.3f} eV, mean {np.mean(changes):.3f} eV; "
              f"{sum(c > 0.05 for c in changes)} of {len(changes)} lowered by > 0.05 eV")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"k": args.k, "n_random": args.n_random, "tilt": args.tilt,
                       "model": args.model,
                       "task": args.task, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
