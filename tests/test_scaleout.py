"""Scale-out of a surface screen (issue 19): placements of many (slab, adsorbate) pairs relaxed in
batched jobs, and a campaign queued on FireWorks or jobflow-remote by `screen --engine`.

References: the same screen run with one placement job per (slab, adsorbate), the
behaviour before batching (its documents, keys and energies); job counts worked out
by hand from the cell (2x2, 3 layers: 12 slab atoms, so 2 placements of a one-atom
adsorbate hold 26 atoms); the engines' own queues for a submitted campaign.
"""

import uuid
from functools import lru_cache

import jobflow_remote
import pytest
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.engines.fireworks import launchpad
from omni_flows.engines.local import run_local
from omni_flows.engines.remote import job_controller
from omni_flows.engines.status import campaign_status, find_campaigns
from omni_flows.stores import connect_database, job_store
from omni_flows.workflows.flows.campaign import SurfaceCampaign
from omni_flows.workflows.errors import WorkflowInputError
from omni_flows.workflows.structures.placements import PlacementSettings
from omni_flows.workflows.settings import MLIPSettings
from omni_flows.workflows.structures.slabs import SlabSpec

SMALL = SlabSpec(n_layers=3, n_fixed_layers=1, supercell=(2, 2))
TWO = PlacementSettings(n_random=0, max_placements=2)
ONE = PlacementSettings(n_random=0, max_placements=1)
runner = CliRunner()


def tiny_campaign(batch_atoms: int, placements: PlacementSettings = TWO) -> SurfaceCampaign:
    """Pt(111) and Cu(111), O and H, 2 placements each: 4 pairs of 26 atoms, 8 placements."""
    return SurfaceCampaign(bulks=["Pt", "Cu"], facets=["111"], adsorbates=["O", "H"],
                           mlip=MLIPSettings(device="cpu"), slab_spec=SMALL,
                           placements=placements, batch_atoms=batch_atoms)


def jobs_of(flow) -> dict[str, str]:
    return {job.uuid: job.name for job, _ in flow.iterflow()}


@lru_cache
def tiny_flow(batch_atoms: int):
    """The tiny campaign's Flow, built once per batch size in this module."""
    return tiny_campaign(batch_atoms).make()


@pytest.mark.parametrize("batch_atoms, placement_jobs", [
    (0, 4), (26, 4), (52, 2), (78, 2), (1024, 1)])
def test_a_campaign_batched_by_atoms_has_the_expected_jobs(batch_atoms, placement_jobs):
    flow = tiny_flow(batch_atoms)
    jobs = jobs_of(flow)
    relaxations = [name for name in jobs.values() if name.startswith("placements ")]
    assert len(relaxations) == placement_jobs
    # gas H2 and H2O, 2 bulks, 2 slabs, the placement jobs, per pair one adsorption-energy
    # job (no relaxation: keyed by the reference) and one best job
    assert len(jobs) == 2 + 2 + 2 + placement_jobs + 4 + 4
    assert sum(name.startswith("adsorption energies ") for name in jobs.values()) == 4
    assert sum(name.startswith("best ") for name in jobs.values()) == 4
    assert len(flow.output) == 4


def test_batching_changes_neither_settings_id_nor_the_keys_of_per_pair_results():
    assert tiny_campaign(0).settings_id == tiny_campaign(52).settings_id
    a, b = jobs_of(tiny_flow(0)), jobs_of(tiny_flow(52))
    assert jobs_of(tiny_campaign(52).make()) == b  # built again: the same jobs (a re-run resumes)
    shared = {u for u in a if not a[u].startswith("placements ")}
    assert shared <= set(b)  # gas, bulk, slab and best jobs are the same jobs
    assert not {u for u in a if a[u].startswith("placements ")} & set(b)
    # a group of one pair is the per-pair job itself
    assert jobs_of(tiny_flow(26)) == a


def test_free_energies_vibrate_each_gas_molecule_once_for_every_pair():
    """Reference: the gas references of O (H2O - H2) and H (1/2 H2) are H2 and H2O; 4 pairs
    (two bulks, O and H) read the same two vibration jobs."""
    from omni_flows.workflows.thermo.thermochemistry import FreeEnergySettings

    campaign = tiny_campaign(0)
    campaign.free_energy = FreeEnergySettings()
    jobs = {job.uuid: (job.name, parents) for job, parents in campaign.make().iterflow()}
    gas = {uuid for uuid, (name, _) in jobs.items() if name.startswith("gas free energy ")}
    assert sorted(jobs[u][0] for u in gas) == ["gas free energy H2", "gas free energy H2O"]
    best = [parents for name, parents in jobs.values() if name.startswith("best ")]
    assert len(best) == 4 and all(gas & set(parents) for parents in best)


def test_one_plan_cuts_each_slab_once_and_places_nothing(monkeypatch):
    """Reference: the screen before it had one plan (0440d4b) ran SlabGenerator 3 times per
    facet to build the Flow and once more to select its table, and placed the first
    adsorbate on every slab to size its batches. Counted on pymatgen's own class."""
    import pymatgen.core.surface as surface

    from omni_flows.workflows.structures import placements

    counted = {"SlabGenerator": 0, "Placement": 0}
    for owner, name in ((surface.SlabGenerator, "SlabGenerator"),
                        (placements.Placement, "Placement")):
        original = owner.__init__

        def init(self, *args, _original=original, _name=name, **kwargs):
            counted[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(owner, "__init__", init)
    campaign = tiny_campaign(52)  # Pt and Cu, (111): two facets of two bulks
    plan = campaign.plan()
    flow = campaign.make(plan)
    plan.select([], campaign.settings_id)
    assert counted == {"SlabGenerator": 2, "Placement": 0}
    assert [len(batch) for batch in plan.batches] == [2, 2]  # 26-atom pairs, sized alike
    assert len(flow.output) == 4


def test_negative_batch_atoms_is_refused_before_any_job():
    with pytest.raises(WorkflowInputError, match="--batch-atoms must be 0"):
        tiny_campaign(-1).make()


@pytest.fixture(scope="module")
def two_runs(db_server):
    """The tiny campaign with one placement per pair (4 pairs of two bulks, O and H with their
    own references), run per pair and batched (one job), each on a database of its own."""
    runs = {}
    for batch_atoms in (0, 1024):
        database = f"t_scaleout_{batch_atoms}_{uuid.uuid4().hex[:6]}"
        settings = db_server.model_copy(update={"database": database})
        flow = tiny_campaign(batch_atoms, ONE).make()
        run_local(flow, settings=settings, store=job_store(settings))
        runs[batch_atoms] = (connect_database(settings), flow, settings)
    return runs


def by_key(db, collection: str, fields: tuple[str, ...]) -> dict[tuple, dict]:
    docs = db[collection].find({}, {"_id": 0})
    return {tuple(str(d[f]) for f in fields): d for d in docs}


def test_batched_and_per_pair_screens_file_the_same_documents(two_runs):
    (per_pair, per_pair_flow, _), (batched, batched_flow, _) = two_runs[0], two_runs[1024]
    keys = ("slab_id", "adsorbate_id", "placement_index", "settings_id")
    expected, found = (by_key(db, "adsorption_placements", keys) for db in (per_pair, batched))
    assert len(expected) == 4 and found.keys() == expected.keys()
    for key, doc in expected.items():
        other = found[key]
        assert other["energy"] == pytest.approx(doc["energy"], abs=1e-4), key
        assert other["adsorption_energy"] == pytest.approx(doc["adsorption_energy"], abs=1e-4)
        assert other["site_type"] == doc["site_type"]
        assert other["initial_site_type"] == doc["initial_site_type"]
        assert other["valid"] == doc["valid"]
        assert other["provenance"]["settings"] == doc["provenance"]["settings"]
    best_keys = ("slab_id", "adsorbate_id", "settings_id")
    expected, found = (by_key(db, "adsorption_best", best_keys) for db in (per_pair, batched))
    assert len(expected) == 4 and found.keys() == expected.keys()
    for key, doc in expected.items():
        assert found[key]["n_placements"] == 1  # a pair's own placements, not the batch's
        assert found[key]["best_placement_index"] == doc["best_placement_index"]
        assert found[key]["adsorption_energy"] == pytest.approx(doc["adsorption_energy"],
                                                                abs=1e-4)
    # the work was done by 4 placement jobs in one run and by 1 in the other
    for db, flow, placement_jobs in ((per_pair, per_pair_flow, 4), (batched, batched_flow, 1)):
        names = [d["name"] for d in db["outputs"].find({}, {"name": 1})]
        assert len(names) == len(jobs_of(flow))
        assert sum(n.startswith("placements ") for n in names) == placement_jobs


def test_a_finished_screen_run_again_with_other_batches_relaxes_nothing(two_runs, monkeypatch):
    """The per-pair run's database, the same screen batched into one job: every best job
    is done, so the new batch job is not needed and nothing is relaxed or filed again."""
    db, _, settings = two_runs[0]

    def no_relax(*args, **kwargs):
        raise AssertionError("a finished screen relaxed again")

    monkeypatch.setattr("omni_flows.workflows.flows.surface_flow.relax", no_relax)
    monkeypatch.setattr("omni_flows.workflows.flows.relax_maker.relax", no_relax)
    before = list(db["adsorption_placements"].find({}, {"_id": 0}))
    flow = tiny_campaign(1024, ONE).make()
    assert run_local(flow, settings=settings, store=job_store(settings)) == {}
    assert list(db["adsorption_placements"].find({}, {"_id": 0})) == before
    (campaign,) = [c for c in find_campaigns(db, flow.name) if c["uuid"] == flow.uuid]
    assert campaign_status(db, campaign, settings).counts == {"done": len(jobs_of(flow))}


# --- `omni-flows screen surfaces --engine`: queued, nothing run here -------------------

SCREEN = ["screen", "surfaces", "--bulk", "Pt", "Cu", "--facets", "111", "--adsorbates", "O",
          "H", "--supercell", "2x2", "--layers", "3", "--fixed-layers", "1",
          "--max-placements", "2", "--n-random", "0", "--device", "cpu", "--batch-atoms", "52"]


@pytest.mark.parametrize("engine", ["fireworks", "jobflow-remote"])
def test_screen_with_an_engine_submits_the_campaign_without_running_it(
    settings, tmp_path, monkeypatch, engine
):
    monkeypatch.setenv("JFREMOTE_PROJECTS_FOLDER", str(tmp_path))
    monkeypatch.setattr(jobflow_remote.SETTINGS, "projects_folder", str(tmp_path))

    def no_relax(*args, **kwargs):
        raise AssertionError("a submitted screen relaxed here")

    monkeypatch.setattr("omni_flows.workflows.flows.surface_flow.relax", no_relax)
    monkeypatch.setattr("omni_flows.workflows.flows.relax_maker.relax", no_relax)
    env = {"OMNI_FLOWS_HOME": str(settings.home), "OMNI_FLOWS_DB_PORT": str(settings.db_port),
           "OMNI_FLOWS_DATABASE": settings.database, "OMNI_FLOWS_MONGODB_URI": None,
           "OMNI_FLOWS_CONFIG": None}
    result = runner.invoke(app, [*SCREEN, "--engine", engine, "--out", str(tmp_path)], env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    n_jobs = len(jobs_of(tiny_flow(52)))
    assert n_jobs == 2 + 2 + 2 + 2 + 4 + 4  # two batches of two pairs, energies, best
    assert f"{n_jobs} jobs" in result.output and "omni-flows status" in result.output
    db = connect_database(settings)
    assert db.outputs.count_documents({}) == 0  # nothing ran here
    assert not list(tmp_path.glob("surfaces-*"))  # no table before the results
    if engine == "fireworks":
        queued = launchpad(settings).fireworks.count_documents({})
    else:
        queued = job_controller().jobs.count_documents({})
    assert queued == n_jobs
    (campaign,) = find_campaigns(db, "screen Pt+Cu (111) O H")
    assert campaign_status(db, campaign, settings).counts == {"waiting": n_jobs}
    db.client.close()
