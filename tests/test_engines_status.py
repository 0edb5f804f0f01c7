"""`omni-flows status`: jobs done, running, failed and waiting, for the local engine and FireWorks.

References: the states each engine holds for the same flows, counted by hand from
what ran (a job that raises fails, its child waits; one FireWorks launch runs one job).
"""

import re

import pytest
from jobflow import Flow, job
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.engines.fireworks import run_worker, submit_fireworks
from omni_flows.engines.local import run_local
from omni_flows.errors import EngineError

cli = CliRunner()


@job
def add(a: float, b: float) -> float:
    return a + b


@job
def broken(a: float) -> float:
    raise ValueError(f"cannot use {a}")


def status_counts(settings, campaign: str) -> list[tuple[str, list[int]]]:
    """(engine, [done, running, failed, waiting, jobs]) per row of `omni-flows status`."""
    env = {"OMNI_FLOWS_HOME": str(settings.home), "OMNI_FLOWS_DB_PORT": str(settings.db_port),
           "OMNI_FLOWS_DATABASE": settings.database, "OMNI_FLOWS_MONGODB_URI": None,
           "OMNI_FLOWS_CONFIG": None, "COLUMNS": "250"}
    result = cli.invoke(app, ["status", campaign], env=env)
    assert result.exit_code == 0, result.output
    rows = []
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│|]", line) if c.strip()]
        if len(cells) == 8 and campaign in cells[:2]:
            rows.append((cells[2], [int(c) for c in cells[3:]]))
    return rows


def test_status_of_a_local_run_with_a_failed_job(settings, tmp_path):
    a = add(1, 2)
    bad = broken(a.output)
    child = add(bad.output, 1)
    other = add(a.output, 5)
    flow = Flow([a, bad, child, other], name="half broken")
    with pytest.raises(EngineError, match="2 of 4 jobs"):
        run_local(flow, settings=settings, root_dir=tmp_path)
    #                               done running failed waiting jobs
    assert status_counts(settings, "half broken") == [("local", [2, 0, 1, 1, 4])]
    assert status_counts(settings, flow.uuid) == [("local", [2, 0, 1, 1, 4])]


def test_status_of_fireworks_while_a_worker_has_run_one_job(settings, tmp_path):
    a = add(1, 2)
    flow = Flow([a, add(a.output, 3), add(a.output, 4)], name="fan out")
    submit_fireworks(flow, settings)
    assert status_counts(settings, "fan out") == [("fireworks", [0, 0, 0, 3, 3])]
    run_worker(settings, nlaunches=1, launch_dir=tmp_path)
    assert status_counts(settings, "fan out") == [("fireworks", [1, 0, 0, 2, 3])]
    run_worker(settings, launch_dir=tmp_path)
    assert status_counts(settings, "fan out") == [("fireworks", [3, 0, 0, 0, 3])]


def test_status_of_an_unknown_campaign_names_the_recorded_ones(settings, tmp_path):
    run_local(Flow([add(1, 1)], name="known"), settings=settings, root_dir=tmp_path)
    env = {"OMNI_FLOWS_HOME": str(settings.home), "OMNI_FLOWS_DB_PORT": str(settings.db_port),
           "OMNI_FLOWS_DATABASE": settings.database, "OMNI_FLOWS_MONGODB_URI": None,
           "OMNI_FLOWS_CONFIG": None}
    result = cli.invoke(app, ["status", "unknown"], env=env)
    assert result.exit_code != 0
    assert isinstance(result.exception, EngineError) or result.exit_code == 2
    message = str(result.exception) + result.output
    assert "no campaign 'unknown'" in message and "recorded: known" in message
