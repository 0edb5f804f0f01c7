"""``omni-flows report che --reaction orr``: the computational hydrogen electrode on stored results.

Reads the ``adsorption_best`` documents of the database (optionally filtered), prints
per surface the free energy of every step, the limiting potential and the
potential-determining step, and writes a free-energy diagram, a volcano, the scaling
relations and a CSV under ``OUT/CAMPAIGN/REACTION/`` (CAMPAIGN defaults to the database
name): one campaign's report never overwrites another's.
"""

import csv
import re
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Reports on stored results: the computational hydrogen electrode.",
                  no_args_is_help=True)


@app.command("che")
def che(
    reaction: str = typer.Option(..., "--reaction", "-r",
                                 help="orr, oer, her, co2rr or nrr (see workflows/reactions.yaml)"),
    filter_json: str = typer.Option(None, "--filter", "-f",
                                    help="MongoDB filter on adsorption_best, as JSON"),
    potential: float = typer.Option(0.0, "--potential", "-U",
                                    help="V vs RHE for the diagram (a second panel is at U0)"),
    campaign: str = typer.Option(None, help="name of the results folder; default: the database"),
    out: Path = typer.Option(Path("che-results"), help="folder of the campaign folders"),
) -> None:
    """Step free energies, limiting potentials, diagram and volcano from stored E_ads."""
    from omni_flows.che import (
        TEXTBOOK,
        TEXTBOOK_CORRECTIONS,
        analyse,
        free_energies_from_documents,
        free_energy_diagram,
        save_figure,
        scaling_plot,
        scaling_relations,
        volcano_plot,
    )
    from omni_flows.db_schemas.query import build_filter
    from omni_flows.results import best_matching
    from omni_flows.settings import load_settings
    from omni_flows.stores import connect_database
    from omni_flows.workflows.errors import WorkflowInputError
    from omni_flows.workflows.reactions import get_reaction

    network = get_reaction(reaction)  # an unknown reaction fails before the database
    criteria = build_filter([], filter_json)
    if campaign is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", campaign):
        raise WorkflowInputError(f"campaign name {campaign!r}: use letters, digits, _ . -")
    settings = load_settings()
    docs = best_matching(connect_database(settings), criteria)
    entries, incomplete = free_energies_from_documents(docs, network)
    console = Console()
    for surface, missing in incomplete.items():
        console.print(f"[yellow]{surface}: skipped, no valid {', '.join(m + '*' for m in missing)}")
    if not entries:
        raise WorkflowInputError(
            f"no surface in adsorption_best has every {network.name.upper()} intermediate "
            f"({', '.join(i + '*' for i in network.intermediates)}); screen them first")

    results = [analyse(network, e.values, e.surface) for e in entries]
    console.print(f"[bold]{network.title}[/]  ({network.source})")
    console.print(_table(network, results, entries))
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
    stem = folder / f"che_{network.name}"
    save_figure(free_energy_diagram(results, potential), f"{stem}_diagram.png")
    save_figure(volcano_plot(results, entries, fits), f"{stem}_volcano.png")
    if fits:
        save_figure(scaling_plot(entries, fits, network), f"{stem}_scaling.png")
    _write_csv(Path(f"{stem}.csv"), network, results, entries)
    console.print(f"diagram {stem}_diagram.png, volcano {stem}_volcano.png, table {stem}.csv")


def _table(network, results, entries) -> Table:
    table = Table(title=f"{network.name.upper()}: dG of each step at U = 0 V vs RHE (eV)")
    table.add_column("surface")
    for name in network.intermediates:
        table.add_column(f"dG {name}*", justify="right")
    for i in range(len(network.steps)):
        table.add_column(f"step {i + 1}", justify="right")
    for col in ("U_L (V)", "PDS", "eta (V)"):
        table.add_column(col, justify="right")
    for r, e in zip(results, entries):
        table.add_row(
            r.surface, *(f"{e.values[n]:.2f}" for n in network.intermediates),
            *(f"{g:.2f}" for g in r.step_free_energies),
            "-" if r.limiting_potential is None else f"{r.limiting_potential:.2f}",
            "-" if r.potential_determining_step is None else str(r.potential_determining_step + 1),
            "-" if r.overpotential is None else f"{r.overpotential:.2f}",
        )
    table.caption = "; ".join(f"step {i + 1}: {s.label}" for i, s in enumerate(network.steps))
    return table


def _write_csv(path: Path, network, results, entries) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["surface", *(f"dG_{n}" for n in network.intermediates),
                         *(f"source_{n}" for n in network.intermediates),
                         *(f"dG_step{i + 1}" for i in range(len(network.steps))),
                         "limiting_potential", "potential_determining_step", "overpotential"])
        for r, e in zip(results, entries):
            writer.writerow([r.surface, *(e.values[n] for n in network.intermediates),
                             *(e.sources[n] for n in network.intermediates),
                             *r.step_free_energies, r.limiting_potential,
                             None if r.potential_determining_step is None
                             else r.potential_determining_step + 1, r.overpotential])
