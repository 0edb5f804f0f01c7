"""The data of omni-ads-1: its held-out split, derived files and energy-scale check.

    python recipes/omni_ads_1_data.py [--data-dir ../shared/data] [--out recipes/omni-ads-1]

The recipes (``recipes/omni-ads-1.yaml``, ``-ship.yaml``, ``-gpu.yaml``) read the GPAW RPBE
and OC20 files of ``../shared/data`` directly, with energies AND forces of every frame
(forces on FixAtoms atoms are left out: ``free_atoms_only``). This script writes what
cannot be read directly:

1. ``clean_slabs.extxyz`` (training metals) and ``clean_slabs_all.extxyz`` (all 12 metals,
   for the ship recipe): the CHEAT pure-metal database has no clean slabs; its key ``e``
   fixes their energy exactly (see ``recipes/omni_ads_0_data.py``). Energy only: the
   geometry is the H row's slab without H, not relaxed, so it has no force label.
2. ``consistency.json``: whether all GPAW sources are on one energy scale (``check``).

The domain-bridging set is omni-ads-0's (``recipes/omni-ads-0/dbs_*.extxyz``): it holds
nothing of this split's held-out sets (quinary slabs were not in it; test_omni_ads_1_data).

Held out of ``omni-ads-1.yaml`` (whole slabs, metals and trajectories, never frames of a
trained trajectory): quinary slab 0002 (its 19 trajectories and its row, slabId 2, of
``agirpdptru_slab.db``), HEA slab ``example_project_0001`` (7 trajectories), pure metals
Au, Cu, Re, and OC20 trajectories HELD_OUT_OC20 (as omni-ads-0).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect
from ase.io import read, write

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "recipes"))
from omni_ads_0_data import (  # noqa: E402  (one place for the split omni-ads-0 shares)
    HELD_OUT_HEA_SLAB,
    HELD_OUT_METALS,
    HELD_OUT_OC20,
    clean_slab_energies,
    gas_references,
)

HELD_OUT_QUINARY_SLAB = 2  # agirpdptru_0002_* trajectories and slabId 2 of agirpdptru_slab.db
QUINARY = "agirpdptru"
GAS = ("h2", "h2o", "co", "no", "n2")
OC20_ALL = (
    "random1000100", "random1000102", "random1000110", "random1000120", "random1000126",
    "random1000129", "random1000138", "random1000142", "random1000151", "random1000157",
    "random1000159", "random1000162", "random1000163", "random1000167", "random1000169",
    "random1000179", "random1000187", "random1000188", "random1000193", "random1000194",
)
OC20_TRAIN = tuple(t for t in OC20_ALL if t not in HELD_OUT_OC20)
ALLOY_ELEMENTS = ("Ag", "Ir", "Pd", "Pt", "Ru")


def quinary_trajectories(hea: Path, slab: int) -> list[Path]:
    return sorted((hea / "hea_quinary" / "traj").glob(f"{QUINARY}_{slab:04d}_*.traj"))


def hea_example_trajectories(hea: Path, held_out: bool) -> list[Path]:
    out = sorted((hea / "hea_example" / "traj").glob("*.traj"))
    return [p for p in out if p.name.startswith(HELD_OUT_HEA_SLAB) == held_out]


def write_clean_slabs(hea: Path, path: Path, skip: tuple[str, ...]) -> int:
    slabs = []
    refs = gas_references(hea / "gas")
    for metal, (energy, slab) in sorted(clean_slab_energies(hea / "pure_metals.db", refs).items()):
        if metal in skip:
            continue
        slab.calc = SinglePointCalculator(slab, energy=energy)
        slabs.append(slab)
    write(path, slabs)
    return len(slabs)


def check(hea: Path) -> dict:
    """Are pure_metals.db, hea_example, hea_quinary and gas/ on one energy scale?

    (a) The clean-slab energy each adsorbate row of a metal implies, E(slab+X) - e - E_ref(X)
        with E_ref from gas/, agrees across its 5 adsorbates: gas/ holds the references
        CHEAT's ``e`` was computed with. (b) The relaxed rows of hea_example and of
        agirpdptru_slab.db are the last frames of the trajectories. (c) One set of
        per-element energies, fitted to the 300 quinary slabs, predicts the HEA example
        slabs and the pure Ag/Ir/Pd/Pt/Ru clean slabs: a residual of a few 10 meV/atom is
        mixing energy; another code, setup or cut-off would show as eV-scale offsets.
        (d) O* and OH* vs gas of the alloy trajectories lie within the pure metals' range.
    """
    refs = gas_references(hea / "gas")
    out: dict = {}
    implied: dict[str, list[float]] = {}
    for row in connect(hea / "pure_metals.db").select():
        implied.setdefault(row.element, []).append(row.energy - row.e - refs[row.ads])
    out["a_pure_metal_clean_slab_spread_over_adsorbates_eV_max"] = max(
        float(np.ptp(v)) for v in implied.values())
    pure = {m: float(np.mean(v)) for m, v in implied.items()}

    diffs = []
    for db in sorted((hea / "hea_example").glob("*.db")):
        for row in connect(db).select():
            name = f"example_project_{row.slabId:04d}_" + (
                "slab" if "adsId" not in row.key_value_pairs else f"ads{row.adsId}")
            diffs.append(abs(read(hea / "hea_example" / "traj" / f"{name}.traj", -1)
                             .get_potential_energy() - row.energy))
    quinary_rows = {r.slabId: r for r in connect(hea / "hea_quinary" / f"{QUINARY}_slab.db").select()}
    for s in range(3):
        last = read(hea / "hea_quinary" / "traj" / f"{QUINARY}_{s:04d}_slab.traj", -1)
        assert np.array_equal(last.numbers, quinary_rows[s].numbers)
        diffs.append(abs(last.get_potential_energy() - quinary_rows[s].energy))
    out["b_relaxed_rows_vs_trajectory_last_frames_eV_max"] = float(max(diffs))

    def counts(numbers):
        from ase.data import chemical_symbols
        sym = [chemical_symbols[z] for z in numbers]
        return [sym.count(e) for e in ALLOY_ELEMENTS]

    fit = [r for s, r in quinary_rows.items() if s != HELD_OUT_QUINARY_SLAB]
    x = np.array([counts(r.numbers) for r in fit], float)
    y = np.array([r.energy for r in fit])
    mu, *_ = np.linalg.lstsq(x, y, rcond=None)
    n = x.sum(1)
    out["c_per_element_fit_mu_eV"] = dict(zip(ALLOY_ELEMENTS, mu.round(4).tolist()))
    out["c_quinary_slabs_fit_residual_meV_per_atom_rms"] = float(
        1000 * np.sqrt(np.mean(((x @ mu - y) / n) ** 2)))
    example = [r for r in connect(hea / "hea_example" / "example_project_slab.db").select()]
    out["c_hea_example_slabs_residual_meV_per_atom"] = [
        float(1000 * (r.energy - np.dot(counts(r.numbers), mu)) / r.natoms) for r in example]
    out["c_pure_slabs_residual_meV_per_atom"] = {
        m: float(1000 * (pure[m] - 45 * mu[ALLOY_ELEMENTS.index(m)]) / 45)
        for m in ALLOY_ELEMENTS}

    ranges = {}
    for ads, pattern, files in (
        ("O", "fcc_O", ("ads0", "ads1")), ("OH", "ontop_OH", ("ads4", "ads5"))):
        values = []
        for s in range(3):
            slab = read(hea / "hea_quinary" / "traj" / f"{QUINARY}_{s:04d}_slab.traj", -1)
            for p in sorted((hea / "hea_quinary" / "traj").glob(f"{QUINARY}_{s:04d}_{pattern}_*")):
                values.append(read(p, -1).get_potential_energy() - slab.get_potential_energy()
                              - refs[ads])
        for s in range(2):
            slab = read(hea / "hea_example" / "traj" / f"example_project_{s:04d}_slab.traj", -1)
            for f in files:
                t = hea / "hea_example" / "traj" / f"example_project_{s:04d}_{f}.traj"
                values.append(read(t, -1).get_potential_energy() - slab.get_potential_energy()
                              - refs[ads])
        metals = {r.element: r.e for r in connect(hea / "pure_metals.db").select(ads=ads)
                  if r.element in ALLOY_ELEMENTS}
        ranges[ads] = {"alloys_min_max": [float(min(values)), float(max(values))],
                       "n_alloy_sites": len(values),
                       "pure_Ag_Ir_Pd_Pt_Ru": {m: round(v, 3) for m, v in sorted(metals.items())}}
    out["d_adsorption_vs_gas_eV"] = ranges
    return out


def model_scale_check(hea: Path, model: str = "7net-mf-0", task: str = "PBE") -> dict:
    """(e) As (c), with the strain and mixing energy a per-element fit cannot see taken
    out by a model: per-element shifts fitted to E_DFT - E_model of the quinary slabs
    (the RPBE-vs-PBE offset), then the residual per atom of every source's slabs. An
    offset of one source (another code, setup or cut-off) would stand out of the
    quinary slabs' own scatter (about 0.4 s a slab on one thread)."""
    from omni_flows.model import load_model, predict

    rows = list(connect(hea / "hea_quinary" / f"{QUINARY}_slab.db").select())
    example = list(connect(hea / "hea_example" / "example_project_slab.db").select())
    pure = clean_slab_energies(hea / "pure_metals.db", gas_references(hea / "gas"))
    atoms = [r.toatoms() for r in rows + example] + [pure[m][1] for m in ALLOY_ELEMENTS]
    dft = np.array([r.energy for r in rows + example] + [pure[m][0] for m in ALLOY_ELEMENTS])
    pred = np.array([r["energy"] for r in predict(atoms, load_model(model), task=task,
                                                   device="cpu")])
    x = np.array([[a.get_chemical_symbols().count(e) for e in ALLOY_ELEMENTS] for a in atoms],
                 float)
    nq = len(rows)
    shift, *_ = np.linalg.lstsq(x[:nq], (dft - pred)[:nq], rcond=None)
    res = 1000 * (dft - pred - x @ shift) / x.sum(1)
    return {
        "model": f"{model}/{task}",
        "quinary_slabs_residual_meV_per_atom_rms": float(np.sqrt(np.mean(res[:nq] ** 2))),
        "hea_example_slabs_residual_meV_per_atom": res[nq:nq + len(example)].round(1).tolist(),
        "pure_slabs_residual_meV_per_atom": dict(
            zip(ALLOY_ELEMENTS, res[nq + len(example):].round(1).tolist())),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=ROOT / "recipes" / "omni-ads-1")
    p.add_argument("--model-check", action="store_true",
                   help="also (e): the energy scale against 7net-mf-0/PBE (about 2 min)")
    a = p.parse_args()
    hea = a.data_dir / "hea_gpaw_rpbe"
    if not hea.is_dir():
        sys.exit(f"error: {hea} does not exist; give the shared data folder with --data-dir")
    a.out.mkdir(parents=True, exist_ok=True)
    n = write_clean_slabs(hea, a.out / "clean_slabs.extxyz", HELD_OUT_METALS)
    n_all = write_clean_slabs(hea, a.out / "clean_slabs_all.extxyz", ())
    report = check(hea)
    if a.model_check:
        report["e_model_residual_check"] = model_scale_check(hea)
    (a.out / "consistency.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    print(f"{n} clean slabs (training metals), {n_all} (all metals) -> {a.out}")


if __name__ == "__main__":
    main()
