"""The project's GPAW path against stored GPAW numbers: CHEAT's RPBE slabs (hea_gpaw_rpbe).

For each chosen adsorbate row of ``hea_example`` and the clean slab with the
same ``slabId``, a single point at the stored relaxed geometry through
:func:`omni_flows.workflows.dft.gpaw_runner.run_gpaw` (GPAW in its own process)
at CHEAT's settings (RPBE, PW 400 eV, 4x4x1 Monkhorst-Pack, Fermi-Dirac 0.1 eV,
spin-paired, no dipole layer; GPAW's default SCF criteria), and then

    dE = E(slab + adsorbate) - E(clean slab)

against the stored dE (GPAW 22.1, same settings). Target: |difference| <= 0.05 eV.
The 45-atom single points take long on one core (726 valence electrons, 440 bands, 8
irreducible k-points: the first SCF step alone took 13 min here, and some 20 are
needed): every finished one is written to ``--out`` (JSON) at once, and a re-run
computes only what is missing.

``--gas`` adds CHEAT's gas molecules (``gas/*.traj``, RPBE, PW 400 eV, Gamma, 20 A box;
minutes each) at their stored geometries, with the reaction energies of the gas
references (O: H2O - H2, and CO, N2 against H2) beside the stored ones.

    OMP_NUM_THREADS=1 python benchmarks/gpaw_cheat.py --rows O:0 OH:5 --out gpaw_cheat.json
    OMP_NUM_THREADS=1 python benchmarks/gpaw_cheat.py --rows --gas h2 h2o co n2 --out gas.json
"""

import argparse
import json
import time
from pathlib import Path

from ase.db import connect
from ase.io import read
from omni_flows.workflows.dft.gpaw_runner import (
    MOLECULE,
    SLAB,
    GPAWSettings,
    gpaw_versions,
    run_gpaw,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hea_gpaw_rpbe" / "hea_example"
FILES = {"H": "fcc_H", "O": "fcc_O", "OH": "ontop_OH"}
TARGET = 0.05  # eV
CHEAT = dict(xc="RPBE", ecut=400.0, kpts=(4, 4, 1), smearing=0.1, dipole=False, spin="paired")
GAS_BOX = 20.0  # A, the cell of CHEAT's gas trajectories
# gas-phase reaction energies that enter E_ads under the gas-molecule references
GAS_REACTIONS = {"H2O - H2 (O)": {"h2o": 1, "h2": -1}, "CO": {"co": 1}, "N2": {"n2": 1},
                 "H2O - 2 H2": {"h2o": 1, "h2": -2}}


def row(data: Path, name: str, **keys):
    rows = list(connect(data / f"example_project_{name}.db").select(**keys))
    if len(rows) != 1:
        raise SystemExit(f"{len(rows)} rows of {name} with {keys}; expected one")
    return rows[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--slab-id", type=int, default=0)
    parser.add_argument("--rows", nargs="*", default=["O:0", "OH:5"],
                        help="ADSORBATE:adsId rows of the slab (H, O or OH)")
    parser.add_argument("--gas", nargs="*", default=[], choices=["h2", "h2o", "co", "n2"],
                        help="gas molecules of gas/*.traj to compute too")
    parser.add_argument("--out", type=Path, default=Path("gpaw_cheat.json"))
    parser.add_argument("--timeout", type=float, default=None, help="s per single point")
    args = parser.parse_args()
    settings = GPAWSettings(**CHEAT, timeout=args.timeout)
    done = json.loads(args.out.read_text()) if args.out.exists() else {}
    wanted = [("slab", SLAB, row(args.data, "slab", slabId=args.slab_id).toatoms())
              ] if args.rows else []
    for item in args.rows:
        ads, ads_id = item.split(":")
        wanted.append((f"{ads}:{ads_id}", SLAB, row(args.data, FILES[ads], slabId=args.slab_id,
                                                    adsId=int(ads_id)).toatoms()))
    for name in args.gas:
        wanted.append((f"gas:{name}", MOLECULE, read(args.data.parent / "gas" / f"{name}.traj")))
    print(f"{settings.level()}, versions {gpaw_versions()}")
    for label, kind, atoms in wanted:
        if label in done:
            continue
        start = time.perf_counter()
        run = settings if kind == SLAB else GPAWSettings(**{**CHEAT, "box": GAS_BOX},
                                                          timeout=args.timeout)
        result = run_gpaw(atoms, kind, run)
        stored = atoms.get_potential_energy()
        done[label] = {"stored_energy": stored, "energy": result["energy"],
                       "wall_s": time.perf_counter() - start, "iterations": result["iterations"],
                       "n_ibz_kpoints": result["n_ibz_kpoints"], "versions": result["versions"],
                       "setups": result["setups"], "formula": atoms.get_chemical_formula()}
        args.out.write_text(json.dumps(done, indent=1))
        print(f"{label} {atoms.get_chemical_formula()}: E {result['energy']:.4f} eV (stored "
              f"{stored:.4f}), {done[label]['wall_s']:.0f} s, {result['iterations']} SCF "
              "iterations")
    gas = {k.split(":")[1]: v for k, v in done.items() if k.startswith("gas:")}
    if gas:
        print(f"{'gas reaction':>14} {'stored':>10} {'ours':>10} {'diff':>8}")
        for name, terms in GAS_REACTIONS.items():
            if set(terms) <= set(gas):
                stored = sum(n * gas[m]["stored_energy"] for m, n in terms.items())
                ours = sum(n * gas[m]["energy"] for m, n in terms.items())
                print(f"{name:>14} {stored:10.4f} {ours:10.4f} {ours - stored:+8.4f}")
    if "slab" not in done:
        return
    slab = done["slab"]
    print(f"{'row':>8} {'dE stored':>10} {'dE ours':>10} {'diff':>8}  within {TARGET} eV")
    for label, result in done.items():
        if label == "slab" or label.startswith("gas:"):
            continue
        stored = result["stored_energy"] - slab["stored_energy"]
        ours = result["energy"] - slab["energy"]
        print(f"{label:>8} {stored:10.4f} {ours:10.4f} {ours - stored:+8.4f}  "
              f"{abs(ours - stored) <= TARGET}")


if __name__ == "__main__":
    main()
