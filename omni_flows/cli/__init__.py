"""The ``omni-flows`` command line. Each sub-command group lives in its own module."""

import signal
import sys
import warnings

import typer
from rich.console import Console
from rich.markup import escape

import omni_flows
from omni_flows.errors import EXIT_CALCULATION_FAILED, exit_code, user_error_message

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
app.command("status")(engine_cmd.status)
app.command("remote-config")(engine_cmd.remote_config)
app.add_typer(screen_cmd.app, name="screen")
app.add_typer(report_cmd.app, name="report")
app.add_typer(benchmark_cmd.app, name="benchmark")
app.command("validate")(validate_cmd.validate)


# exit codes: 2 bad input, 3 a calculation that failed (omni_flows.errors), 130 Ctrl-C
# (128 + SIGINT)
EXIT_INTERRUPTED = 130
# commands that evaluate the model many times: their process keeps freed memory
# (glibc; 2-3x faster CPU steps, see omni_flows.model.inference.keep_freed_memory)
MODEL_COMMANDS = frozenset({"screen", "benchmark", "validate", "train", "submit", "worker"})


def _opt_in_process_settings(argv: list[str]) -> None:
    """Process-wide settings the library leaves alone, turned on for this CLI process."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command in MODEL_COMMANDS:
        _keep_freed_memory()


def _keep_freed_memory() -> None:
    from omni_flows.model.inference import keep_freed_memory

    keep_freed_memory()


def main() -> None:
    """Console-script entry point: a user's mistake is one clear line and exit code 2 (3: a
    calculation failed)."""
    run(app, model_command=None)


def run(command, model_command: bool | None = None) -> None:
    """Run ``command()`` (a typer app) as the CLI does: the one place errors become exit codes.

    Errors of the project's family (``OmniFlowsError``, ``SchemaError``) and an
    unreachable or refusing MongoDB print their message as one line and exit 2, a
    calculation that ran and failed (``CalculationError``) exits 3; any other
    exception is a bug and keeps its traceback. Ctrl-C prints what was interrupted
    (a command may raise ``KeyboardInterrupt("what to do now")`` to say how to
    resume) and exits 130. ``model_command``: whether the process runs the model
    (keeps freed memory); None decides from the sub-command in ``sys.argv``.
    """
    # jobflow's own deprecation notice, printed once per job, drowns the progress display
    warnings.filterwarnings("ignore", category=FutureWarning, module="jobflow")
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    # loaded: Ctrl-C is Python's KeyboardInterrupt again (omni_flows/__init__.py exited
    # quietly while the modules loaded), so that commands can say how to resume
    if signal.getsignal(signal.SIGINT) is getattr(omni_flows, "_interrupted_while_loading", 0):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if model_command is None:
            _opt_in_process_settings(sys.argv[1:])
        elif model_command:
            _keep_freed_memory()
        command()  # click/typer: usage errors exit 2 with their own message
    except SystemExit as exc:
        interrupt = _keyboard_interrupt(exc)
        if interrupt is None:
            raise
        _exit_interrupted(console, interrupt)
    except KeyboardInterrupt as exc:  # outside a command (while importing, say)
        _exit_interrupted(console, exc)
    except Exception as exc:
        message = user_error_message(exc)
        if message is None:
            raise  # a bug: its traceback is the report
        code = exit_code(exc)
        what = "calculation failed" if code == EXIT_CALCULATION_FAILED else "error"
        console.print(f"[bold red]{what}:[/] {escape(message)}")
        sys.exit(code)


def _exit_interrupted(console: Console, interrupt: KeyboardInterrupt) -> None:
    said = str(interrupt) if interrupt.args else ""
    console.print(f"[bold yellow]interrupted[/] (Ctrl-C){': ' + escape(said) if said else ''}")
    sys.exit(EXIT_INTERRUPTED)


def _keyboard_interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C behind an exit (typer turns it into a silent exit 130), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
