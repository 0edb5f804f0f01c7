"""``omni-flows screen surfaces|mofs``: one Flow for a whole campaign, run, stored and reported.

``--engine fireworks|jobflow-remote`` queues the campaign's Flow on that engine
instead of running it here (``omni-flows status`` follows it; the same command
without ``--engine`` then prints the table from the store, recomputing nothing).

Lists are written as on the issue: ``--bulk Pt Cu --facets 111 100 --adsorbates CO O H``
or ``--cif A.cif B.cif --guests CO2 H2O`` (each option takes every value up to the
next option; repeating it works too). The running itself lives in
:mod:`omni_flows.screening`, the tables and files in :mod:`omni_flows.report`.
"""

import time
from pathlib import Path

import typer
from rich.console import Console

from omni_flows.model.defaults import (BACKENDS, DEFAULT_FMAX, DEFAULT_OPTIMIZER, DEFAULT_STEPS,
                                       OPTIMIZERS)
from omni_flows.output import check_writable_dir, print_table
from omni_flows.report import file_stem, write_table
from omni_flows.screening import (ScreenInputError, check_engine, mlip_settings,
                                  model_label, quiet_third_parties, run_or_submit,
                                  warn_out_of_domain)
from omni_flows.settings import given, load_settings

app = typer.Typer(help="Screening campaigns: adsorbates on surfaces, guests in MOFs.",
                  no_args_is_help=True)

LIST_OPTIONS = {"--bulk": "bulks", "--facets": "facets", "--adsorbates": "adsorbates"}
MOF_LIST_OPTIONS = {"--cif": "cifs", "--guests": "guests"}


def split_lists(
    tokens: list[str], options: dict[str, str] = LIST_OPTIONS, command: str = "surfaces"
) -> dict[str, list[str]]:
    """``['--bulk', 'Pt', 'Cu', '--facets', '111']`` -> ``{'bulks': ['Pt', 'Cu'], ...}``."""
    found: dict[str, list[str]] = {name: [] for name in options.values()}
    current = None
    for token in tokens:
        if token in options:
            current = options[token]
        elif token.startswith("--"):
            raise ScreenInputError(
                f"unknown option {token}; see `omni-flows screen {command} --help`")
        elif current is None:
            raise ScreenInputError(f"{token!r} follows no option: write "
                                   f"{', '.join(options)} before the values")
        else:
            found[current] += [v for v in token.split(",") if v]
    return found


# the options both screen commands share: one definition each
MODEL = typer.Option(None, help="MLIP name or checkpoint (default: settings, 7net-mf-0)")
TASK = typer.Option(None, help="task / functional of a multi-task model (default: settings' "
                    "task, PBE; none for a single-task model such as 7net-0)")
DEVICE = typer.Option(None, help="auto, cpu, cuda, cuda:N (default: settings)")
BACKEND = typer.Option(None, help=f"kernels: {', '.join(BACKENDS)} (same numbers; default "
                       f"{BACKENDS[0]})")
OPTIMIZER = typer.Option(None, help=f"relaxation optimizer: {' or '.join(OPTIMIZERS)} (default "
                         f"{DEFAULT_OPTIMIZER})")
FMAX = typer.Option(None, help=f"eV/A: largest force on a free atom at the end (> 0) "
                    f"(default {DEFAULT_FMAX})")
STEPS = typer.Option(None, help=f"optimizer step limit of every relaxation (>= 1) "
                     f"(default {DEFAULT_STEPS})")
SEED = typer.Option(None, help="seed of the random placements (default 0)")
OUT = typer.Option(Path("screen-results"), help="folder of the table and heatmap; files are "
                   "named after the campaign's settings id")
ENGINE = typer.Option(None, help="local (default): run here; fireworks or jobflow-remote: "
                      "queue the campaign there without running it (`omni-flows status`)")
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command("surfaces", context_settings=EXTRA)
def surfaces(
    lists: list[str] = typer.Argument(
        None, metavar="--bulk B... --facets HKL... --adsorbates A...",
        help="bulks (element or structure file), facets (111, 1-10, 2,1,1), adsorbates "
        "(built-in names, or FILE:BINDING_INDEX: a molecule from a file is referenced to "
        "itself in the gas phase)"),
    n_random: int | None = typer.Option(None, help="random placements per adsorbate and "
                                        "slab, after the distinct sites (default 2)"),
    max_placements: int | None = typer.Option(None, help="cap on placements per adsorbate "
                                              "and slab (>= 1)"),
    coverage: int | None = typer.Option(
        None, help="adsorbates per cell, placed as far apart as the cell allows; energies are "
        "per adsorbate, the documents give the coverage in ML too (default 1)"),
    tilt: float | None = typer.Option(
        None, help="degrees: tip each molecule's axis at random within this cone of the "
        "surface normal; 0: upright (default 20, AdsorbML's)"),
    layers: int | None = typer.Option(None, help="slab layers (default 4)"),
    fixed_layers: int | None = typer.Option(None, help="bottom layers held fixed (< --layers) "
                                            "(default 2)"),
    supercell: str | None = typer.Option(None, help="lateral cell, e.g. 2x2 (default: >= 8 A)"),
    terminations: str | None = typer.Option(
        None, help="first (default): one termination per facet (pymatgen's first); all: every "
        "distinct termination (alloys, intermetallics, oxides)"),
    reference: str | None = typer.Option(
        None, help="gas_molecules (default): relaxed gas molecules (the adsorbate's own when "
        "it is a stable gas or a file, else H2, H2O, N2, CO combinations such as O = H2O - H2); "
        "oc20_elemental (formerly 'atomic'): OC20's per-element energies from H2, H2O, N2, CO, "
        "not isolated atoms. Another reference relaxes nothing again"),
    uncertainty: bool | None = typer.Option(
        None, "--uncertainty/--no-uncertainty", help="each E_ads ± sigma of the task's "
        "committee (docs/uncertainty.md) (default: on where the task has a committee); "
        "relaxes nothing again"),
    model: str | None = MODEL, task: str | None = TASK, device: str | None = DEVICE,
    backend: str | None = BACKEND, optimizer: str | None = OPTIMIZER,
    fmax: float | None = FMAX, steps: int | None = STEPS, seed: int | None = SEED,
    out: Path = OUT,
    free_energy: bool = typer.Option(
        False, "--free-energy", help="vibrate each best placement's adsorbate and its gas "
        "references with the MLIP: store zpe, free_energy_correction, adsorption_free_energy"),
    temperature: float | None = typer.Option(None, help="K, of --free-energy (> 0) "
                                             "(default 298.15)"),
    pressure: float | None = typer.Option(None, help="bar, gas references of --free-energy "
                                          "(> 0; water at 0.035 bar, the CHE convention) "
                                          "(default 1)"),
    batch_atoms: int | None = typer.Option(
        None, help="atoms of placements per relaxation job, the placements of several slabs "
        "and adsorbates relaxed together (default 1024; 0: one job per slab and adsorbate; "
        "the results are the same either way)"),
    engine: str | None = ENGINE,
) -> None:
    """Screen adsorbates on surfaces: build one Flow, run it locally (or queue it on
    --engine), store, rank, plot."""
    from omni_flows.report import heatmap, ranked_rows, ranked_table
    from omni_flows.results import best
    from omni_flows.stores import connect_database
    from omni_flows.workflows import PlacementSettings, SlabSpec, SurfaceCampaign
    from omni_flows.workflows.thermo.thermochemistry import FreeEnergySettings

    console, start, engine = Console(), time.perf_counter(), check_engine(engine)
    check_writable_dir(out, "--out")  # before any compute, not after it
    found = split_lists(lists or [])
    if not found["bulks"] or not found["adsorbates"]:
        raise ScreenInputError("give at least one --bulk and one --adsorbates")
    if terminations not in (None, "first", "all"):
        raise ScreenInputError(f"--terminations must be first or all, not {terminations!r}")
    campaign = SurfaceCampaign(  # every input checked by the objects, before anything runs
        bulks=found["bulks"], facets=found["facets"] or None, adsorbates=found["adsorbates"],
        mlip=mlip_settings(model, task, device, backend, optimizer, fmax, steps),
        slab_spec=SlabSpec(**given(n_layers=layers, n_fixed_layers=fixed_layers,
                                   supercell=supercell)),
        placements=PlacementSettings(**given(n_random=n_random, max_placements=max_placements,
                                             seed=seed, coverage=coverage, tilt=tilt)),
        free_energy=FreeEnergySettings(**given(
            temperature=temperature, pressure=None if pressure is None else pressure * 1e5))
        if free_energy else None,  # Pa
        all_terminations=terminations == "all", uncertainty=uncertainty,
        **given(reference=reference, batch_atoms=batch_atoms))
    settings, sid, mlip = load_settings(), campaign.settings_id, campaign.mlip
    with quiet_third_parties():
        plan = campaign.plan()
        warn_out_of_domain(console, plan.elements(), mlip)
        what = (f"model {model_label(mlip)}, fmax {mlip.fmax}, {campaign.reference.value}"
                + (", uncertainty" if campaign.uncertainty else ""))
        if not run_or_submit(campaign.make(plan), sid, what, engine, settings, console,
                             "screen surfaces"):
            return
        rows = ranked_rows(plan.select(best(connect_database(settings), sid), sid))
    if not rows:
        raise ScreenInputError(f"no results of settings {sid} in database {settings.database} "
                               "after the run; see `omni-flows query adsorption_best "
                               f"settings_id={sid}`")
    print_table(console, ranked_table(rows, title=f"best valid placements, settings {sid}"))
    stem = file_stem("surfaces", sid, [*found["bulks"], *(found["facets"] or ["111"]),
                                       *found["adsorbates"]])
    files = write_table(rows, heatmap, out, stem,
                        f"E_ads (eV), {model_label(mlip)}, settings {sid}")
    console.print(f"table {files[0]}, heatmap {files[1]} ({time.perf_counter() - start:.0f} s)")


@app.command("mofs", context_settings=EXTRA)
def mofs(
    lists: list[str] = typer.Argument(
        None, metavar="--cif FILE... --guests G...",
        help="framework CIF files (the file name is the framework id) and guest molecules "
        "(CO2, H2O, N2, CH4, ...)"),
    placements: int | None = typer.Option(None, help="random guest placements per framework "
                                          "and guest (default 3)"),
    d3: bool = typer.Option(True, "--d3/--no-d3", help="add D3(BJ) of the task's functional "
                            "(E_ads without D3 is stored as well)"),
    model: str | None = MODEL, task: str | None = TASK, device: str | None = DEVICE,
    backend: str | None = BACKEND, optimizer: str | None = OPTIMIZER,
    fmax: float | None = FMAX, steps: int | None = STEPS, seed: int | None = SEED,
    out: Path = OUT, engine: str | None = ENGINE,
) -> None:
    """Screen guests in MOFs: build one Flow, run it locally (or queue it on --engine),
    store, rank, plot."""
    from omni_flows.report import mof_heatmap, mof_ranked_rows, mof_ranked_table
    from omni_flows.results import mof_results
    from omni_flows.stores import connect_database
    from omni_flows.workflows.flows.mof_campaign import MOFCampaign

    console, start, engine = Console(), time.perf_counter(), check_engine(engine)
    check_writable_dir(out, "--out")  # before any compute, not after it
    found = split_lists(lists or [], MOF_LIST_OPTIONS, "mofs")
    if not found["cifs"] or not found["guests"]:
        raise ScreenInputError("give at least one --cif and one --guests")
    campaign = MOFCampaign(
        cifs=found["cifs"], guests=found["guests"], dispersion=d3,
        mlip=mlip_settings(model, task, device, backend, optimizer, fmax, steps),
        **given(seed=seed, n_placements=placements))
    settings = load_settings()
    with quiet_third_parties():
        flow = campaign.make()  # every input checked here: nothing has run yet
        sid, mlip = campaign.maker().settings_id, campaign.mlip
        what = f"model {model_label(mlip)}, D3 {'on' if d3 else 'off'}"
        if not run_or_submit(flow, sid, what, engine, settings, console, "screen mofs"):
            return
        names, guests = [Path(c).stem for c in found["cifs"]], list(found["guests"])
        docs = mof_results(connect_database(settings), sid, names, guests)
    rows = mof_ranked_rows(docs)
    print_table(console, mof_ranked_table(rows, title=f"best valid placements, settings {sid}"))
    files = write_table(rows, mof_heatmap, out, file_stem("mofs", sid, [*names, *guests]),
                        f"E_ads (eV), {model_label(mlip)}" + (" + D3" if d3 else "")
                        + f", settings {sid}")
    console.print(f"table {files[0]}, heatmap {files[1]} ({time.perf_counter() - start:.0f} s)")
