"""Xu & Kitchin (2014): atomic adsorption energies on fcc(111) Pt, Ag, Au, Pd, Cu (PBE).

The data (``energies.json``, ``structures.json``, see ``../shared/data/README.md``) hold
``[metal][adsorbate][site][coverage]`` for adsorbates H C N O F S Cl Br on the fcc, hcp,
bridge and ontop sites of a 2x2, 4-layer slab; the clean slab is under coverage "0.0";
entries stored as "Q" (no calculation) are skipped.

Coverage convention: at coverage theta the cell holds n = 4 theta adsorbates, and the
stored energies are E = (E(slab+nX) - E(slab) - mu_X) / n, the gas-atom reference
subtracted once per cell, not n times (with 7net-mf-0 this form reproduces the 0.5-1.0 ML
values within ~0.1 eV where n mu_X misses by 0.6-0.9 eV). The model's E_ads uses the same
form, so any coverage compares like with like; at 0.25 ML (n = 1) the two forms agree.

MLIPs do not describe isolated atoms, so mu_X is not computed: site preferences, site
differences and metal trends need no mu_X at all, and the absolute MAE uses a mu_X per
adsorbate fitted (least squares) on TRAIN_METALS and is measured on TEST_METALS.
"""

import json
from itertools import combinations
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

from omni_flows.db_schemas import BenchmarkEntry
from omni_flows.model.defaults import DEFAULT_FMAX

from .results import BenchmarkInputError, data_folder

DATASET = "xu_kitchin_2014"
METALS = ("Pt", "Ag", "Au", "Pd", "Cu")
ADSORBATES = ("H", "C", "N", "O", "F", "S", "Cl", "Br")
ISSUE_ADSORBATES = ("O", "N", "C", "H")  # the set of the issue and of benchmarks/xu_kitchin_sites.py
SITES = ("fcc", "hcp", "bridge", "ontop")
COVERAGES = ("0.25", "0.5", "0.75", "1.0")  # ML; "0.0" is the clean slab
SITES_PER_CELL = 4  # 2x2 (111) cell
MODES = ("single-point", "relaxed")  # at the DFT geometries, or relaxed from them
DEFAULT_MODE = "single-point"
DEFAULT_COVERAGE = 0.25  # ML
# the split of the per-adsorbate reference fit: 3 metals to fit, 2 to test
TRAIN_METALS = ("Pt", "Ag", "Au")
TEST_METALS = ("Pd", "Cu")
SITE_TOLERANCE = 0.1  # eV: a model pick this close to the DFT minimum counts as right
N_FIXED_LAYERS = 2  # of 4, as in the DFT relaxations

Key = tuple[str, str, str]  # (metal, adsorbate, site)


def coverage_key(coverage: float | str) -> str:
    key = str(float(coverage))
    if key not in COVERAGES:
        raise BenchmarkInputError(f"--coverage {coverage}: the data hold {', '.join(COVERAGES)} ML")
    return key


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise BenchmarkInputError(f"--mode {mode!r}: choose single-point or relaxed")
    return mode


def to_atoms(entry: dict, metal: str) -> Atoms:
    """A structure of the data set, bottom N_FIXED_LAYERS metal layers held by FixAtoms."""
    from omni_flows.workflows.structures.slabs import layers

    atoms = Atoms(entry["symbols"], positions=entry["pos"], cell=entry["cell"], pbc=True)
    slab = np.array([i for i, s in enumerate(atoms.get_chemical_symbols()) if s == metal])
    groups = layers(atoms.positions[slab, 2])
    fixed = np.concatenate(groups[:N_FIXED_LAYERS])
    atoms.set_constraint(FixAtoms(indices=slab[fixed]))
    return atoms


def load_reference(
    data_dir: Path | None, coverage: str, adsorbates, metals
) -> tuple[dict[Key, float], dict[Key, Atoms], dict[str, Atoms]]:
    """DFT E_ads, the adsorbed structures and the clean slab per metal of the selection."""
    folder = data_folder(data_dir, DATASET, ("energies.json", "structures.json"))
    energies = json.loads((folder / "energies.json").read_text())
    structures = json.loads((folder / "structures.json").read_text())
    unknown = sorted(set(metals) - set(energies)) + sorted(set(adsorbates) - set(ADSORBATES))
    if unknown:
        raise BenchmarkInputError(f"not in the data: {', '.join(unknown)}; metals are "
                                  f"{', '.join(METALS)}, adsorbates {', '.join(ADSORBATES)}")
    dft, adsorbed, clean = {}, {}, {}
    for metal in metals:
        for ads in adsorbates:
            for site in SITES:
                energy = energies[metal][ads].get(site, {}).get(coverage)
                entry = structures[metal][ads].get(site, {}).get(coverage)
                if not isinstance(energy, (int, float)) or not isinstance(entry, dict):
                    continue  # "Q": not computed
                dft[(metal, ads, site)] = float(energy)
                adsorbed[(metal, ads, site)] = to_atoms(entry, metal)
                # the same relaxed clean slab is stored under every adsorbate and site
                clean.setdefault(metal, to_atoms(structures[metal][ads][site]["0.0"], metal))
    if not dft:
        raise BenchmarkInputError("the selection of metals, adsorbates and coverage is empty")
    return dft, adsorbed, clean


def _cases(table: dict[Key, float]) -> dict[tuple[str, str], dict[str, float]]:
    """(metal, adsorbate) -> {site: energy}."""
    cases: dict[tuple[str, str], dict[str, float]] = {}
    for (metal, ads, site), energy in table.items():
        cases.setdefault((metal, ads), {})[site] = energy
    return cases


def site_preference(dft: dict[Key, float], pred: dict[Key, float],
                    tolerance: float = SITE_TOLERANCE) -> tuple[float, float]:
    """Share of (metal, adsorbate) cases where the model's lowest site is the DFT's lowest
    (strict), and where the DFT energy of the model's lowest site is within ``tolerance``."""
    strict = within = 0
    cases = _cases(dft)
    for (metal, ads), ref in cases.items():
        picked = min(ref, key=lambda s: pred[(metal, ads, s)])
        best = min(ref, key=ref.get)
        strict += picked == best
        within += ref[picked] - ref[best] <= tolerance
    return strict / len(cases), within / len(cases)


def site_difference_mae(dft: dict[Key, float], pred: dict[Key, float]) -> float | None:
    """MAE of E(site) - E(DFT-preferred site) over the other sites of each case."""
    errors = []
    for (metal, ads), ref in _cases(dft).items():
        best = min(ref, key=ref.get)
        errors += [
            abs((pred[(metal, ads, s)] - pred[(metal, ads, best)]) - (ref[s] - ref[best]))
            for s in ref if s != best
        ]
    return float(np.mean(errors)) if errors else None  # a single site or metal: no pairs


def metal_trend_mae(dft: dict[Key, float], pred: dict[Key, float]) -> float | None:
    """MAE of E(metal A) - E(metal B) over metal pairs at fixed adsorbate, site, coverage."""
    by_site: dict[tuple[str, str], list[str]] = {}
    for metal, ads, site in dft:
        by_site.setdefault((ads, site), []).append(metal)
    errors = [
        abs((pred[(a, ads, site)] - pred[(b, ads, site)]) - (dft[(a, ads, site)] - dft[(b, ads, site)]))
        for (ads, site), metals in by_site.items()
        for a, b in combinations(metals, 2)
    ]
    return float(np.mean(errors)) if errors else None  # a single site or metal: no pairs


def fit_references(dft: dict[Key, float], cell_energy: dict[Key, float], n: int,
                   metals) -> dict[str, float]:
    """mu_X per adsorbate minimizing the squared error of (dE - mu_X)/n on ``metals``."""
    gaps: dict[str, list[float]] = {}
    for key, energy in dft.items():
        if key[0] in metals:
            gaps.setdefault(key[1], []).append(cell_energy[key] - n * energy)
    return {ads: float(np.mean(g)) for ads, g in gaps.items()}


def classify_site(positions: np.ndarray, cell: np.ndarray, ads_index: int = -1,
                  slab_indices=None) -> str:
    """fcc, hcp, bridge or ontop: the ideal (111) site nearest the adsorbate laterally.

    ``slab_indices``: the metal atoms (default: every atom but the adsorbate)."""
    from omni_flows.workflows.structures.slabs import layers

    pos = np.asarray(positions)
    ads = pos[ads_index]
    slab = (np.delete(np.arange(len(pos)), ads_index % len(pos)) if slab_indices is None
            else np.asarray(slab_indices))
    groups = layers(pos[slab, 2])
    top, second = pos[slab[groups[-1]]], pos[slab[groups[-2]]]
    a, b = np.asarray(cell)[:2]
    shifts = np.array([i * a + j * b for i in range(-2, 3) for j in range(-2, 3)])
    top_xy = (top[None, :, :2] + shifts[:, None, :2]).reshape(-1, 2)
    second_xy = (second[None, :, :2] + shifts[:, None, :2]).reshape(-1, 2)
    near = top_xy[np.argsort(np.linalg.norm(top_xy - ads[:2], axis=1))[:6]]
    nn = np.linalg.norm(near[0] - near[1:], axis=1).min()  # ~ in-plane neighbour distance
    candidates = [("ontop", p) for p in near]
    for i in range(len(near)):
        for j in range(i + 1, len(near)):
            if np.linalg.norm(near[i] - near[j]) < 1.2 * nn:
                candidates.append(("bridge", (near[i] + near[j]) / 2))
                for k in range(j + 1, len(near)):
                    if max(np.linalg.norm(near[i] - near[k]),
                           np.linalg.norm(near[j] - near[k])) < 1.2 * nn:
                        c = (near[i] + near[j] + near[k]) / 3
                        below = np.linalg.norm(second_xy - c, axis=1).min() < 0.3 * nn
                        candidates.append(("hcp" if below else "fcc", c))
    return min(candidates, key=lambda kc: np.linalg.norm(kc[1] - ads[:2]))[0]


def sites_of(atoms: Atoms, metal: str) -> list[str]:
    """The site of every adsorbate atom of ``atoms``."""
    symbols = atoms.get_chemical_symbols()
    slab = [i for i, s in enumerate(symbols) if s == metal]
    return [classify_site(atoms.positions, atoms.cell.array, i, slab)
            for i, s in enumerate(symbols) if s != metal]


def _energies(structures: list[Atoms], model: str, task: str | None, mode: str, device: str,
              fmax: float) -> tuple[list[float], list[Atoms], int]:
    """Model energies (eV), final structures and how many relaxations missed ``fmax``:
    single points, or relaxations from the given structures."""
    from omni_flows.model.inference import predict
    from omni_flows.workflows.relax import get_calculator, relax_structures

    if mode == "single-point":
        calc = get_calculator(model, task, device)
        results = predict(structures, calc.model, task, stress=False)
        return [r["energy"] for r in results], structures, 0
    outcomes = relax_structures(structures, model, task, device, fmax=fmax)
    return ([o.energy for o in outcomes], [o.atoms for o in outcomes],
            sum(not o.converged for o in outcomes))


def run_xu_kitchin(
    model: str,
    task: str | None,
    data_dir: Path | None = None,
    *,
    mode: str = DEFAULT_MODE,
    coverage: float | str = DEFAULT_COVERAGE,
    adsorbates=ADSORBATES,
    metals=METALS,
    device: str = "auto",
    fmax: float = DEFAULT_FMAX,
) -> tuple[dict, list[BenchmarkEntry]]:
    """Metrics and per-site entries (system_id ``metal/adsorbate/site/coverage``, E_ads in eV,
    the model's with the fitted mu_X) of ``model`` on the selection."""
    check_mode(mode)
    cov = coverage_key(coverage)
    n = round(float(cov) * SITES_PER_CELL)
    dft, adsorbed, clean = load_reference(data_dir, cov, list(adsorbates), list(metals))
    keys = list(dft)
    energies, finals, n_not_converged = _energies([adsorbed[k] for k in keys] + list(clean.values()),
                                 model, task, mode, device, fmax)
    slab_energy = dict(zip(clean, energies[len(keys):]))
    cell_energy = {k: e - slab_energy[k[0]] for k, e in zip(keys, energies)}

    train = [m for m in metals if m in TRAIN_METALS]
    test = [m for m in metals if m in TEST_METALS]
    mu = fit_references(dft, cell_energy, n, train or list(metals))
    pred = {k: (e - mu[k[1]]) / n for k, e in cell_energy.items()}
    strict, within = site_preference(dft, pred)

    def mae(which) -> float | None:
        errors = [abs(pred[k] - dft[k]) for k in keys if k[0] in which]
        return float(np.mean(errors)) if errors else None

    metrics = {
        "site_preference_accuracy": strict,
        f"site_preference_accuracy_within_{SITE_TOLERANCE}eV": within,
        "site_difference_mae": site_difference_mae(dft, pred),
        "metal_trend_mae": metal_trend_mae(dft, pred),
        "absolute_mae": mae(test),
        "absolute_mae_train": mae(train),
        "absolute_mae_split": (
            f"mu_X fitted on {' '.join(train)}, MAE on {' '.join(test)}" if train and test
            else "no train/test split in this selection (needs one of Pt Ag Au and one of Pd Cu)"
        ),
        "reference_energies": mu,
        "n_cases": len(_cases(dft)),
        "n_sites": len(keys),
    }
    if mode == "relaxed":  # where the model sends an adsorbate off its starting site
        moved = [f"{'/'.join(k)}->{','.join(sorted(set(found)))}"
                 for k, atoms in zip(keys, finals)
                 if set(found := sites_of(atoms, k[0])) != {k[2]}]
        metrics.update(n_moved=len(moved), moved=moved, n_not_converged=n_not_converged)
    entries = [
        BenchmarkEntry(system_id=f"{'/'.join(k)}/{cov}", reference=dft[k], predicted=pred[k])
        for k in keys
    ]
    return metrics, entries
