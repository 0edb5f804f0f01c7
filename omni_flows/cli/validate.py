"""``omni-flows validate``: the top candidates of stored screens at r2SCAN, MLIP and DFT."""

import typer
from rich.console import Console
from rich.table import Table

from omni_flows.model.errors import OmniFlowsError


class ValidateInputError(OmniFlowsError, ValueError):
    """Command-line input of a validation that cannot be run."""


def _latest(collection, criteria: dict) -> dict | None:
    found = list(collection.find(criteria, {"_id": 0}).sort("last_updated", -1).limit(1))
    return found[0] if found else None


def find_targets(db, top: int, adsorbates: list[str] | None, model: str) -> list:
    """The ``top`` valid best placements of lowest E_ads made with ``model``, as targets."""
    from omni_flows.db_schemas import ReferenceScheme
    from omni_flows.workflows.references import molecules_needed
    from omni_flows.workflows.validation import ValidationTarget

    criteria = {"valid": True, "provenance.model_name": model}
    if adsorbates:
        criteria["adsorbate"] = {"$in": list(adsorbates)}
    best = list(db["adsorption_best"].find(criteria, {"_id": 0})
                .sort("adsorption_energy", 1).limit(top))
    if not best:
        raise ValidateInputError(
            f"no valid adsorption_best results of model {model}"
            + (f" for {', '.join(adsorbates)}" if adsorbates else "")
            + ": run `omni-flows screen surfaces ...` first, or give the screen's --model"
        )
    targets = []
    for doc in best:
        p = doc["provenance"]
        same_model = {f"provenance.{k}": p[k] for k in ("model_name", "task", "checkpoint_hash")}
        slab = _latest(db["slabs"], {"slab_id": doc["slab_id"], **same_model})
        scheme = ReferenceScheme(p["energy_reference"]["scheme"])
        gas = {}
        for name in molecules_needed([doc["adsorbate"]], scheme):
            found = _latest(db["calculations"], {"label": f"{name}(g)", **same_model})
            if found is not None:
                gas[name] = found
        if slab is None:
            raise ValidateInputError(f"the slab {doc['slab_id']} of a stored result is missing "
                                     "from the database; run its screen again")
        targets.append(ValidationTarget.from_documents(doc, slab, gas))
    return targets


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
    dft: str = typer.Option("none", help="none, pyscf (cluster models, CPU) or vasp (atomate2)"),
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
) -> None:
    """Re-evaluate stored screen results with the model's r2SCAN task and r2SCAN DFT."""
    from omni_flows.engines.local import run_local
    from omni_flows.settings import load_settings
    from omni_flows.stores import connect_database
    from omni_flows.workflows.clusters import ClusterSpec
    from omni_flows.workflows.pyscf_r2scan import PySCFSettings
    from omni_flows.workflows.validation import DFT_CODES, R2SCANValidationMaker

    if top < 1:
        raise ValidateInputError(f"--top must be at least 1, not {top}")
    if dft not in DFT_CODES:  # before the database is reached
        raise ValidateInputError(f"--dft must be one of {', '.join(DFT_CODES)}, not {dft!r}")
    settings = load_settings()
    model = model or settings.model
    db = connect_database(settings)
    targets = find_targets(db, top, adsorbate, model)
    maker = R2SCANValidationMaker(
        model=model, task=task, device=device or settings.device, dft=dft,
        pyscf=PySCFSettings(basis=parse_basis(basis), spins=parse_spins(spins),
                            grid_level=grid_level),
        cluster=ClusterSpec(radius=cluster_radius, max_atoms=cluster_atoms),
    )
    flow = maker.make(targets)
    console = Console()
    console.print(f"[bold]{flow.name}[/]: {len(targets)} results, {model}/{task}, dft {dft}")
    run_local(flow, settings=settings)
    uuids = [j.uuid for j, _ in flow.iterflow() if j.name.startswith("r2SCAN validation")]
    docs = list(db["r2scan_validation"].find({"provenance.jobflow_uuid": {"$in": uuids}},
                                             {"_id": 0}))
    console.print(validation_table(docs))
