"""Flows handed over as files: jobflow's JSON (``flow.to_json()`` / monty ``dumpfn``)."""

import json
from pathlib import Path

from jobflow import Flow, Job
from monty.json import MontyDecoder

from omni_flows.errors import InvalidFlowError


def load_flow(path: str | Path) -> Flow | Job:
    """The Flow or Job serialized in ``path``; its functions must be importable here."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidFlowError(f"cannot read flow file {path}: {exc.strerror}") from None
    try:
        obj = json.loads(text, cls=MontyDecoder)
    except (ValueError, ImportError, AttributeError) as exc:
        raise InvalidFlowError(
            f"{path} is not a serialized jobflow Flow ({type(exc).__name__}: {exc}); "
            "write one with Path(...).write_text(flow.to_json())"
        ) from None
    if not isinstance(obj, (Flow, Job)):
        raise InvalidFlowError(f"{path} holds a {type(obj).__name__}, not a jobflow Flow or Job")
    return obj
