"""The ``omni-flows`` command line: it parses, calls the objects below it and renders. Each
sub-command group lives in its own module; :func:`run` is where errors become exit codes."""

import signal
import sys
import warnings

import typer
from rich.console import Console
from rich.markup import escape

import omni_flows
from omni_flows import errors

from . import benchmark, db, engine, model, query, report, screen, train, validate

app = typer.Typer(name="omni-flows", no_args_is_help=True, pretty_exceptions_enable=False,
                  help="High-throughput adsorption screening with a multi-domain equivariant MLIP.")
for name, group in (("model", model), ("db", db), ("screen", screen), ("report", report),
                    ("benchmark", benchmark)):
    app.add_typer(group.app, name=name)
for name, command in (("query", query.query), ("train", train.train), ("submit", engine.submit),
                      ("worker", engine.worker), ("status", engine.status),
                      ("remote-config", engine.remote_config), ("validate", validate.validate)):
    app.command(name)(command)

# commands that evaluate the model many times: their process keeps freed memory
# (glibc; 2-3x faster CPU steps, see omni_flows.model.inference.keep_freed_memory)
MODEL_COMMANDS = frozenset({"screen", "benchmark", "validate", "train", "submit", "worker"})


def _opt_in_process_settings(argv: list[str], model_command: bool | None = None) -> None:
    """Process-wide settings the library leaves alone, turned on for this CLI process when
    it runs the model (``model_command``; None: decided from ``argv``)."""
    if model_command is None:
        model_command = next((a for a in argv if not a.startswith("-")), None) in MODEL_COMMANDS
    if model_command:
        from omni_flows.model.inference import keep_freed_memory

        keep_freed_memory()


def main() -> None:
    """Console-script entry point (see :func:`run`)."""
    run(app, model_command=None)


def run(command, model_command: bool | None = None) -> None:
    """Run ``command()`` (a typer app) as the CLI does: an error of the project's family
    or an unreachable or refusing MongoDB is one line and exit 2, a calculation that ran
    and failed exit 3, any other exception a bug with its traceback; Ctrl-C prints what was
    interrupted (``KeyboardInterrupt("what to do now")`` says how to resume) and exits 130.
    ``model_command``: the process runs the model (None: decided from ``sys.argv``)."""
    # jobflow's own deprecation notice, printed once per job, drowns the progress display
    warnings.filterwarnings("ignore", category=FutureWarning, module="jobflow")
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    # loaded: Ctrl-C is Python's KeyboardInterrupt again (omni_flows/__init__.py exited
    # quietly while the modules loaded), so that commands can say how to resume
    if signal.getsignal(signal.SIGINT) is getattr(omni_flows, "_interrupted_while_loading", 0):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _opt_in_process_settings(sys.argv[1:], model_command)
        command()  # click/typer: usage errors exit 2 with their own message
    except (SystemExit, KeyboardInterrupt) as exc:  # KeyboardInterrupt: while importing, say
        interrupt = errors.keyboard_interrupt(exc)
        if interrupt is None:
            raise
        said = str(interrupt) if interrupt.args else ""
        console.print(f"[bold yellow]interrupted[/] (Ctrl-C){': ' + escape(said) if said else ''}")
        sys.exit(errors.EXIT_INTERRUPTED)
    except Exception as exc:
        message = errors.user_error_message(exc)
        if message is None:
            raise  # a bug: its traceback is the report
        code = errors.exit_code(exc)
        what = "calculation failed" if code == errors.EXIT_CALCULATION_FAILED else "error"
        console.print(f"[bold red]{what}:[/] {escape(message)}")
        sys.exit(code)
