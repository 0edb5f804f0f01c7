"""``omni-flows submit | worker | status | remote-config``: run Flows on an engine."""

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from omni_flows.engines import Engine
from omni_flows.output import print_table


def submit(
    flow_file: Path = typer.Argument(..., help="a Flow serialized as JSON (flow.to_json())"),
    engine: Engine = typer.Option(Engine.LOCAL, "--engine", "-e", help="where to run it"),
    restart: bool = typer.Option(False, help="local: run every job again instead of resuming"),
) -> None:
    """Run a Flow here (local) or hand it to FireWorks / jobflow-remote."""
    from omni_flows.engines.flow_file import load_flow

    flow = load_flow(flow_file)
    if engine is Engine.LOCAL:
        from omni_flows.engines.local import run_local

        responses = run_local(flow, resume=not restart)
        Console().print(f"ran {len(responses)} jobs locally; outputs are in the database")
    else:
        from omni_flows.engines.submit import submit_flow

        Console().print(submit_flow(flow, engine))


def worker(
    nlaunches: int = typer.Option(None, "--nlaunches", "-n", help="stop after this many; 0: all"),
    launch_dir: Path = typer.Option(None, "--launch-dir", help="default: under the home folder"),
    lost_after: float = typer.Option(
        None, "--lost-after", min=0, help="seconds without a ping after which another host's "
        "RUNNING firework is lost and rerun (a dead worker of this host: at once)"),
) -> None:
    """Rerun lost runs, then run the ready FireWorks of the LaunchPad until none is left."""
    from omni_flows.engines.fireworks import launchpad, recover_lost_runs, run_worker

    lost = recover_lost_runs(launchpad(), lost_after)
    if lost:
        Console().print(f"reran lost fireworks: {', '.join(map(str, lost))}")
    states = run_worker(nlaunches=nlaunches, launch_dir=launch_dir, lost_after_s=lost_after)
    table = Table("state", "fireworks", title="LaunchPad")
    for state, count in sorted(states.items()):
        table.add_row(state, str(count))
    Console().print(table)


def remote_config(
    write: bool = typer.Option(False, "--write", help="write it to the projects folder, checked"),
    folder: Path = typer.Option(None, "--folder", help="default: jobflow-remote's (~/.jfremote)"),
    name: str = typer.Option(None, "--name", help="project name"),
) -> None:
    """The jobflow-remote project for the cluster in the settings (printed, or --write)."""
    import yaml

    from omni_flows.engines.remote import project_config, write_project
    from omni_flows.settings import load_settings, redact_config

    if write:
        path = write_project(load_settings(), folder, name)
        Console().print(f"jobflow-remote project written and checked: {path}")
    else:
        shown = redact_config(project_config(load_settings(), name))
        print(yaml.safe_dump(shown, sort_keys=False), end="")
        Console(stderr=True).print("passwords shown as ***; `--write` writes the project with them")


def status(campaign: str = typer.Argument(..., help="the campaign's flow name or uuid")) -> None:
    """How many jobs of a campaign are done, running, failed and waiting, on any engine."""
    from omni_flows.engines.status import BUCKETS, statuses
    from omni_flows.settings import load_settings

    table = Table(title="campaign status")
    table.add_column("campaign", overflow="fold")
    for header in ("settings", "flow uuid", "engine", *BUCKETS, "jobs"):  # copied: whole
        table.add_column(header, no_wrap=True)
    for item in statuses(campaign, load_settings()):
        counts = [str(item.counts.get(bucket, 0)) for bucket in BUCKETS]
        table.add_row(item.name, item.settings_id or "-", item.uuid, item.engine, *counts,
                      str(item.total))
    print_table(Console(), table)
