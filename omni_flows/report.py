"""Results of a screen as people compare them: a ranked table and an E_ads heatmap (PNG).

A screen with a committee (``uncertainty``) shows each E_ads with its sigma: "-0.512±0.034"
in the table, ``adsorption_energy_std`` (and ``adsorption_free_energy_std``) in the CSV. A
row whose elements its task never saw is marked "!" after its E_ads, the caption names
the elements, the CSV has them in ``out_of_domain``.

A screen with ``--free-energy`` shows its adsorption free energies beside E_ads, where
the user looks: a dG column in the table, ``adsorption_free_energy``, ``zpe`` and
``free_energy_correction`` columns in the CSV, a dG panel beside the E_ads one in the
heatmap (the numbers otherwise sat in the database, reachable only by a query).
"""

import csv
import re
from pathlib import Path

import numpy as np
from rich.table import Table


def _surface(doc: dict) -> str:
    """'Pt(111)'; with the top layer where it is not the bulk's only element, so that the
    terminations of one facet differ: 'NiPt3(100)-Pt', 'NiPt3(100)-NiPt'."""
    hkl = "".join(str(i) for i in doc["miller_index"])
    termination = doc.get("termination") or doc["bulk_formula"]
    top = "" if termination == doc["bulk_formula"] else f"-{termination}"
    return f"{doc['bulk_formula']}({hkl}){top}"


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


# what a --free-energy screen adds to each row (eV), in the CSV's order
FREE_ENERGY_FIELDS = ("adsorption_free_energy", "zpe", "free_energy_correction")


def has_free_energies(rows: list[dict]) -> bool:
    return any(r.get("adsorption_free_energy") is not None for r in rows)


def has_uncertainty(rows: list[dict]) -> bool:
    return any(r.get("adsorption_energy_std") is not None for r in rows)


def has_domain_flags(rows: list[dict]) -> bool:
    return any(r.get("out_of_domain") for r in rows)


def ranked_rows(best_docs: list[dict]) -> list[dict]:
    """One row per (surface, adsorbate, settings), strongest binding first; no valid
    placement last. With stored free energies (``--free-energy``) every row also has
    :data:`FREE_ENERGY_FIELDS` (None where a row has none); with sigmas
    ``adsorption_energy_std`` (and ``adsorption_free_energy_std``); with domain flags
    ``out_of_domain`` (the elements, space-separated; "" where none)."""
    free, sigma = has_free_energies(best_docs), has_uncertainty(best_docs)
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
            **({name: d.get(name) for name in FREE_ENERGY_FIELDS} if free else {}),
            **({"adsorption_energy_std": d.get("adsorption_energy_std")} if sigma else {}),
            **({"adsorption_free_energy_std": d.get("adsorption_free_energy_std")}
               if sigma and free else {}),
            **({"out_of_domain": " ".join(d.get("out_of_domain") or [])}
               if has_domain_flags(best_docs) else {}),
        }
        for d in best_docs
    ]
    return strongest_first(rows)


def _fmt(value: float | None, sigma: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if sigma is None else f"{value:.3f}±{sigma:.3f}"


# marks a row whose elements lie outside its task's training data
OUT_OF_DOMAIN_MARK = "!"


def ranked_table(rows: list[dict], title: str = "adsorption energies") -> Table:
    """The ranked rows in 80 columns (the settings id goes in the title); E_ads ± sigma with
    a committee, a dG/eV column beside E_ads when the rows have free energies (its sigma is
    E_ads'), "!" after the E_ads of an out-of-domain row and the elements in the caption."""
    free = has_free_energies(rows)
    outside = sorted({el for r in rows for el in (r.get("out_of_domain") or "").split()})
    notes = ["±: sigma of the task's committee"] if has_uncertainty(rows) else []
    if outside:
        notes.append(f"{OUT_OF_DOMAIN_MARK}: outside the task's training data "
                     f"({', '.join(outside)}); treat with care")
    table = Table(title=title, caption="; ".join(notes) or None)
    numbers = ("#", "E_ads/eV", "dG/eV")
    columns = ("#", "surface", "adsorbate", "E_ads/eV", *(("dG/eV",) if free else ()), "site",
               "valid", "ref")
    for col in columns:
        table.add_column(col, justify="right" if col in numbers else "left",
                         overflow="fold", no_wrap=col in numbers)
    for i, r in enumerate(rows, 1):
        g = (_fmt(r.get("adsorption_free_energy")),) if free else ()
        energy = _fmt(r["adsorption_energy"], r.get("adsorption_energy_std"))
        if outside:  # unmarked rows padded: the numbers stay aligned
            energy += OUT_OF_DOMAIN_MARK if r.get("out_of_domain") else " "
        table.add_row(str(i), r["surface"], r["adsorbate"], energy, *g,
                      r["site_type"] or "-", r["valid"],
                      SCHEME_SHORT.get(r["reference"], r["reference"]))
    return table


def file_stem(kind: str, settings_id: str, systems: list[str]) -> str:
    """``surfaces-<settings id>-<systems>``: one campaign's files never overwrite another's."""
    from omni_flows.db_schemas.fingerprint import content_hash

    names = "-".join(re.sub(r"[^A-Za-z0-9]+", "", s) for s in systems)
    if len(names) > 40:
        names = content_hash(systems)[:8]
    return f"{kind}-{settings_id}-{names}"


def write_table(rows: list[dict], plot, out: Path, stem: str, title: str) -> tuple[Path, Path]:
    """The table as CSV and its heatmap (``plot``), named ``stem`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    return write_csv(rows, out / f"{stem}.csv"), plot(rows, out / f"{stem}.png", title=title)


def write_csv(rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["surface"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def heatmap(rows: list[dict], path: Path, title: str = "E_ads (eV)") -> Path:
    """Surfaces x adsorbates, colour = E_ads (± the committee's sigma where there is one);
    blank where no placement was valid; with free energies a second panel, colour = dG (its
    title says so)."""
    heatmap_figure(rows, title).savefig(path, dpi=120)
    return path


def heatmap_figure(rows: list[dict], title: str = "E_ads (eV)"):
    """The heatmap's matplotlib Figure (no pyplot: the process's backend is left alone)."""
    from matplotlib.figure import Figure

    surfaces = sorted({r["surface"] for r in rows})
    adsorbates = sorted({r["adsorbate"] for r in rows})
    panels = [("adsorption_energy", "E_ads (eV)")]
    if has_free_energies(rows):
        panels.append(("adsorption_free_energy", "ΔG (eV)"))
    width = 1.2 * len(adsorbates) + 2.5
    fig = Figure(figsize=(width * len(panels), 0.6 * len(surfaces) + 1.8))
    for ax, (field, label) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels):
        grid = np.full((len(surfaces), len(adsorbates)), np.nan)
        sigma = np.full_like(grid, np.nan)  # the committee's, where the row has one
        for r in rows:
            if r.get(field) is not None:
                at = surfaces.index(r["surface"]), adsorbates.index(r["adsorbate"])
                grid[at] = r[field]
                if r.get(f"{field}_std") is not None:
                    sigma[at] = r[f"{field}_std"]
        image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis_r", aspect="auto")
        ax.set_xticks(range(len(adsorbates)), adsorbates)
        ax.set_yticks(range(len(surfaces)), surfaces)
        for (i, j), value in np.ndenumerate(grid):
            text = "n/a" if np.isnan(value) else f"{value:.2f}"
            if not np.isnan(sigma[i, j]):
                text += f"\n±{sigma[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center",
                    color="white" if not np.isnan(value) else "black", fontsize=9)
        fig.colorbar(image, ax=ax, label=label)
        ax.set_title(title if field == "adsorption_energy" else
                     title.replace("E_ads (eV)", label) if "E_ads (eV)" in title else
                     f"{label}: {title}", fontsize=9)
    fig.tight_layout()
    return fig


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
                         overflow="fold", no_wrap=col not in ("framework", "guest"))

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
