"""``omni-flows report che --reaction orr``: the computational hydrogen electrode on stored results.

Per surface of ``adsorption_best`` (optionally filtered): dG of every intermediate and
step, U_L, the PDS and, with a committee, each sigma, P(best of the campaign) and
P(PDS) (omni_flows.che_report). Figures, CSV and JSON go to ``OUT/CAMPAIGN/REACTION/``
(CAMPAIGN: the database); one campaign's or convention's files never overwrite
another's. ``--json`` prints the JSON object alone.
"""

import json
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
                                 help="orr, oer, her, co2rr or nrr (see reactions.yaml)"),
    filter_json: str = typer.Option(None, "--filter", "-f",
                                    help="MongoDB filter on adsorption_best, as JSON"),
    potential: float = typer.Option(None, "--potential", "-U",
                                    help="V vs RHE for the diagram (a second panel is at U0)"),
    campaign: str = typer.Option(None, help="name of the results folder; default: the database"),
    out: Path = typer.Option(None, help="folder of the campaign folders (default: che-results)"),
    solvation: str = typer.Option(
        None, help="none (vacuum, the default), a preset (viswanathan2012: OH* -0.50, OOH* "
        "-0.25 eV) or eV per intermediate, e.g. OH=-0.5,OOH=-0.25"),
    as_json: bool = typer.Option(False, "--json",
                                 help="print the report as one JSON object, nothing else"),
) -> None:
    """Step free energies, limiting potentials (± sigma), diagram and volcano from stored E_ads."""
    from omni_flows.che import Solvation
    from omni_flows.che_report import CHEReport, campaign_folder
    from omni_flows.db_schemas.query import build_filter
    from omni_flows.results import best_matching, gpaw_validations_of
    from omni_flows.settings import load_settings
    from omni_flows.stores import connect_database
    from omni_flows.workflows.thermo.reactions import get_reaction

    network = get_reaction(reaction)  # an unknown reaction fails before the database
    convention = Solvation.parse(solvation, network)  # so does a bad --solvation
    criteria = build_filter([], filter_json)
    settings = load_settings()
    folder = campaign_folder(out, campaign, settings.database, network)  # and a bad name
    db = connect_database(settings)
    docs = best_matching(db, criteria)
    validations = gpaw_validations_of(db, {d.get("slab_id") for d in docs})
    report = CHEReport.from_documents(docs, network, convention, validations)
    if as_json:
        print(json.dumps(report.as_dict(), indent=1))
        return
    console = Console()
    console.print(f"[bold]{network.title}[/]  ({network.source})")
    console.print(convention.label)
    print_table(console, _table(report.as_dict(), report.has_uncertainty))
    for line in [f"[yellow]{w}[/]" for w in report.warnings()] + report.scaling_lines():
        console.print(line)
    stem = report.write(folder, potential)
    console.print(f"diagram {stem}_diagram.png, volcano {stem}_volcano.png, table {stem}.csv, "
                  f"report {stem}.json")


def _table(report: dict, uncertainty: bool) -> Table:
    """One row per surface; 'value±sigma' where the committee gives a sigma."""
    first = report["surfaces"][0]
    table = Table(title=f"{report['reaction'].upper()}: dG of each step at U = 0 V vs RHE (eV)")
    table.add_column("surface")
    table.add_column("θ (ML)", justify="right", no_wrap=True)
    columns = [f"dG {n}" for n in first["delta_g"]]
    columns += [f"step {i + 1}" for i in range(len(first["steps"]))]
    columns += ["U_L (V)", "PDS", "eta (V)"] + (["P(best)", "P(PDS)"] if uncertainty else [])
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("DFT-checked")
    for s in report["surfaces"]:
        pds = s["potential_determining_step"] or {}
        table.add_row(
            s["surface"], _coverage(s["coverage_ml"]),
            *(_pm(s["delta_g"][n], s["delta_g_std"][n]) for n in s["delta_g"]),
            *(_pm(step["delta_g"], step["delta_g_std"]) for step in s["steps"]),
            _pm(s["limiting_potential"], s["limiting_potential_std"]),
            _fmt(pds.get("index"), "{}"), _fmt(s["overpotential"]),
            *([_fmt(s["p_best"]), _fmt(pds.get("probability"))] if uncertainty else []),
            " ".join(s["dft_checked"]) or "-")
    table.caption = "; ".join(f"step {i}: {s['step']}" for i, s in enumerate(first["steps"], 1))
    return table


def _coverage(coverages: dict) -> str:
    """'0.25' when every intermediate has one coverage, else 'OH* 0.25, O* 0.5'."""
    values = {_fmt(c, "{:.3g}") for c in coverages.values()}
    if len(values) == 1:
        return values.pop()
    return ", ".join(f"{n} {_fmt(c, '{:.3g}')}" for n, c in coverages.items())


def _fmt(value, form: str = "{:.2f}") -> str:
    return "-" if value is None else form.format(value)


def _pm(value, sigma) -> str:
    return _fmt(value) + ("" if sigma is None else f"±{sigma:.2f}")
