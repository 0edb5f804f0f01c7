"""A database written by the code before settings ids opens, keeps every document, and grows.

Reference: tests/data/legacy_db, exported from a real SecantusDB server after two
screens run with commit 1db1256 (Pt(111) + H, Pt(111) + O; see its README):
document counts, their energies, and the legacy unique indexes as that code made them.
"""

import json
from pathlib import Path

import pytest
from bson import json_util
from typer.testing import CliRunner

from omni_flows.db_schemas import BestAdsorptionDoc, ReferenceScheme
from omni_flows.db_schemas.indexes import collection_spec
from omni_flows.db_schemas.query import build_filter
from omni_flows.engines.local import run_local
from omni_flows.engines.status import campaign_status, find_campaigns
from omni_flows.cli import app
from omni_flows.errors import MigrationNeededError
from omni_flows.stores import connect_database, job_store, migrate_database, mongo_client
from omni_flows.workflows import MLIPSettings, PlacementSettings, SlabSpec, SurfaceCampaign

LEGACY = Path(__file__).parent / "data" / "legacy_db"
# a screen stored before relaxations were keyed without the reference (its README)
BEFORE_REFERENCE_FREE = Path(__file__).parent / "data" / "db_0440d4b"


def load_legacy(settings, folder: Path = LEGACY) -> dict[str, int]:
    """The exported collections, with their indexes, into the test's database."""
    client = mongo_client(settings.uri)
    db = client[settings.database]
    counts = {}
    for path in sorted(folder.glob("*.json")):
        name = path.name[: -len(".json")]
        data = json_util.loads(path.read_text())
        for index in data["indexes"]:
            if index["name"] != "_id_":
                db[name].create_index(list(index["key"].items()), name=index["name"],
                                      unique=bool(index.get("unique")))
        if data["documents"]:
            db[name].insert_many(data["documents"])
        counts[name] = len(data["documents"])
    client.close()
    return counts


@pytest.fixture
def legacy(settings):
    """The legacy database, migrated as a user does it (`omni-flows db migrate`)."""
    counts = load_legacy(settings)
    migrate_database(settings)
    return settings, counts


def _cli_env(settings) -> dict:
    return {"OMNI_FLOWS_HOME": str(settings.home), "OMNI_FLOWS_DB_PORT": str(settings.db_port),
            "OMNI_FLOWS_DATABASE": settings.database, "OMNI_FLOWS_MONGODB_URI": None,
            "OMNI_FLOWS_CONFIG": None}


def test_legacy_database_opens_keeps_every_document_and_reads_old_names(settings):
    """Refused with the advice until `omni-flows db migrate` has run (nothing changes
    a stored document unasked), then every document opens with its old numbers."""
    counts = load_legacy(settings)
    assert counts["adsorption_best"] == 2 and counts["adsorption_placements"] == 3
    results = {name: n for name, n in counts.items()
               if collection_spec(name) is not None and collection_spec(name).document}
    with pytest.raises(MigrationNeededError, match=r"holds documents of an earlier omni-flows "
                       r"without settings ids \(.*2 in adsorption_best.*\): run `omni-flows "
                       r"db migrate` once"):
        connect_database(settings)
    refused = CliRunner().invoke(app, ["query", "slabs"], env=_cli_env(settings))
    assert isinstance(refused.exception, MigrationNeededError)
    client = mongo_client(settings.uri)
    assert client[settings.database]["adsorption_best"].count_documents(
        {"settings_id": {"$exists": True}}) == 0  # the refusal changed nothing
    client.close()
    done = CliRunner().invoke(app, ["db", "migrate"], env=_cli_env(settings))
    assert done.exit_code == 0, done.output
    assert f"{sum(results.values())} documents given the settings id" in done.output
    assert migrate_database(settings) == 0  # once is enough
    db = connect_database(settings)  # the unique indexes rebuilt on the new keys
    for name, n in counts.items():
        assert db[name].count_documents({}) == n, name
        spec = collection_spec(name)
        if spec is not None and spec.document is not None:
            for doc in db[name].find({}, {"_id": 0}):
                assert len(doc["settings_id"]) == 10
                spec.document.model_validate(doc)  # today's documents read yesterday's
            index = next(ix for ix in db[name].list_indexes() if ix["name"] == "natural_key")
            assert "settings_id" in index["key"]
    best = {d["adsorbate"]: d for d in db["adsorption_best"].find({}, {"_id": 0})}
    # the values the old code stored (tests/data/legacy_db), unchanged
    assert best["H"]["adsorption_energy"] == pytest.approx(-0.6253, abs=1e-3)
    assert best["O"]["adsorption_energy"] == pytest.approx(1.9293, abs=1e-3)
    assert BestAdsorptionDoc.model_validate(best["O"]).adsorbate_id == "O"
    # a second open changes nothing
    before = list(db["adsorption_best"].find({}, {"_id": 0}))
    db = connect_database(settings)
    assert list(db["adsorption_best"].find({}, {"_id": 0})) == before


def test_a_new_screen_adds_beside_the_legacy_results(legacy, tmp_path, monkeypatch):
    settings, counts = legacy
    monkeypatch.chdir(tmp_path)
    campaign = SurfaceCampaign(bulks=["Pt"], facets=["111"], adsorbates=["H"],
                               placements=PlacementSettings(max_placements=1))
    run_local(campaign.make(), settings=settings, store=job_store(settings))
    db = connect_database(settings)
    best = list(db["adsorption_best"].find({"adsorbate": "H"}, {"_id": 0}))
    assert len(best) == 2  # the legacy H and today's, side by side
    new = [d for d in best if d["settings_id"] == campaign.settings_id]
    assert len(new) == 1 and new[0]["provenance"]["settings"]["placements"]["max_placements"] == 1
    # same model, same slab, same single hollow placement: the same number as in 2026-11
    assert new[0]["adsorption_energy"] == pytest.approx(-0.6253, abs=2e-3)
    assert db["adsorption_best"].count_documents({}) == counts["adsorption_best"] + 1
    # what made a result is stored once today, in its settings; the legacy one stored it
    # beside them: both read the same and a query on the model or task finds both
    (old,) = [d for d in best if d["settings_id"] != campaign.settings_id]
    assert "model_name" not in new[0]["provenance"]
    assert old["provenance"]["model_name"] == new[0]["provenance"]["settings"]["mlip"]["model"]
    made_by = {(p.model_name, p.task, p.checkpoint_hash) for p in (
        BestAdsorptionDoc.model_validate(d).provenance for d in best)}
    assert made_by == {("7net-mf-0", "PBE", campaign.mlip.checkpoint_hash)}
    for term in ("model=7net-mf-0", "task=PBE", f"checkpoint={campaign.mlip.checkpoint_hash}"):
        assert db["adsorption_best"].count_documents(
            {"adsorbate": "H", **build_filter([term])}) == 2, term
    assert db["adsorption_best"].count_documents(build_filter(["model!=7net-mf-0"])) == 0
    assert db["adsorption_best"].count_documents(
        {"adsorbate": "H", **build_filter([], '{"provenance.task": "PBE"}')}) == 2
    legacy_refs = {d["provenance"]["energy_reference"]["scheme"]
                   for d in db["adsorption_best"].find({}, {"_id": 0})}
    assert {ReferenceScheme(s) for s in legacy_refs} == {ReferenceScheme.GAS_MOLECULES}
    json.dumps(new[0], default=str)


def test_a_screen_stored_before_reference_free_relaxations_is_found_and_relaxes_nothing(
    settings, tmp_path, monkeypatch
):
    """tests/data/db_0440d4b: Pt(111) with H and O, batched, stored by the code that made
    E_ads inside the relaxation job. The same screen today finds every job's result (the
    adsorption-energy jobs have the old per-pair keys, the new relaxation is not needed):
    nothing relaxes, every job counts as done, and no stored document changes."""
    monkeypatch.chdir(tmp_path)
    counts = load_legacy(settings, BEFORE_REFERENCE_FREE)
    assert counts["adsorption_placements"] == 2 and counts["adsorption_best"] == 2

    def no_relax(*args, **kwargs):
        raise AssertionError("a screen stored before relaxed again")

    monkeypatch.setattr("omni_flows.workflows.flows.surface_flow.relax", no_relax)
    monkeypatch.setattr("omni_flows.workflows.flows.relax_maker.relax", no_relax)
    db = connect_database(settings)
    stored = ("adsorption_placements", "adsorption_best", "calculations", "slabs")
    before = {name: list(db[name].find({}, {"_id": 0})) for name in stored}
    campaign = SurfaceCampaign(bulks=["Pt"], facets=["111"], adsorbates=["H", "O"],
                               mlip=MLIPSettings(device="cpu"),
                               slab_spec=SlabSpec(n_layers=3, n_fixed_layers=1, supercell=(2, 2)),
                               placements=PlacementSettings(n_random=0, max_placements=1,
                                                            orientations=("up",)))
    flow = campaign.make()
    assert run_local(flow, settings=settings, store=job_store(settings)) == {}
    assert {name: list(db[name].find({}, {"_id": 0})) for name in stored} == before
    assert campaign.select(before["adsorption_best"]) == before["adsorption_best"]
    (mine,) = [c for c in find_campaigns(db, flow.name) if c["uuid"] == flow.uuid]
    n_jobs = sum(1 for _ in flow.iterflow())
    assert campaign_status(db, mine, settings).counts == {"done": n_jobs}
