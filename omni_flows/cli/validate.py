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


def parse_basis(text: str | None) -> str | dict[str, str] | None:
    """'def2-svp' or 'Pt:lanl2dz,default:def2-svp' (element -> basis)."""
    if text is None or ":" not in text:
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


def given(**options) -> dict:
    """The options the user gave: left out, the settings object's own default decides."""
    return {name: value for name, value in options.items() if value is not None}


def validate(
    top: int = typer.Option(3, "--top", "-n", help="validate the N results of lowest E_ads"),
    adsorbate: list[str] = typer.Option(None, "--adsorbate", "-a", help="only these (repeat)"),
    dft: str = typer.Option("none", help="gpaw (periodic slabs, CPU; the surface check), "
                            "pyscf (molecules and cluster models), vasp (atomate2) or none"),
    model: str | None = typer.Option(None, help="the screen's model (default: settings)"),
    task: str | None = typer.Option(None, help="the model's r2SCAN task [default: R2SCAN]"),
    device: str | None = typer.Option(None, help="cpu, cuda, auto (default: settings)"),
    basis: str | None = typer.Option(
        None, help="PySCF basis (and its ECP) for every term; per element as "
        "'Pt:lanl2dz,default:def2-svp' [default: def2-svp]"),
    spins: str | None = typer.Option(None, help="2S values to try, e.g. '0,2' (default: by "
                                     "electron count)"),
    grid_level: int | None = typer.Option(None, help="PySCF integration grid level, 0-9 "
                                          "[default: 3]"),
    cluster_radius: float | None = typer.Option(None, help="A: cluster cut around the binding "
                                                "atom [default: 5]"),
    cluster_atoms: int | None = typer.Option(None, help="keep only this many nearest atoms"),
    xc: str | None = typer.Option(None, help="gpaw: PBE, RPBE or r2SCAN [default: PBE]"),
    ecut: float | None = typer.Option(None, help="gpaw: plane-wave cutoff, eV [default: 450]"),
    kpts: str | None = typer.Option(None, help="gpaw: slab k-points AxBxC (default: from "
                                    "--kpt-density)"),
    kpt_density: float | None = typer.Option(None, help="gpaw: k-points per A^-1 (2 pi "
                                             "included) [default: 4]"),
    smearing: float | None = typer.Option(None, help="gpaw: Fermi-Dirac width, eV "
                                          "[default: 0.1]"),
    box: float | None = typer.Option(None, help="gpaw: cubic box of the gas molecules, A "
                                     "[default: 12]"),
    systems: int | None = typer.Option(None, help="gpaw: validate only the N (slab, adsorbate) "
                                       "of lowest E_ads (default: all)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object (gpaw)"),
) -> None:
    """Check stored screen results against DFT: GPAW (periodic slabs) or r2SCAN (MLIP task,
    PySCF clusters and molecules, VASP inputs).

    With --dft gpaw, --top is the number K of lowest placements validated per
    (slab, adsorbate)."""
    from omni_flows.settings import load_settings
    from omni_flows.workflows.flows.validation import DFT_CODES

    if top < 1:
        raise ValidateInputError(f"--top must be at least 1, not {top}")
    if dft == "gpaw":
        from omni_flows.workflows.dft.gpaw_runner import GPAWSettings

        gpaw = GPAWSettings(**given(xc=xc, ecut=ecut, kpts=parse_kpts(kpts), box=box,
                                    kpt_density=kpt_density, smearing=smearing))
        return validate_gpaw(gpaw, top, adsorbate, model, systems, as_json, load_settings())
    if dft not in DFT_CODES:  # before the database is reached
        raise ValidateInputError(f"--dft must be one of gpaw, {', '.join(DFT_CODES)}, "
                                 f"not {dft!r}")
    from omni_flows.workflows.structures.clusters import ClusterSpec
    from omni_flows.workflows.dft.pyscf_r2scan import PySCFSettings
    from omni_flows.workflows.settings import MLIPSettings
    from omni_flows.workflows.flows.validation import R2SCAN_TASK, R2SCANValidationMaker

    settings = load_settings()
    maker = R2SCANValidationMaker(  # every setting checked here, before the database
        mlip=MLIPSettings(model=model or settings.model, task=task or R2SCAN_TASK,
                          device=device or settings.device),
        dft=dft, cluster=ClusterSpec(**given(radius=cluster_radius, max_atoms=cluster_atoms)),
        pyscf=PySCFSettings(**given(basis=parse_basis(basis), spins=parse_spins(spins),
                                    grid_level=grid_level)))
    validate_r2scan(maker, top, adsorbate, settings)


def validate_r2scan(maker, top: int, adsorbates: list[str] | None, settings) -> None:
    """The model's r2SCAN task (and PySCF or VASP r2SCAN) of the ``top`` best results."""
    from omni_flows.engines.local import run_local
    from omni_flows.results import documents_of_jobs, validation_targets
    from omni_flows.stores import connect_database

    db = connect_database(settings)
    targets = validation_targets(db, top, adsorbates, maker.mlip.model)
    flow = maker.make(targets)
    console = Console()
    console.print(f"[bold]{flow.name}[/]: {len(targets)} results, {maker.mlip.model}/"
                  f"{maker.mlip.task}, dft {maker.dft}")
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


def validate_gpaw(gpaw, top: int, adsorbates: list[str] | None, model: str | None,
                  systems: int | None, as_json: bool, settings) -> None:
    """GPAW single points (``gpaw``: GPAWSettings) of the K = ``top`` lowest placements per
    (slab, adsorbate)."""
    from omni_flows.engines.local import run_local
    from omni_flows.results import documents_of_jobs, gpaw_validation_targets
    from omni_flows.stores import connect_database
    from omni_flows.workflows.dft.adsorbml import campaign_summary
    from omni_flows.workflows.dft.gpaw_runner import require_gpaw
    from omni_flows.workflows.dft.gpaw_validation import DOCUMENT_JOB, GPAWValidationMaker

    if systems is not None and systems < 1:
        raise ValidateInputError(f"--systems must be at least 1, not {systems}")
    require_gpaw()  # before the database: the install steps
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
