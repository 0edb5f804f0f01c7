"""Adsorption on alloy (high-entropy alloy) surfaces, CHEAT layout (GPAW RPBE in the data here).

A data folder holds ASE databases of relaxed rows (``relaxed=1`` where the key exists):
clean slabs and adsorbate+slab rows linked by the key ``slabId``, each with ``ads``
(``"N/A"`` for a clean slab) and ``site``. Files without those keys, as
``hea_example/`` (``example_project_slab.db``, ``example_project_fcc_O.db``, ...), name
them in the file name: ``<project>_slab.db`` or ``<project>_<site>_<ads>.db``.

Adsorption energies, DFT and model alike, at the DFT geometries (single points):

- with a ``refs/`` folder (``3x3x5_pt111_slab.db``, ``3x3x5_pt111_fcc_O.db``,
  ``3x3x5_pt111_ontop_OH.db``): relative to Pt(111) in the same cell,
  dE = [E(slab+X) - E(slab)] - [E(Pt+X) - E(Pt)], so gas references cancel; adsorbates
  without a Pt(111) row are left out;
- else against gas molecules (a ``gas/`` folder: ``h2.traj``, ``h2o.traj``, and
  ``co.traj``, ``no.traj`` when used): E(slab+X) - E(slab) - E_ref(X) with
  E_ref(H) = H2/2, E_ref(O) = H2O - H2, E_ref(OH) = H2O - H2/2, E_ref(CO) = CO,
  E_ref(NO) = NO, each computed by the same model (or taken from the DFT files).

Per adsorbate: MAE, mean error (model - DFT), Spearman rho over the sites, and the
number of sites. Where the model's task has a committee (``model/committee.py``), each
site's sigma from the members' own adsorption energies (member by member, as the screen),
and per adsorbate the share of |error| within 2 sigma and Spearman(sigma, |error|); the
entries carry sigma, and the run draws a reliability diagram.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.db import connect
from ase.io import read

from omni_flows.db_schemas import BenchmarkEntry

from .results import BenchmarkDataError, BenchmarkInputError

DATASET = "hea_adsorption"
DEFAULT_DATA = "hea_gpaw_rpbe/hea_example"  # under the shared data folder
CLEAN = "N/A"
REF_FILES = {
    "slab": "3x3x5_pt111_slab.db",
    "O": "3x3x5_pt111_fcc_O.db",
    "OH": "3x3x5_pt111_ontop_OH.db",
}
# gas molecule combinations of each adsorbate's reference: {file stem: coefficient}
GAS_REFERENCES = {
    "H": {"h2": 0.5},
    "O": {"h2o": 1.0, "h2": -1.0},
    "OH": {"h2o": 1.0, "h2": -0.5},
    "CO": {"co": 1.0},
    "NO": {"no": 1.0},
}
_NAME = re.compile(r"_(?P<site>[A-Za-z]+)_(?P<ads>[A-Za-z0-9]+)$")


@dataclass
class Site:
    """One adsorbate+slab row and the clean slab it belongs to."""

    system_id: str
    slab_id: int
    ads: str
    site: str
    atoms: Atoms
    slab: Atoms
    energy: float  # DFT, eV
    slab_energy: float


def _row_keys(path: Path, row) -> tuple[str, str]:
    """(ads, site) of a row: its keys, else the file name."""
    kv = row.key_value_pairs
    if "ads" in kv:
        return str(kv["ads"]), str(kv.get("site", ""))
    stem = path.stem
    if stem.endswith("_slab"):
        return CLEAN, ""
    match = _NAME.search(stem)
    if match is None:
        raise BenchmarkDataError(
            f"{path}: rows have no 'ads' key and the file name is neither <name>_slab.db nor "
            "<name>_<site>_<ads>.db"
        )
    return match["ads"], match["site"]


def _relaxed_rows(path: Path):
    rows = list(connect(path).select())
    if any("relaxed" in r.key_value_pairs for r in rows):
        rows = [r for r in rows if r.key_value_pairs.get("relaxed") == 1]
    return rows


def load_sites(folder: Path, slab_ids: list[int] | None = None) -> list[Site]:
    """Every adsorbate row of ``folder``'s databases with its clean slab (by ``slabId``)."""
    files = sorted(folder.glob("*.db"))
    if not files:
        raise BenchmarkDataError(f"{folder} holds no ASE databases (*.db)")
    slabs: dict[int, tuple[Atoms, float]] = {}
    adsorbed = []
    for path in files:
        for row in _relaxed_rows(path):
            if "slabId" not in row.key_value_pairs:
                raise BenchmarkDataError(f"{path} row {row.id} has no 'slabId' key")
            ads, site = _row_keys(path, row)
            slab_id = int(row.slabId)
            if slab_ids is not None and slab_id not in slab_ids:
                continue
            if ads == CLEAN:
                if slab_id in slabs:
                    raise BenchmarkDataError(f"{path}: two clean slabs with slabId {slab_id}")
                slabs[slab_id] = (row.toatoms(), float(row.energy))
            else:
                system_id = f"{path.stem}/{row.id}"
                adsorbed.append((system_id, slab_id, ads, site, row.toatoms(), float(row.energy)))
    sites = []
    for system_id, slab_id, ads, site, atoms, energy in adsorbed:
        if slab_id not in slabs:
            raise BenchmarkDataError(f"{system_id}: no clean slab with slabId {slab_id}")
        slab, slab_energy = slabs[slab_id]
        sites.append(Site(system_id, slab_id, ads, site, atoms, slab, energy, slab_energy))
    if not sites:
        raise BenchmarkInputError(f"{folder}: no adsorbate rows (slab ids {slab_ids})")
    return sites


def load_pt111_refs(folder: Path) -> dict[str, Atoms]:
    """``refs/``: the Pt(111) slab and adsorbate rows (one relaxed row each)."""
    out = {}
    for key, name in REF_FILES.items():
        path = folder / name
        if not path.is_file():
            raise BenchmarkDataError(f"{folder} lacks {name} (the Pt(111) references)")
        rows = _relaxed_rows(path)
        if len(rows) != 1:
            raise BenchmarkDataError(f"{path}: expected one relaxed row, found {len(rows)}")
        atoms = rows[0].toatoms()
        atoms.info["dft_energy"] = float(rows[0].energy)
        out[key] = atoms
    return out


def load_gas(folder: Path, adsorbates) -> dict[str, Atoms]:
    needed = sorted({m for a in adsorbates for m in GAS_REFERENCES.get(a, {})})
    unknown = sorted(set(adsorbates) - set(GAS_REFERENCES))
    if unknown:
        raise BenchmarkInputError(
            f"adsorbates {unknown} have no gas reference (known: {sorted(GAS_REFERENCES)}); "
            "give a refs/ folder or leave them out"
        )
    out = {}
    for stem in needed:
        path = folder / f"{stem}.traj"
        if not path.is_file():
            raise BenchmarkDataError(f"gas folder {folder} lacks {path.name}")
        atoms = read(path, -1)
        atoms.info["dft_energy"] = float(atoms.get_potential_energy())
        atoms.calc = None
        out[stem] = atoms
    return out


def gas_folder(data: Path, gas: Path | None) -> Path:
    """``gas``, else ``data/gas``, else ``data/../gas`` (the CHEAT folder layout)."""
    for candidate in ([gas] if gas is not None else [data / "gas", data.parent / "gas"]):
        if candidate.is_dir():
            return candidate
    raise BenchmarkDataError(
        f"no gas references for {data}: give a refs/ folder with the Pt(111) rows, or the gas "
        "molecules with --gas DIR (h2.traj, h2o.traj, ...)"
    )


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def adsorption_energies(
    sites: list[Site], energy: dict[int, float], refs: dict[str, Atoms] | None,
    gas: dict[str, Atoms] | None,
) -> dict[str, float]:
    """system_id -> adsorption energy, with ``energy[id(atoms)]`` the energy of each structure."""
    out = {}
    for s in sites:
        de = energy[id(s.atoms)] - energy[id(s.slab)]
        if refs is not None:
            if s.ads not in refs:
                continue
            de -= energy[id(refs[s.ads])] - energy[id(refs["slab"])]
        else:
            de -= sum(c * energy[id(gas[m])] for m, c in GAS_REFERENCES[s.ads].items())
        out[s.system_id] = de
    return out


def sigma_metrics(ads: str, errors: np.ndarray, sigmas: np.ndarray) -> dict:
    """How well the committee's sigma describes the errors of ``ads``: the share of |error|
    within 2 sigma (a calibrated Gaussian sigma: 0.954), Spearman(sigma, |error|) (None
    below 3 sites) and the mean sigma, eV."""
    from omni_flows.model.committee import calibration

    found = calibration(errors, sigmas)
    return {f"{ads}_within_2sigma": found["share_within"],
            f"{ads}_spearman_sigma_error": spearman(sigmas, np.abs(errors)),
            f"{ads}_mean_sigma": found["mean_sigma"]}


def run_hea(
    model: str,
    task: str | None,
    data_dir: Path,
    *,
    gas_dir: Path | None = None,
    slab_ids: list[int] | None = None,
    device: str = "auto",
) -> tuple[dict, list[BenchmarkEntry]]:
    """Metrics per adsorbate (eV) and one entry per site (the adsorption energy)."""
    from omni_flows.model.committee import spread
    from omni_flows.model.inference import predict
    from omni_flows.workflows.relax import get_calculator

    sites = load_sites(data_dir, slab_ids)
    refs = load_pt111_refs(data_dir / "refs") if (data_dir / "refs").is_dir() else None
    gas = None
    if refs is None:
        gas = load_gas(gas_folder(data_dir, gas_dir), {s.ads for s in sites})
    structures = {id(a): a for s in sites for a in (s.atoms, s.slab)}
    extra = list((refs or gas).values())
    structures.update({id(a): a for a in extra})
    dft = {id(s.atoms): s.energy for s in sites} | {id(s.slab): s.slab_energy for s in sites}
    dft |= {id(a): a.info["dft_energy"] for a in extra}
    calc = get_calculator(model, task, device)
    committee = calc.model.config.committees.get(task) if task else None
    keys = list(structures)
    results = predict([structures[k] for k in keys], calc.model, task, stress=False,
                      committee=committee is not None)
    pred = {k: r["energy"] for k, r in zip(keys, results)}
    e_dft = adsorption_energies(sites, dft, refs, gas)
    e_model = adsorption_energies(sites, pred, refs, gas)
    sigma = {}
    if committee is not None:  # each member's own E_ads: what slab and adsorbate share cancels
        members = [adsorption_energies(sites, {k: r["committee_energies"][m] for k, r in
                                               zip(keys, results)}, refs, gas)
                   for m in range(len(committee["members"]))]
        sigma = {i: float(spread([e[i] for e in members], committee["scale"])) for i in e_model}
    if not e_dft:
        raise BenchmarkInputError(
            f"{data_dir}: no adsorbate has a Pt(111) reference in refs/ (O, OH)"
        )
    metrics: dict = {"reference": "Pt(111)" if refs is not None else "gas molecules"}
    if committee is not None:
        metrics["committee_scale"] = committee["scale"]
    entries = []
    errors_all = []
    by_ads: dict[str, list[str]] = {}
    for s in sites:
        if s.system_id in e_dft:
            by_ads.setdefault(s.ads, []).append(s.system_id)
    for ads, ids in sorted(by_ads.items()):
        x = np.array([e_dft[i] for i in ids])
        y = np.array([e_model[i] for i in ids])
        err = y - x
        errors_all.append(err)
        metrics[f"{ads}_mae"] = float(np.abs(err).mean())
        metrics[f"{ads}_mean_error"] = float(err.mean())
        metrics[f"{ads}_spearman"] = spearman(x, y)
        metrics[f"{ads}_n_sites"] = len(ids)
        if sigma:
            metrics |= sigma_metrics(ads, err, np.array([sigma[i] for i in ids]))
        entries += [BenchmarkEntry(system_id=i, reference=float(a), predicted=float(b),
                                   sigma=sigma.get(i), group=ads)
                    for i, a, b in zip(ids, x, y)]
    metrics["mae"] = float(np.abs(np.concatenate(errors_all)).mean())
    metrics["n_sites"] = len(entries)
    return metrics, entries
