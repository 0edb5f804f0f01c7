"""The ``omni-flows`` command line. Each sub-command group lives in its own module."""

import sys
import warnings

import typer
from rich.console import Console

from omni_flows.db_schemas.errors import SchemaError
from omni_flows.model.errors import OmniFlowsError

from . import benchmark as benchmark_cmd
from . import db as db_cmd
from . import engine as engine_cmd
from . import model as model_cmd
from . import query as query_cmd
from . import report as report_cmd
from . import screen as screen_cmd
from . import train as train_cmd
from . import validate as validate_cmd

app = typer.Typer(
    name="omni-flows",
    help="High-throughput adsorption screening with a multi-domain equivariant MLIP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(model_cmd.app, name="model")
app.add_typer(db_cmd.app, name="db")
app.command("query")(query_cmd.query)
app.command("train")(train_cmd.train)
app.command("submit")(engine_cmd.submit)
app.command("worker")(engine_cmd.worker)
app.command("remote-config")(engine_cmd.remote_config)
app.add_typer(screen_cmd.app, name="screen")
app.add_typer(report_cmd.app, name="report")
app.add_typer(benchmark_cmd.app, name="benchmark")
app.command("validate")(validate_cmd.validate)


def main() -> None:
    """Console-script entry point: user errors print one clear line, exit code 2."""
    # jobflow's own deprecation notice, printed once per job, drowns the progress display
    warnings.filterwarnings("ignore", category=FutureWarning, module="jobflow")
    try:
        app()
    except (OmniFlowsError, SchemaError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
