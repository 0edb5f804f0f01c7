"""Results of a screen as people compare them: a ranked table and an E_ads heatmap (PNG)."""

import csv
from pathlib import Path

import numpy as np
from rich.table import Table


def _surface(doc: dict) -> str:
    hkl = "".join(str(i) for i in doc["miller_index"])
    return f"{doc['bulk_formula']}({hkl})"


def strongest_first(rows: list[dict]) -> list[dict]:
    """Lowest adsorption energy first; rows without a valid placement (None) last."""
    return sorted(rows, key=lambda r: (r["adsorption_energy"] is None,
                                       r["adsorption_energy"] or 0.0))


# short names of the reference schemes in 80-column tables
SCHEME_SHORT = {"gas_molecules": "gas", "oc20_elemental": "oc20", "atomic": "oc20"}


def _adsorbate(doc: dict) -> str:
    """The adsorbate as the user named it: 'CO', or 'NO:1-ab12cd34' for one from a file;
    with several per cell, 'O (2/cell)'."""
    name = doc.get("adsorbate_id") or doc["adsorbate"]
    coverage = doc.get("coverage") or 1
    return name if coverage == 1 else f"{name} ({coverage}/cell)"


def ranked_rows(best_docs: list[dict]) -> list[dict]:
    """One row per (surface, adsorbate, settings), strongest binding first; no valid
    placement last."""
    rows = [
        {
            "surface": _surface(d),
            "adsorbate": _adsorbate(d),
            "adsorption_energy": d.get("adsorption_energy"),
            "coverage_ml": d.get("coverage_ml"),
            "site_type": d.get("site_type"),
            "initial_site_type": d.get("initial_site_type"),
            "valid": f"{d['n_valid']}/{d['n_placements']}",
            "reference": d["provenance"]["energy_reference"]["scheme"],
            "settings_id": d.get("settings_id"),
            "slab_id": d["slab_id"],
        }
        for d in best_docs
    ]
    return strongest_first(rows)


def ranked_table(rows: list[dict], title: str = "adsorption energies") -> Table:
    """The ranked rows in 80 columns (the settings id goes in the title)."""
    table = Table(title=title)
    for col in ("#", "surface", "adsorbate", "E_ads/eV", "site", "valid", "ref"):
        table.add_column(col, justify="right" if col in ("#", "E_ads/eV") else "left",
                         overflow="fold")
    for i, r in enumerate(rows, 1):
        e = r["adsorption_energy"]
        table.add_row(str(i), r["surface"], r["adsorbate"], "-" if e is None else f"{e:.3f}",
                      r["site_type"] or "-", r["valid"],
                      SCHEME_SHORT.get(r["reference"], r["reference"]))
    return table


def write_csv(rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["surface"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def heatmap(rows: list[dict], path: Path, title: str = "E_ads (eV)") -> Path:
    """Surfaces x adsorbates, colour = E_ads; blank where no placement was valid."""
    from matplotlib.figure import Figure  # no pyplot: the process's backend is left alone

    surfaces = sorted({r["surface"] for r in rows})
    adsorbates = sorted({r["adsorbate"] for r in rows})
    grid = np.full((len(surfaces), len(adsorbates)), np.nan)
    for r in rows:
        if r["adsorption_energy"] is not None:
            grid[surfaces.index(r["surface"]), adsorbates.index(r["adsorbate"])] = \
                r["adsorption_energy"]
    fig = Figure(figsize=(1.2 * len(adsorbates) + 2.5, 0.6 * len(surfaces) + 1.8))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(len(adsorbates)), adsorbates)
    ax.set_yticks(range(len(surfaces)), surfaces)
    for (i, j), value in np.ndenumerate(grid):
        ax.text(j, i, "n/a" if np.isnan(value) else f"{value:.2f}", ha="center", va="center",
                color="white" if not np.isnan(value) else "black", fontsize=9)
    fig.colorbar(image, ax=ax, label="E_ads (eV)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def mof_ranked_rows(placement_docs: list[dict]) -> list[dict]:
    """The lowest valid placement per (framework, guest), strongest binding first."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for d in placement_docs:
        groups.setdefault((d["framework_id"], d["guest"]), []).append(d)
    rows = []
    for (framework, guest), docs in groups.items():
        valid = [d for d in docs if d["valid"]]
        best = min(valid, key=lambda d: d["adsorption_energy"]) if valid else {}
        rows.append({
            "framework": framework,
            "guest": guest,
            "adsorption_energy": best.get("adsorption_energy"),
            "adsorption_energy_without_dispersion":
                best.get("adsorption_energy_without_dispersion"),
            "dispersion": docs[0]["dispersion"],
            "chemisorbed": best.get("chemisorbed"),
            "valid": f"{len(valid)}/{len(docs)}",
        })
    return strongest_first(rows)


def mof_ranked_table(rows: list[dict], title: str = "guest adsorption energies") -> Table:
    table = Table(title=title)
    for col in ("#", "framework", "guest", "E_ads/eV", "no D3/eV", "chemisorbed", "valid"):
        table.add_column(col, justify="left" if col in ("framework", "guest") else "right",
                         overflow="fold")

    def fmt(e):
        return "-" if e is None else f"{e:.3f}"

    for i, r in enumerate(rows, 1):
        table.add_row(str(i), r["framework"], r["guest"], fmt(r["adsorption_energy"]),
                      fmt(r["adsorption_energy_without_dispersion"]) if r["dispersion"] else "-",
                      {True: "yes", False: "no"}.get(r["chemisorbed"], "-"), r["valid"])
    return table


def mof_heatmap(rows: list[dict], path: Path, title: str = "E_ads (eV)") -> Path:
    """Frameworks x guests, colour = E_ads of the best valid placement."""
    cells = [{"surface": r["framework"], "adsorbate": r["guest"],
              "adsorption_energy": r["adsorption_energy"]} for r in rows]
    return heatmap(cells, path, title=title)
