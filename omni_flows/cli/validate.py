"""``omni-flows validate``: stored screen results checked against DFT (omni_flows.validation).

``--dft gpaw``: GPAW single points of the K lowest placements of each (slab, adsorbate),
its slab and gas references, the AdsorbML success rate and the MLIP-DFT error;
``--dft pyscf|vasp|none``: the model's r2SCAN task, with PySCF r2SCAN of molecules and
clusters, or VASP inputs. ``--select uncertain``: largest sigma first, not lowest E_ads.
"""

import json

import typer
from rich.console import Console
from rich.table import Table

from omni_flows.settings import given
from omni_flows.validation import DEFAULT_DFT, DEFAULT_TOP


def validate(
    top: int | None = typer.Option(None, "--top", "-n", help="validate N results (gpaw: N "
                                   f"lowest placements of each result; default {DEFAULT_TOP})"),
    select: str | None = typer.Option(None, help="which results: lowest (E_ads, the default) "
                                      "or uncertain (largest sigma; gpaw: with --systems)"),
    adsorbate: list[str] = typer.Option(None, "--adsorbate", "-a", help="only these (repeat)"),
    dft: str | None = typer.Option(None, help="gpaw (periodic slabs; the surface check), pyscf "
                                   f"(molecules, clusters), vasp (atomate2) or none (default "
                                   f"{DEFAULT_DFT})"),
    model: str | None = typer.Option(None, help="the screen's model (default: settings)"),
    task: str | None = typer.Option(None, help="the model's r2SCAN task"),
    device: str | None = typer.Option(None, help="cpu, cuda, auto (default: settings)"),
    basis: str | None = typer.Option(None, help="PySCF basis (and its ECP) of every term, or "
                                     "per element: 'Pt:lanl2dz,default:def2-svp'"),
    spins: str | None = typer.Option(None, help="2S values to try, e.g. '0,2'"),
    grid_level: int | None = typer.Option(None, help="PySCF integration grid level, 0-9"),
    cluster_radius: float | None = typer.Option(None, help="A: cluster cut around the site"),
    cluster_atoms: int | None = typer.Option(None, help="keep only this many nearest atoms"),
    xc: str | None = typer.Option(None, help="gpaw: PBE, RPBE or r2SCAN"),
    ecut: float | None = typer.Option(None, help="gpaw: plane-wave cutoff, eV"),
    kpts: str | None = typer.Option(None, help="gpaw: slab k-points AxBxC"),
    kpt_density: float | None = typer.Option(None, help="gpaw: k-points per A^-1 (2 pi in)"),
    smearing: float | None = typer.Option(None, help="gpaw: Fermi-Dirac width, eV"),
    box: float | None = typer.Option(None, help="gpaw: cubic box of the gas molecules, A"),
    systems: int | None = typer.Option(None, help="gpaw: only N (slab, adsorbate) results"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object (gpaw)"),
) -> None:
    """Check stored screen results against DFT: GPAW (periodic slabs) or r2SCAN (MLIP task,
    PySCF clusters and molecules, VASP inputs)."""
    from omni_flows import validation as v
    from omni_flows.results import check_selection
    from omni_flows.settings import load_settings
    from omni_flows.workflows.flows.validation import DFT_CODES

    top, dft = v.check_top(top), dft or DEFAULT_DFT
    select = check_selection(select, systems, gpaw=dft == "gpaw")
    if dft == "gpaw":
        from omni_flows.workflows.dft.gpaw_runner import GPAWSettings

        gpaw = GPAWSettings(**given(xc=xc, ecut=ecut, kpts=v.parse_kpts(kpts), box=box,
                                      kpt_density=kpt_density, smearing=smearing))
        console = Console(stderr=as_json)
        docs, summary = v.run_gpaw(gpaw, top, adsorbate, model, systems, select,
                                   load_settings(), console)
        if as_json:
            return print(json.dumps(v.gpaw_json(docs, summary), default=str))
        return console.print(gpaw_table(docs, summary))
    if dft not in DFT_CODES:  # before the database is reached
        raise v.ValidateInputError(f"--dft must be one of gpaw, {', '.join(DFT_CODES)}, "
                                   f"not {dft!r}")
    from omni_flows.workflows.dft.pyscf_r2scan import PySCFSettings
    from omni_flows.workflows.flows.validation import R2SCAN_TASK, R2SCANValidationMaker
    from omni_flows.workflows.settings import MLIPSettings
    from omni_flows.workflows.structures.clusters import ClusterSpec

    settings = load_settings()
    maker = R2SCANValidationMaker(  # every setting checked here, before the database
        mlip=MLIPSettings(model=model or settings.model, task=task or R2SCAN_TASK,
                          device=device or settings.device),
        dft=dft, cluster=ClusterSpec(**given(radius=cluster_radius, max_atoms=cluster_atoms)),
        pyscf=PySCFSettings(**given(basis=v.parse_basis(basis), spins=v.parse_spins(spins),
                                      grid_level=grid_level)))
    console = Console()
    console.print(validation_table(v.run_r2scan(maker, top, adsorbate, select, settings,
                                                console)))


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:+.3f}"


def validation_table(docs: list[dict]) -> Table:
    levels = sorted({d["dft_level"] for d in docs if d["dft_level"]})
    table = Table(title="E_ads (eV)", caption=f"DFT: {'; '.join(levels) or 'none'}")
    table.add_column("system", overflow="fold")
    for column in ("MLIP-PBE", "MLIP-r2SCAN", "DFT-r2SCAN", "r2SCAN-PBE", "MLIP-DFT"):
        table.add_column(column, justify="right", no_wrap=True)
    for d in docs:
        slab, _, adsorbate = d["system_id"].partition("|")
        bulk, miller, *_ = slab.split("/") + ["", ""]
        table.add_row(f"{bulk}({miller.replace(',', '')}) {adsorbate}", _cell(d["mlip_pbe"]),
                      _cell(d["mlip_r2scan"]), _cell(d["dft_r2scan"]),
                      _cell(d["mlip_r2scan_minus_pbe"]), _cell(d["mlip_r2scan_minus_dft"]))
    return table


def gpaw_table(docs: list[dict], summary: dict) -> Table:
    rate, mae = summary["success_rate"], summary["mae"]
    caption = (f"AdsorbML success {summary['n_success']}/{summary['n_targets']}"
               + (f" = {rate:.0%}" if rate is not None else "")
               + (f"; MLIP-DFT MAE {mae:.3f} eV over {sum(len(d['placements']) for d in docs)} "
                  "placements" if mae is not None else ""))
    table = Table(title="E_ads (eV), GPAW at the MLIP's geometries", caption=caption)
    table.add_column("system", overflow="fold")
    for column in ("K", "MLIP best", "DFT there", "DFT lowest", "MLIP-DFT", "success"):
        table.add_column(column, justify="right", no_wrap=True)
    for d in docs:
        bulk, miller, *_ = d["slab_id"].split("/") + ["", ""]
        table.add_row(f"{bulk}({miller.replace(',', '')}) {d['adsorbate']}",
                      str(len(d["placements"])), _cell(d["mlip_adsorption_energy"]),
                      _cell(d["dft_adsorption_energy"]), _cell(d["lowest_dft_adsorption_energy"]),
                      _cell(d["mlip_minus_dft"]), "yes" if d["adsorbml_success"] else "no")
    return table
