"""``omni-flows validate``: stored screen results checked against DFT.

``--dft gpaw``: periodic GPAW single points of the K lowest placements of each
(slab, adsorbate), its clean slab and gas references, the AdsorbML success rate
and the MLIP-DFT error (the surface check). ``--dft pyscf|vasp|none``: the
model's r2SCAN task, with PySCF r2SCAN on molecules and cluster models, or
VASP r2SCAN inputs.
"""

import json

import typer
from rich.console import Console
from rich.table import Table

from omni_flows.model.errors import OmniFlowsError


class ValidateInputError(OmniFlowsError, ValueError):
    """Command-line input of a validation that cannot be run."""


def parse_basis(text: str) -> str | dict[str, str]:
    """'def2-svp' or 'Pt:lanl2dz,default:def2-svp' (element -> basis)."""
    if ":" not in text:
        return text
    try:
        return dict(item.split(":") for item in text.split(","))
    except ValueError:
        raise ValidateInputError(f"--basis {text!r}: write BASIS or EL:BASIS,EL:BASIS") from None


def parse_spins(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ValidateInputError(f"--spins {text!r}: write 2S values, e.g. 0,2") from None


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


def validate(
    top: int = typer.Option(3, "--top", "-n", help="validate the N results of lowest E_ads"),
    adsorbate: list[str] = typer.Option(None, "--adsorbate", "-a", help="only these (repeat)"),
    dft: str = typer.Option("none", help="gpaw (periodic slabs, CPU; the surface check), "
                            "pyscf (molecules and cluster models), vasp (atomate2) or none"),
    model: str | None = typer.Option(None, help="the screen's model (default: settings)"),
    task: str = typer.Option("R2SCAN", help="the model's r2SCAN task"),
    device: str | None = typer.Option(None, help="cpu, cuda, auto (default: settings)"),
    basis: str = typer.Option(
        "def2-svp", help="PySCF basis (and its ECP) for every term; per element as "
        "'Pt:lanl2dz,default:def2-svp'"),
    spins: str | None = typer.Option(None, help="2S values to try, e.g. '0,2' (default: by "
                                     "electron count)"),
    grid_level: int = typer.Option(3, help="PySCF integration grid level"),
    cluster_radius: float = typer.Option(5.0, help="A: cluster cut around the binding atom"),
    cluster_atoms: int | None = typer.Option(None, help="keep only this many nearest atoms"),
    xc: str = typer.Option("PBE", help="gpaw: PBE, RPBE or r2SCAN"),
    ecut: float = typer.Option(450.0, help="gpaw: plane-wave cutoff, eV"),
    kpts: str | None = typer.Option(None, help="gpaw: slab k-points AxBxC (default: from "
                                    "--kpt-density)"),
    kpt_density: float = typer.Option(4.0, help="gpaw: k-points per A^-1 (2 pi included)"),
    smearing: float = typer.Option(0.1, help="gpaw: Fermi-Dirac width, eV"),
    box: float = typer.Option(12.0, help="gpaw: cubic box of the gas molecules, A"),
    systems: int | None = typer.Option(None, help="gpaw: validate only the N (slab, adsorbate) "
                                       "of lowest E_ads (default: all)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object (gpaw)"),
) -> None:
    """Check stored screen results against DFT: GPAW (periodic slabs) or r2SCAN (MLIP task,
    PySCF clusters and molecules, VASP inputs).

    With --dft gpaw, --top is the number K of lowest placements validated per
    (slab, adsorbate)."""
    if dft == "gpaw":
        return validate_gpaw(top=top, adsorbates=adsorbate, model=model, xc=xc, ecut=ecut,
                             kpts=kpts, kpt_density=kpt_density, smearing=smearing, box=box,
                             systems=systems, as_json=as_json)
    from omni_flows.engines.local import run_local
    from omni_flows.results import documents_of_jobs, validation_targets
    from omni_flows.settings import load_settings
    from omni_flows.stores import connect_database
    from omni_flows.workflows.clusters import ClusterSpec
    from omni_flows.workflows.pyscf_r2scan import PySCFSettings
    from omni_flows.workflows.settings import MLIPSettings
    from omni_flows.workflows.validation import DFT_CODES, R2SCANValidationMaker

    if top < 1:
        raise ValidateInputError(f"--top must be at least 1, not {top}")
    if dft not in DFT_CODES:  # before the database is reached
        raise ValidateInputError(f"--dft must be one of gpaw, {', '.join(DFT_CODES)}, "
                                 f"not {dft!r}")
    settings = load_settings()
    mlip = MLIPSettings(model=model or settings.model, task=task,
                        device=device or settings.device)  # checked before the database
    maker = R2SCANValidationMaker(
        mlip=mlip, dft=dft, cluster=ClusterSpec(radius=cluster_radius, max_atoms=cluster_atoms),
        pyscf=PySCFSettings(basis=parse_basis(basis), spins=parse_spins(spins),
                            grid_level=grid_level))
    db = connect_database(settings)
    targets = validation_targets(db, top, adsorbate, mlip.model)
    flow = maker.make(targets)
    console = Console()
    console.print(f"[bold]{flow.name}[/]: {len(targets)} results, {mlip.model}/{mlip.task}, "
                  f"dft {dft}")
    run_local(flow, settings=settings)
    uuids = [j.uuid for j, _ in flow.iterflow() if j.name.startswith("r2SCAN validation")]
    console.print(validation_table(documents_of_jobs(db, "r2scan_validation", uuids)))


def parse_kpts(text: str | None) -> tuple[int, int, int] | None:
    """'4x4x1' -> (4, 4, 1)."""
    if not text:
        return None
    try:
        grid = tuple(int(x) for x in text.lower().split("x"))
    except ValueError:
        grid = ()
    if len(grid) != 3 or min(grid) < 1:
        raise ValidateInputError(f"--kpts {text!r}: write three positive integers, e.g. 4x4x1")
    return grid


def gpaw_table(docs: list[dict], summary: dict) -> Table:
    rate = summary["success_rate"]
    mae = summary["mae"]
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


def validate_gpaw(top: int, adsorbates: list[str] | None, model: str | None, xc: str,
                  ecut: float, kpts: str | None, kpt_density: float, smearing: float, box: float,
                  systems: int | None, as_json: bool) -> None:
    """``--dft gpaw``: GPAW single points of the K lowest placements per (slab, adsorbate)."""
    from omni_flows.engines.local import run_local
    from omni_flows.results import documents_of_jobs, gpaw_validation_targets
    from omni_flows.settings import load_settings
    from omni_flows.stores import connect_database
    from omni_flows.workflows.adsorbml import campaign_summary
    from omni_flows.workflows.gpaw_runner import GPAWSettings, require_gpaw
    from omni_flows.workflows.gpaw_validation import DOCUMENT_JOB, GPAWValidationMaker

    if top < 1:
        raise ValidateInputError(f"--top must be at least 1, not {top}")
    if systems is not None and systems < 1:
        raise ValidateInputError(f"--systems must be at least 1, not {systems}")
    gpaw = GPAWSettings(xc=xc, ecut=ecut, kpts=parse_kpts(kpts), kpt_density=kpt_density,
                        smearing=smearing, box=box)  # checks its values
    require_gpaw()  # before the database: the install steps
    settings = load_settings()
    model = model or settings.model
    db = connect_database(settings)
    targets, asked = gpaw_validation_targets(db, top, adsorbates, model, systems)
    console = Console(stderr=as_json)
    console.print(f"[bold]GPAW validation[/]: {len(targets)} (slab, adsorbate) of {model}, "
                  f"K = {top}, {gpaw.level()}")
    if top == 1:
        console.print("[yellow]K = 1: the AdsorbML success is 1 by construction[/]")
    docs = []
    if targets:
        flow = GPAWValidationMaker(gpaw=gpaw).make(targets)
        run_local(flow, settings=settings)
        uuids = [j.uuid for j, _ in flow.iterflow() if j.name.startswith(DOCUMENT_JOB)]
        docs = documents_of_jobs(db, "dft_validation", uuids)
    summary = campaign_summary(docs, n_asked=asked)
    if as_json:
        out = {**summary, "model": model, "dft_level": gpaw.level(),
               "settings": gpaw.key(), "top_k": top,
               "targets": [{"system_id": d["system_id"], "slab_id": d["slab_id"],
                            "adsorbate": d["adsorbate"],
                            "dft_adsorption_energy": d["dft_adsorption_energy"],
                            "mlip_adsorption_energy": d["mlip_adsorption_energy"],
                            "lowest_dft_adsorption_energy": d["lowest_dft_adsorption_energy"],
                            "adsorbml_success": d["adsorbml_success"],
                            "placements": d["placements"]} for d in docs]}
        print(json.dumps(out, default=str))
        return
    console.print(gpaw_table(docs, summary))
