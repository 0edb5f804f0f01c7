"""Validating stored screen results against DFT, for the command line, below it
(``omni-flows validate``).

The CLI parses options and renders tables; what happens between lives here: the
option texts read into settings objects (which check them, before the database), which
stored results are validated (:func:`omni_flows.results.check_selection`: lowest E_ads
or largest sigma first), the flow run and the documents it stored.
"""

from omni_flows.model.errors import OmniFlowsError

DEFAULT_TOP = 3  # results (r2SCAN) or placements per result (GPAW) validated
DEFAULT_DFT = "none"  # the model's r2SCAN task alone


class ValidateInputError(OmniFlowsError, ValueError):
    """Command-line input of a validation that cannot be run."""



def check_top(top: int | None) -> int:
    top = DEFAULT_TOP if top is None else top
    if top < 1:
        raise ValidateInputError(f"--top must be at least 1, not {top}")
    return top


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


def run_r2scan(maker, top: int, adsorbates: list[str] | None, select: str, settings,
               console) -> list[dict]:
    """The model's r2SCAN task (and PySCF or VASP r2SCAN) of the ``top`` results that
    ``select`` names; the stored ``r2scan_validation`` documents."""
    from omni_flows.engines.local import run_local
    from omni_flows.results import documents_of_jobs, validation_targets
    from omni_flows.stores import connect_database

    db = connect_database(settings)
    targets = validation_targets(db, top, adsorbates, maker.mlip.model, select)
    flow = maker.make(targets)
    console.print(f"[bold]{flow.name}[/]: {len(targets)} results ({select} first), "
                  f"{maker.mlip.model}/{maker.mlip.task}, dft {maker.dft}")
    run_local(flow, settings=settings)
    uuids = [j.uuid for j, _ in flow.iterflow() if j.name.startswith("r2SCAN validation")]
    return documents_of_jobs(db, "r2scan_validation", uuids)


def run_gpaw(gpaw, top: int, adsorbates: list[str] | None, model: str | None,
             systems: int | None, select: str, settings, console) -> tuple[list[dict], dict]:
    """GPAW single points (``gpaw``: GPAWSettings) of the K = ``top`` lowest placements of
    each (slab, adsorbate) that ``select`` names (``systems`` of them; None: all); the
    stored ``dft_validation`` documents and the campaign summary (AdsorbML success, MAE)."""
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
    targets, asked = gpaw_validation_targets(db, top, adsorbates, model, systems, select)
    console.print(f"[bold]GPAW validation[/]: {len(targets)} (slab, adsorbate) of {model} "
                  f"({select} first), K = {top}, {gpaw.level()}")
    if top == 1:
        console.print("[yellow]K = 1: the AdsorbML success is 1 by construction[/]")
    docs = []
    if targets:
        flow = GPAWValidationMaker(gpaw=gpaw).make(targets)
        run_local(flow, settings=settings)
        uuids = [j.uuid for j, _ in flow.iterflow() if j.name.startswith(DOCUMENT_JOB)]
        docs = documents_of_jobs(db, "dft_validation", uuids)
    summary = campaign_summary(docs, n_asked=asked)
    return docs, {**summary, "model": model, "dft_level": gpaw.level(), "settings": gpaw.key(),
                  "top_k": top, "select": select}


# the fields of each validated (slab, adsorbate) in `validate --dft gpaw --json`
GPAW_JSON_FIELDS = ("system_id", "slab_id", "adsorbate", "dft_adsorption_energy",
                    "mlip_adsorption_energy", "lowest_dft_adsorption_energy",
                    "adsorbml_success", "placements")


def gpaw_json(docs: list[dict], summary: dict) -> dict:
    return {**summary, "targets": [{k: d[k] for k in GPAW_JSON_FIELDS} for d in docs]}
