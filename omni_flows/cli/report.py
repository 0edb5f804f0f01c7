"""``omni-flows report che --reaction orr``: the computational hydrogen electrode on stored results.

Reads the ``adsorption_best`` documents of the database (optionally filtered), prints
per surface the free energy of every intermediate with its coverage (ML), of every step,
the limiting potential and the potential-determining step, and writes a free-energy
diagram, a volcano, the scaling relations, a CSV and the JSON object under
``OUT/CAMPAIGN/REACTION/`` (CAMPAIGN defaults to the database name): one campaign's
report never overwrites another's, nor one solvation convention's another's (a solvated
report's files carry the convention in their name). ``--json`` prints that object alone.
"""

import csv
import json
import re
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from omni_flows.output import print_table

app = typer.Typer(help="Reports on stored results: the computational hydrogen electrode.",
                  no_args_is_help=True)


@app.command("che")
def che(
    reaction: str = typer.Option(..., "--reaction", "-r",
                                 help="orr, oer, her, co2rr or nrr (see workflows/thermo/reactions.yaml)"),
    filter_json: str = typer.Option(None, "--filter", "-f",
                                    help="MongoDB filter on adsorption_best, as JSON"),
    potential: float = typer.Option(0.0, "--potential", "-U",
                                    help="V vs RHE for the diagram (a second panel is at U0)"),
    campaign: str = typer.Option(None, help="name of the results folder; default: the database"),
    out: Path = typer.Option(Path("che-results"), help="folder of the campaign folders"),
    solvation: str = typer.Option(
        "none", help="none (vacuum), a preset (viswanathan2012: OH* -0.50, OOH* -0.25 eV) or "
        "eV per intermediate, e.g. OH=-0.5,OOH=-0.25"),
    as_json: bool = typer.Option(False, "--json",
                                 help="print the report as one JSON object, nothing else"),
) -> None:
    """Step free energies, limiting potentials, diagram and volcano from stored E_ads."""
    from omni_flows.che import (
        TEXTBOOK,
        TEXTBOOK_CORRECTIONS,
        Solvation,
        analyse,
        free_energies_from_documents,
        free_energy_diagram,
        report_object,
        save_figure,
        scaling_plot,
        scaling_relations,
        volcano_plot,
    )
    from omni_flows.db_schemas.query import build_filter
    from omni_flows.results import best_matching, gpaw_validations_of
    from omni_flows.settings import load_settings
    from omni_flows.stores import connect_database
    from omni_flows.workflows.errors import WorkflowInputError
    from omni_flows.workflows.thermo.reactions import get_reaction

    network = get_reaction(reaction)  # an unknown reaction fails before the database
    convention = Solvation.parse(solvation, network)  # so does a bad --solvation
    criteria = build_filter([], filter_json)
    if campaign is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", campaign):
        raise WorkflowInputError(f"campaign name {campaign!r}: use letters, digits, _ . -")
    settings = load_settings()
    db = connect_database(settings)
    entries, incomplete = free_energies_from_documents(best_matching(db, criteria), network,
                                                       convention)
    if not entries:
        for surface, missing in incomplete.items():
            print(f"{surface}: skipped, no valid {', '.join(m + '*' for m in missing)}")
        raise WorkflowInputError(
            f"no surface in adsorption_best has every {network.name.upper()} intermediate "
            f"({', '.join(i + '*' for i in network.intermediates)}); screen them first")
    results = [analyse(network, e.values, e.surface) for e in entries]
    # GPAW validations of these slabs: which intermediates DFT has checked
    validations = gpaw_validations_of(db, {e.slab_id for e in entries})
    report = report_object(network, convention, results, entries, validations, incomplete)
    if as_json:
        print(json.dumps(report, indent=1))
        return

    console = Console()
    for surface, missing in incomplete.items():
        console.print(f"[yellow]{surface}: skipped, no valid {', '.join(m + '*' for m in missing)}")
    console.print(f"[bold]{network.title}[/]  ({network.source})")
    console.print(convention.label)
    print_table(console, _table(network, results, entries, report))
    textbook = sorted({n for e in entries for n, s in e.sources.items() if s == TEXTBOOK})
    if textbook:
        console.print("[yellow]no stored free energies for "
                      + ", ".join(f"{n}* (+{TEXTBOOK_CORRECTIONS[n]:.2f} eV)" for n in textbook)
                      + ": E_ads plus the textbook dZPE - TdS (Nørskov et al. 2004, 2005; Man et "
                        "al. 2011) used; run the screen with --free-energy for the MLIP's own")
    for r in results:
        for i in r.chemical_barriers:
            console.print(f"[yellow]{r.surface}: chemical step {i + 1} "
                          f"({network.steps[i].label}) is uphill by "
                          f"{r.step_free_energies[i]:.2f} eV")
    fits = scaling_relations(entries, network)
    for fit in fits.values():
        how = f"fit over {fit.n} surfaces, MAE {fit.mae:.2f} eV" if fit.n else \
            "universal scaling (Man et al. 2011), fewer than two surfaces here"
        console.print(f"scaling: dG({fit.y}*) = {fit.slope:.3f} dG({fit.x}*) "
                      f"{fit.intercept:+.3f} eV ({how})")

    folder = out / (campaign or settings.database) / network.name
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / "_".join(filter(None, ("che", network.name, convention.tag)))
    caption = convention.label + "; coverage (ML): " + "; ".join(
        f"{e.surface} {e.coverage_label()}" for e in entries)
    save_figure(free_energy_diagram(results, potential, caption), f"{stem}_diagram.png")
    save_figure(volcano_plot(results, entries, fits, caption), f"{stem}_volcano.png")
    if fits:
        save_figure(scaling_plot(entries, fits, network, caption), f"{stem}_scaling.png")
    _write_csv(Path(f"{stem}.csv"), network, results, entries, convention)
    Path(f"{stem}.json").write_text(json.dumps(report, indent=1))
    console.print(f"diagram {stem}_diagram.png, volcano {stem}_volcano.png, table {stem}.csv, "
                  f"report {stem}.json")


def _table(network, results, entries, report) -> Table:
    table = Table(title=f"{network.name.upper()}: dG of each step at U = 0 V vs RHE (eV)")
    table.add_column("surface")
    table.add_column("θ (ML)", justify="right", no_wrap=True)
    for name in network.intermediates:
        table.add_column(f"dG {name}*", justify="right", no_wrap=True)
    for i in range(len(network.steps)):
        table.add_column(f"step {i + 1}", justify="right", no_wrap=True)
    for col in ("U_L (V)", "PDS", "eta (V)"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("DFT-checked")
    for r, e, row in zip(results, entries, report["surfaces"]):
        table.add_row(
            r.surface, e.coverage_label(), *(f"{e.values[n]:.2f}" for n in network.intermediates),
            *(f"{g:.2f}" for g in r.step_free_energies),
            "-" if r.limiting_potential is None else f"{r.limiting_potential:.2f}",
            "-" if r.potential_determining_step is None else str(r.potential_determining_step + 1),
            "-" if r.overpotential is None else f"{r.overpotential:.2f}",
            " ".join(row["dft_checked"]) or "-",
        )
    table.caption = "; ".join(f"step {i + 1}: {s.label}" for i, s in enumerate(network.steps))
    return table


def _write_csv(path: Path, network, results, entries, convention) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["surface", "settings_id", *(f"dG_{n}" for n in network.intermediates),
                         *(f"coverage_ml_{n}" for n in network.intermediates),
                         *(f"source_{n}" for n in network.intermediates),
                         *(f"dG_step{i + 1}" for i in range(len(network.steps))),
                         "limiting_potential", "potential_determining_step", "overpotential",
                         "solvation"])
        for r, e in zip(results, entries):
            writer.writerow([r.surface, e.settings_id,
                             *(e.values[n] for n in network.intermediates),
                             *(e.coverages.get(n) for n in network.intermediates),
                             *(e.sources[n] for n in network.intermediates),
                             *r.step_free_energies, r.limiting_potential,
                             None if r.potential_determining_step is None
                             else r.potential_determining_step + 1, r.overpotential,
                             convention.label])
