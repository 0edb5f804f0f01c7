"""The two derived data files of the omni-ads-0 recipe (``recipes/omni-ads-0.yaml``).

    python recipes/omni_ads_0_data.py [--data-dir ../shared/data] [--out recipes/omni-ads-0]

1. ``clean_slabs.extxyz`` (task ``gpaw_rpbe``, energy only): the CHEAT pure-metal
   database has no clean slabs, but its key ``e`` is E(slab+X) - E(slab) - E_ref(X)
   with the gas references E_ref(H) = H2/2, E_ref(O) = H2O - H2, E_ref(OH) = H2O - H2/2,
   E_ref(CO) = CO, E_ref(NO) = NO of its ``gas/`` folder (they reproduce every row to
   1e-9 eV), so E(slab) is known exactly. Its geometry is the H row's slab with H
   removed (not relaxed again: the label is the relaxed clean slab's energy, so it is
   too low for that geometry by the clean slab's relaxation energy, a few 10 meV).
   Training metals only (HELD_OUT_METALS are left out).
2. ``dbs_pbe.extxyz`` and ``dbs_r2scan.extxyz``: the domain-bridging set, structures of
   the new domains and Xu & Kitchin slabs of training metals, labelled (energy, forces,
   stress of bulk cells) by the ORIGINAL ``7net-mf-0`` PBE and R2SCAN tasks: no DFT
   labels exist here at those levels of theory, so this is self-distillation that ties
   the shared parameters to the pretrained surfaces on exactly the geometries that the
   new tasks pull on.

Nothing of a held-out set enters either file: metals Au, Cu, Re of the pure-metal
database, HEA slab 0001 (all its trajectories), OC20 trajectories HELD_OUT_OC20, and
the Xu & Kitchin Au and Cu slabs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
from ase.db import connect
from ase.io import read, write

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_METALS = ("Au", "Cu", "Re")
HELD_OUT_HEA_SLAB = "example_project_0001"
HELD_OUT_OC20 = (
    "random1000120",
    "random1000138",
    "random1000163",
    "random1000188",
    "random1000193",
)
XK_DBS_METALS = ("Pt", "Ag", "Pd")  # Xu & Kitchin metals in the DBS; Au, Cu held out
SLAB_ATOMS = 45  # 3x3x5


def gas_references(gas: Path) -> dict[str, float]:
    e = {k: read(gas / f"{k}.traj", -1).get_potential_energy() for k in ("h2", "h2o", "co", "no")}
    return {
        "H": 0.5 * e["h2"],
        "O": e["h2o"] - e["h2"],
        "OH": e["h2o"] - 0.5 * e["h2"],
        "CO": e["co"],
        "NO": e["no"],
    }


def clean_slab_energies(db_path: Path, refs: dict[str, float]) -> dict[str, tuple[float, Atoms]]:
    """Metal -> (DFT clean-slab energy, the H row's slab without H)."""
    out: dict[str, tuple[float, Atoms]] = {}
    energies: dict[str, list[float]] = {}
    for row in connect(db_path).select():
        energies.setdefault(row.element, []).append(row.energy - row.e - refs[row.ads])
        if row.ads == "H":
            atoms = row.toatoms()
            slab = atoms[:SLAB_ATOMS]
            slab.set_constraint(FixAtoms(indices=atoms.constraints[0].get_indices()))
            out[row.element] = (0.0, slab)
    for metal, values in energies.items():
        if max(values) - min(values) > 1e-6:
            raise ValueError(f"{metal}: clean-slab energies disagree by {np.ptp(values)} eV")
        out[metal] = (float(np.mean(values)), out[metal][1])
    return out


def xu_kitchin_slabs(folder: Path, metals) -> list[Atoms]:
    data = json.loads((folder / "structures.json").read_text())
    out = []
    for metal in metals:
        out.append(data[metal]["O"]["fcc"]["0.0"])
        for ads in ("H", "C", "N", "O", "S"):
            out.append(data[metal][ads]["fcc"]["0.25"])
    return [
        Atoms(e["symbols"], positions=e["pos"], cell=e["cell"], pbc=True)
        for e in out
        if isinstance(e, dict)
    ]


def dbs_structures(data: Path) -> list[Atoms]:
    hea = data / "hea_gpaw_rpbe"
    out = xu_kitchin_slabs(data / "xu_kitchin_2014", XK_DBS_METALS)
    sel = ",".join(f"element!={m}" for m in HELD_OUT_METALS)
    rows = list(connect(hea / "pure_metals.db").select(sel))
    out += [r.toatoms() for r in rows if r.ads in ("O", "OH")]
    for traj in sorted((hea / "hea_example" / "traj").glob("*.traj")):
        if not traj.name.startswith(HELD_OUT_HEA_SLAB):
            frames = read(traj, ":")
            out += [frames[0], frames[-1]]
    for traj in sorted((data / "oc20_relaxations").glob("*.traj")):
        if traj.stem not in HELD_OUT_OC20 and len(read(traj, 0)) <= 110:
            out.append(read(traj, -1))
    rng = np.random.default_rng(0)
    for metal in ("Ag", "Ir", "Pd", "Pt", "Rh", "Ru", "Os", "Ni"):
        hcp = metal in ("Ru", "Os")
        cell = bulk(metal, cubic=not hcp) * (2, 2, 2 if hcp else 1)
        cell.positions += rng.normal(0, 0.05, cell.positions.shape)
        out.append(cell)
    # the rest of the DBS (485 structures in all): the Xu & Kitchin Pt/Ag/Pd slabs of every
    # site at every coverage but 0.25 ML (the clean slab comes in twice), the CHEAT training
    # rows of H, CO and NO, and the training metals' clean slabs, so that each gpaw_rpbe
    # energy difference has its PBE counterpart in the DBS
    xk = json.loads((data / "xu_kitchin_2014" / "structures.json").read_text())
    for metal in XK_DBS_METALS:
        for sites in xk[metal].values():
            for coverages in sites.values():
                out += [
                    Atoms(e["symbols"], positions=e["pos"], cell=e["cell"], pbc=True)
                    for cov, e in coverages.items()
                    if isinstance(e, dict) and cov != "0.25"
                ]
    out += [r.toatoms() for r in rows if r.ads not in ("O", "OH")]
    refs = gas_references(hea / "gas")
    out += [
        slab
        for metal, (_, slab) in clean_slab_energies(hea / "pure_metals.db", refs).items()
        if metal not in HELD_OUT_METALS
    ]
    for a in out:
        a.calc = None
    return out


def label(structures: list[Atoms], task: str) -> list[Atoms]:
    from omni_flows.model import load_model, predict

    model = load_model("7net-mf-0")
    out = []
    for atoms, res in zip(structures, predict(structures, model, task=task, device="cpu")):
        a = atoms.copy()
        has_cell = abs(a.cell.volume) > 1e-8 and all(a.pbc) and len(a) < 40
        kw = {"energy": res["energy"], "forces": res["forces"]}
        if has_cell and "stress" in res:
            kw["stress"] = res["stress"]
        a.calc = SinglePointCalculator(a, **kw)
        out.append(a)
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=ROOT / "recipes" / "omni-ads-0")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    hea = a.data_dir / "hea_gpaw_rpbe"
    refs = gas_references(hea / "gas")
    slabs = []
    for metal, (energy, slab) in sorted(clean_slab_energies(hea / "pure_metals.db", refs).items()):
        if metal in HELD_OUT_METALS:
            continue
        slab.calc = SinglePointCalculator(slab, energy=energy)
        slabs.append(slab)
    write(a.out / "clean_slabs.extxyz", slabs)
    structures = dbs_structures(a.data_dir)
    write(a.out / "dbs_pbe.extxyz", label(structures, "PBE"))
    write(a.out / "dbs_r2scan.extxyz", label(structures[::2], "R2SCAN"))
    print(f"{len(slabs)} clean slabs, {len(structures)} DBS structures (PBE), "
          f"{len(structures[::2])} (R2SCAN) -> {a.out}")


if __name__ == "__main__":
    main()
