"""`omni-flows status`: jobs done, running, failed and waiting, for the local engine and FireWorks.

References: the states each engine holds for the same flows, counted by hand from
what ran (a job that raises fails, its child waits; one FireWorks launch runs one job).
"""

import re

import pytest
from jobflow import Flow, OutputReference, job
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.engines.fireworks import run_worker, submit_fireworks
from omni_flows.engines.local import run_local
from omni_flows.engines.submit import submit_flow
from omni_flows.db_schemas.indexes import JOB_OUTPUTS
from omni_flows.stores import connect_database
from omni_flows.errors import EngineError

cli = CliRunner()


@job
def add(a: float, b: float) -> float:
    return a + b


@job
def broken(a: float) -> float:
    raise ValueError(f"cannot use {a}")


def status_output(settings, campaign: str, columns: int = 250) -> str:
    env = {"OMNI_FLOWS_HOME": str(settings.home), "OMNI_FLOWS_DB_PORT": str(settings.db_port),
           "OMNI_FLOWS_DATABASE": settings.database, "OMNI_FLOWS_MONGODB_URI": None,
           "OMNI_FLOWS_CONFIG": None, "COLUMNS": str(columns)}
    result = cli.invoke(app, ["status", campaign], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def status_counts(settings, campaign: str) -> list[tuple[str, list[int]]]:
    """(engine, [done, running, failed, waiting, jobs]) per row of `omni-flows status`."""
    rows = []
    for line in status_output(settings, campaign).splitlines():
        cells = [c.strip() for c in re.split(r"[│|]", line) if c.strip()]
        if len(cells) == 9 and campaign in (cells[0], cells[2]):
            rows.append((cells[3], [int(c) for c in cells[4:]]))
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


def _with_uuid(made, uuid: str):
    """``made`` with a fixed uuid, as a screen's jobs get theirs from what decides their
    numbers (workflows.identity.keyed): the same job in every flow built for it."""
    made.uuid = uuid
    made.output = OutputReference(uuid, output_schema=made.output.output_schema)
    return made


def same_screen(name: str) -> Flow:
    """A new Flow (new flow uuid) of the same two jobs, as each run of a screen builds."""
    a = _with_uuid(add(1, 2), "00000000-0000-4000-8000-00000000000a")
    b = _with_uuid(add(a.output, 3), "00000000-0000-4000-8000-00000000000b")
    return Flow([a, b], name=name, metadata={"settings_id": "5e771a9c1d"})


def test_a_campaign_queued_twice_warns_and_counts_what_another_engine_stored(
    settings, tmp_path
):
    """Reference: issue 28's sequence. Queued on FireWorks twice, then run here: the
    second queue warns naming the first, and once the local run stored both outputs
    (3 and 6, by hand), every record of the campaign counts them done."""
    first, second = same_screen("twice"), same_screen("twice")
    said = submit_flow(first, "fireworks", settings)
    assert not said.startswith("warning")
    said = submit_flow(second, "fireworks", settings)
    assert said.startswith("warning: the jobs of 'twice' are also recorded as fireworks "
                           f"(flow {first.uuid})")
    assert status_counts(settings, "twice") == [("fireworks", [0, 0, 0, 2, 2])] * 2

    local = same_screen("twice")
    run_local(local, settings=settings, root_dir=tmp_path)
    from omni_flows.stores import job_store

    store = job_store(settings)
    store.connect()
    assert [store.get_output(j.uuid) for j in local.jobs] == [3, 6]
    store.close()
    #                               done running failed waiting jobs
    assert status_counts(settings, "twice") == [
        ("local", [2, 0, 0, 0, 2]), ("fireworks", [2, 0, 0, 0, 2]), ("fireworks", [2, 0, 0, 0, 2])]

    # the FireWorks worker completes the queued copies without computing them again
    outputs = connect_database(settings)[JOB_OUTPUTS]
    before = {d["uuid"]: d["completed_at"] for d in outputs.find({})}
    states = run_worker(settings, launch_dir=tmp_path)
    assert states == {"COMPLETED": 4}
    assert {d["uuid"]: d["completed_at"] for d in outputs.find({})} == before
    outputs.database.client.close()


def test_status_at_80_columns_keeps_uuid_and_settings_id_whole(settings, tmp_path):
    """Reference: the flow's own uuid and settings id, which a user copies from the output."""
    flow = same_screen("a screen with a long name that must fold at eighty columns")
    run_local(flow, settings=settings, root_dir=tmp_path)
    said = status_output(settings, flow.uuid, columns=80)
    assert max(len(line) for line in said.splitlines()) <= 80
    assert flow.uuid in said and "5e771a9c1d" in said
    assert "…" not in said
