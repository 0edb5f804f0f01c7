"""Running a screening campaign for the command line, below it (``omni-flows screen``).

The CLI parses options and renders tables; what happens between lives here: the MLIP
settings from the options and the configuration, the domain warning before anything
runs, the run itself (here with a progress bar, or queued on an engine), the resume
advice after Ctrl-C, and third-party notices kept out of the user's output.
"""

import logging
import shlex
import sys
import threading
import warnings
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from omni_flows.engines.local import run_local
from omni_flows.model.errors import OmniFlowsError
from omni_flows.settings import given, load_settings
from omni_flows.stores import job_store


class ScreenInputError(OmniFlowsError, ValueError):
    """Command-line input of a screen that cannot be run."""



def mlip_settings(model, task, device, backend, optimizer, fmax, steps):
    """The MLIP settings of a screen (None: the configuration's or the object's default),
    checked here (model header, registries, ranges)."""
    from omni_flows.model.header import checkpoint_header
    from omni_flows.workflows.settings import MLIPSettings

    settings = load_settings()
    model = model or settings.model
    if task is None:  # the configured task applies to multi-task models only
        task = settings.task if checkpoint_header(model).tasks else None
    return MLIPSettings(model=model, task=task, device=device or settings.device,
                        **given(backend=backend, optimizer=optimizer, fmax=fmax, steps=steps))


def model_label(mlip) -> str:
    return f"{mlip.model}{'/' + mlip.task if mlip.task else ''}"


def check_engine(engine: str | None):
    """The engine named by ``--engine`` (None: local), or a user error naming the choices."""
    from omni_flows.engines import Engine

    try:
        return Engine(engine or "local")
    except ValueError:
        choices = ", ".join(e.value for e in Engine)
        raise ScreenInputError(f"--engine must be one of {choices}, not {engine!r}") from None


def warn_out_of_domain(console: Console, elements: list[str], mlip) -> None:
    """Say which elements the task never saw in training (checkpoints that record it)."""
    from omni_flows.model.header import out_of_domain

    outside = out_of_domain(elements, mlip.model, mlip.task)
    if outside:
        console.print(f"[yellow]warning:[/] outside the training data of {model_label(mlip)}: "
                      f"{', '.join(outside)}; treat their results with care (model card)")


def run_or_submit(flow, settings_id: str, what: str, engine, settings, console: Console,
                  command: str) -> bool:
    """Say what the screen is, then queue it on ``engine`` (False: nothing to show here)
    or run it here with a progress bar (True)."""
    n_jobs = sum(1 for _ in flow.iterflow())
    console.print(f"[bold]{flow.name}[/]: {n_jobs} jobs, settings {settings_id} ({what}), "
                  f"database {settings.database}")
    if engine.value != "local":
        from omni_flows.engines.submit import submit_flow

        console.print(submit_flow(flow, engine, settings))
        console.print(f"once its jobs are done, the same `omni-flows {command}` command without "
                      "--engine prints the table from the database (nothing is computed again)")
        return False
    resume = f"omni-flows {command} " + shlex.join(sys.argv[3:])  # quoted: zsh expands *OOH
    try:
        run_with_progress(flow, settings, console)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"screen {settings_id} interrupted; every finished job is stored. Resume with the "
            f"same command: {resume}") from None
    return True


def run_with_progress(flow, settings, console: Console) -> None:
    """Run ``flow`` here; the bar advances as job outputs arrive in the store (the local
    engine has no callback)."""
    from omni_flows.results import jobs_done

    store = job_store(settings)
    store.connect()
    uuids = [job.uuid for job, _ in flow.iterflow()]
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("jobs", total=len(uuids))
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(1.0):
                try:
                    progress.update(task, completed=jobs_done(store, uuids))
                except Exception:  # a transient read error only delays the bar
                    continue

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            run_local(flow, settings=settings, store=store)
        finally:
            stop.set()
            watcher.join()
        progress.update(task, completed=len(uuids))


@contextmanager
def quiet_third_parties():
    """jobflow's "Some jobs are not connected" and FutureWarnings, monty's chdir notice and
    pymatgen's CIF notes say nothing to a user of the screen: keep them out of its output."""
    with warnings.catch_warnings():
        for module in ("jobflow", "monty", "pymatgen", "maggma"):
            warnings.filterwarnings("ignore", module=module)
        warnings.filterwarnings("ignore", message="Some jobs are not connected")
        warnings.filterwarnings("ignore", message=".*contextlib.chdir.*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        logging.getLogger("jobflow").setLevel(logging.WARNING)
        warnings.showwarning = _show_once(warnings.showwarning)
        yield


def _show_once(default):
    """Our own warnings (a slab under the slab rules, ...) as one line each, once."""
    from omni_flows.workflows.structures.slabs import SlabWarning

    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, SlabWarning):
            return default(message, category, filename, lineno, file, line)
        if str(message) not in seen:
            seen.add(str(message))
            Console(stderr=True).print(f"[yellow]note[/]: {message}")

    return show
