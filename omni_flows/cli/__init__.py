"""The ``omni-flows`` command line. Each sub-command group lives in its own module."""

import sys

import typer
from rich.console import Console

from omni_flows.model.errors import OmniFlowsError

from . import model as model_cmd

app = typer.Typer(
    name="omni-flows",
    help="High-throughput adsorption screening with a multi-domain equivariant MLIP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(model_cmd.app, name="model")


def main() -> None:
    """Console-script entry point: user errors print one clear line, exit code 2."""
    try:
        app()
    except OmniFlowsError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
