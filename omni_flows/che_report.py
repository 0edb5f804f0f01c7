"""The report of ``omni-flows report che``: one campaign's free energies, steps, limiting
potentials and, where the screen had a committee, their error bars and probabilities
(:mod:`omni_flows.che_uncertainty`), with the DFT-checked intermediates and the files.

One object, :class:`CHEReport`, holds it; ``as_dict()`` is the ``--json`` object, and the
CSV and the saved JSON are written from that same object, so the three never disagree.
"""

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from omni_flows.che import (
    TEXTBOOK,
    TEXTBOOK_CORRECTIONS,
    CHEResult,
    LinearFit,
    Solvation,
    SurfaceFreeEnergies,
    adsorbate_key,
    analyse,
    free_energies_from_documents,
    free_energy_diagram,
    save_figure,
    scaling_plot,
    scaling_relations,
    volcano_plot,
)
from omni_flows.che_uncertainty import (DRAWS, SEED, SurfaceUncertainty,
                                        campaign_uncertainty)
from omni_flows.workflows.errors import WorkflowInputError
from omni_flows.workflows.thermo.reactions import ReactionNetwork

DEFAULT_OUT = Path("che-results")  # where the campaign folders go
BEST = ("the lowest theoretical overpotential: the highest U_L of a reduction, the lowest of "
        "an oxidation")


@dataclass
class CHEReport:
    network: ReactionNetwork
    solvation: Solvation
    entries: list[SurfaceFreeEnergies]
    results: list[CHEResult]
    uncertainty: list[SurfaceUncertainty]
    fits: dict[str, LinearFit]
    validations: list[dict]
    incomplete: dict[str, list[str]]

    @classmethod
    def from_documents(cls, docs: list[dict], network: ReactionNetwork, solvation: Solvation,
                       validations: list[dict] = ()) -> "CHEReport":
        """From ``adsorption_best`` documents and the GPAW validations of their slabs."""
        entries, incomplete = free_energies_from_documents(docs, network, solvation)
        if not entries:
            lacking = "; ".join(f"{s} lacks {', '.join(m + '*' for m in missing)}"
                                for s, missing in incomplete.items())
            raise WorkflowInputError(
                f"no surface in adsorption_best has every {network.name.upper()} intermediate "
                f"({', '.join(i + '*' for i in network.intermediates)}); screen them first"
                + (f" ({lacking})" if lacking else ""))
        results = [analyse(network, e.values, e.surface) for e in entries]
        return cls(network, solvation, entries, results,
                   campaign_uncertainty(entries, results, network),
                   scaling_relations(entries, network), list(validations), incomplete)

    @property
    def has_uncertainty(self) -> bool:
        return any(u.limiting_potential_std is not None for u in self.uncertainty)

    def as_dict(self) -> dict:
        """Per surface dG of every intermediate at U = 0 (eV, solvation included) with its
        sigma, coverage (ML) and source; every step with its sigma; U_L (V vs RHE) with its
        sigma, the PDS and the probability that it is the PDS, the overpotential, the
        probability that the surface is the campaign's best, and the DFT-checked
        intermediates. A sigma or probability is None where the results have no committee."""
        names = self.network.intermediates
        surfaces = []
        for r, e, u in zip(self.results, self.entries, self.uncertainty):
            pds = r.potential_determining_step
            step_std = u.step_std or [None] * len(self.network.steps)
            surfaces.append({
                "surface": r.surface, "slab_id": e.slab_id, "settings_id": e.settings_id,
                "delta_g": {f"{n}*": e.values[n] for n in names},
                "delta_g_std": {f"{n}*": u.delta_g_std[n] for n in names},
                "coverage_ml": {f"{n}*": e.coverages.get(n) for n in names},
                "free_energy_source": {f"{n}*": e.sources[n] for n in names},
                "steps": [{"step": s.label, "delta_g": g, "delta_g_std": sd}
                          for s, g, sd in zip(self.network.steps, r.step_free_energies, step_std)],
                "limiting_potential": r.limiting_potential,
                "limiting_potential_std": u.limiting_potential_std,
                "potential_determining_step": None if pds is None else {
                    "index": pds + 1, "step": self.network.steps[pds].label,
                    "probability": u.p_pds},
                "overpotential": r.overpotential,
                "p_best": u.p_best,
                "dft_checked": dft_checked(e, self.validations),
            })
        return {"reaction": self.network.name, "title": self.network.title,
                "source": self.network.source, "solvation": self.solvation.as_dict(),
                "potential": "U = 0 V vs RHE, pH 0", "surfaces": surfaces,
                "uncertainty": {"best": BEST, "draws": DRAWS, "seed": SEED,
                                "method": "correlated committee draws, omni_flows.che_uncertainty"},
                "skipped": {s: [f"{n}*" for n in missing]
                            for s, missing in self.incomplete.items()}}

    def warnings(self) -> list[str]:
        """What the reader must know beside the table: skipped surfaces, textbook free
        energies, uphill chemical steps, a P(best) that could not be computed."""
        out = [f"{s}: skipped, no valid {', '.join(m + '*' for m in missing)}"
               for s, missing in self.incomplete.items()]
        textbook = sorted({n for e in self.entries for n, s in e.sources.items() if s == TEXTBOOK})
        if textbook:
            out.append("no stored free energies for "
                       + ", ".join(f"{n}* (+{TEXTBOOK_CORRECTIONS[n]:.2f} eV)" for n in textbook)
                       + ": E_ads plus the textbook dZPE - TdS (Nørskov et al. 2004, 2005; Man et "
                         "al. 2011) used; run the screen with --free-energy for the MLIP's own")
        for r in self.results:
            out += [f"{r.surface}: chemical step {i + 1} ({self.network.steps[i].label}) is "
                    f"uphill by {r.step_free_energies[i]:.2f} eV" for i in r.chemical_barriers]
        lacking = [e.surface for e, u in zip(self.entries, self.uncertainty)
                   if u.limiting_potential_std is None]
        if self.has_uncertainty and lacking:
            out.append(f"no P(best): {', '.join(lacking)} ha{'s' if len(lacking) == 1 else 've'} "
                       "no committee members (screen them with a committee model)")
        return out

    def scaling_lines(self) -> list[str]:
        out = []
        for fit in self.fits.values():
            how = f"fit over {fit.n} surfaces, MAE {fit.mae:.2f} eV" if fit.n else \
                "universal scaling (Man et al. 2011), fewer than two surfaces here"
            out.append(f"scaling: dG({fit.y}*) = {fit.slope:.3f} dG({fit.x}*) "
                       f"{fit.intercept:+.3f} eV ({how})")
        return out

    def write(self, folder: Path, potential: float | None = None) -> Path:
        """Diagram, volcano (with error bars), scaling plot, CSV and JSON under ``folder``,
        named after the reaction and the solvation convention; the files' common stem."""
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / "_".join(filter(None, ("che", self.network.name, self.solvation.tag)))
        caption = self.solvation.label + "; coverage (ML): " + "; ".join(
            f"{e.surface} {e.coverage_label()}" for e in self.entries)
        save_figure(free_energy_diagram(self.results, potential or 0.0, caption),
                    f"{stem}_diagram.png")
        save_figure(volcano_plot(self.results, self.entries, self.fits, caption,
                                 self.uncertainty), f"{stem}_volcano.png")
        if self.fits:
            save_figure(scaling_plot(self.entries, self.fits, self.network, caption),
                        f"{stem}_scaling.png")
        report = self.as_dict()
        write_csv(Path(f"{stem}.csv"), report, self.solvation.label)
        Path(f"{stem}.json").write_text(json.dumps(report, indent=1))
        return stem


def campaign_folder(out: Path | None, campaign: str | None, database: str,
                    network: ReactionNetwork) -> Path:
    """OUT/CAMPAIGN/REACTION; a campaign name that is not a plain folder name is refused."""
    if campaign is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", campaign):
        raise WorkflowInputError(f"campaign name {campaign!r}: use letters, digits, _ . -")
    return (out or DEFAULT_OUT) / (campaign or database) / network.name


def dft_checked(entry: SurfaceFreeEnergies, validations: list[dict]) -> list[str]:
    """Intermediates of ``entry`` ('O*', ...) with a stored GPAW validation
    (``dft_validation``) of the same slab and the same screen settings."""
    names = {adsorbate_key(v["adsorbate"]) for v in validations
             if v.get("slab_id") == entry.slab_id and v.get("dft_code", "gpaw") == "gpaw"
             and v.get("screen_settings_id") == entry.settings_id}
    return [f"{n}*" for n in entry.values if n in names]


def write_csv(path: Path, report: dict, solvation_label: str) -> None:
    """One row per surface of :meth:`CHEReport.as_dict`; an empty cell where a sigma or a
    probability is None (no committee)."""
    names = [n.rstrip("*") for n in report["surfaces"][0]["delta_g"]]
    steps = range(1, len(report["surfaces"][0]["steps"]) + 1)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["surface", "settings_id", *(f"dG_{n}" for n in names),
                         *(f"dG_std_{n}" for n in names),
                         *(f"coverage_ml_{n}" for n in names), *(f"source_{n}" for n in names),
                         *(f"dG_step{i}" for i in steps), *(f"dG_std_step{i}" for i in steps),
                         "limiting_potential", "limiting_potential_std",
                         "potential_determining_step", "p_potential_determining_step",
                         "overpotential", "p_best", "solvation"])
        for s in report["surfaces"]:
            pds = s["potential_determining_step"] or {}
            writer.writerow([s["surface"], s["settings_id"],
                             *(s["delta_g"][f"{n}*"] for n in names),
                             *(s["delta_g_std"][f"{n}*"] for n in names),
                             *(s["coverage_ml"][f"{n}*"] for n in names),
                             *(s["free_energy_source"][f"{n}*"] for n in names),
                             *(step["delta_g"] for step in s["steps"]),
                             *(step["delta_g_std"] for step in s["steps"]),
                             s["limiting_potential"], s["limiting_potential_std"],
                             pds.get("index"), pds.get("probability"), s["overpotential"],
                             s["p_best"], solvation_label])
