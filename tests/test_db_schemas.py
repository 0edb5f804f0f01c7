"""Result documents: keys, energy bookkeeping, identity hashes, JSON Schema, query terms.

References: hand-computed sums of the stated energies; MongoDB's filter syntax;
the layering rule of DESIGN.md (db_schemas imports neither torch nor a driver).
"""

import json
import subprocess
import sys

import bson
import pytest
from pydantic import ValidationError
from pymatgen.core import Lattice, Structure

from omni_flows.db_schemas import (
    RESULT_DOCUMENTS,
    AdsorptionPlacementDoc,
    Anomaly,
    AnomalyKind,
    BenchmarkEntry,
    BenchmarkRunDoc,
    BestAdsorptionDoc,
    CalcType,
    CalculationInput,
    CalculationOutput,
    EnergyReference,
    MLIPCalculationDoc,
    Provenance,
    QueryError,
    ReferenceScheme,
    SlabDoc,
    build_filter,
    json_schemas,
    parse_term,
)
from omni_flows.db_schemas.legacy import identity_of
from omni_flows.db_schemas.provenance import MissingReferenceError, dft_provenance
from omni_flows.db_schemas.query import field_value
from omni_flows.db_schemas.errors import SchemaError

# stated gas-phase references (eV), the numbers the sums below are checked against
GAS = EnergyReference(
    scheme=ReferenceScheme.GAS_MOLECULES, energies={"CO": -14.8, "H2O": -14.2, "H2": -6.8}
)


def provenance(**extra) -> Provenance:
    return Provenance(model_name="test-model", task="PBE", checkpoint_hash="ab" * 32, **extra)


def fcc_cu(a: float = 3.6) -> Structure:
    coords = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), ["Cu"] * 4, coords)


def placement(index: int, e_ads: float, anomalies=(), converged=True) -> AdsorptionPlacementDoc:
    slab_energy, ref = -100.0, GAS.energy_of({"CO": 1})
    return AdsorptionPlacementDoc(
        provenance=provenance(energy_reference=GAS),
        anomalies=[Anomaly(kind=k) for k in anomalies],
        slab_id="mp-30/1,1,1/0.0000",
        bulk_id="mp-30",
        bulk_formula="Cu",
        miller_index=(1, 1, 1),
        adsorbate="CO",
        placement_index=index,
        site_type="ontop",
        site_position=(0.0, 0.0, 12.0),
        initial_structure=fcc_cu(),
        final_structure=fcc_cu(),
        energy=slab_energy + ref + e_ads,
        slab_energy=slab_energy,
        reference_energy=ref,
        adsorption_energy=e_ads,
        converged=converged,
    )


def test_reference_energies_sum_as_stated():
    assert GAS.energy_of({"CO": 1}) == pytest.approx(-14.8)
    assert GAS.energy_of({"H2O": 1, "H2": -1}) == pytest.approx(-14.2 + 6.8)  # E_ref(O)
    atomic = EnergyReference(scheme="atomic", energies={"C": -7.28, "O": -7.20, "H": -3.48})
    assert atomic.energy_of({"C": 1, "O": 1}) == pytest.approx(-14.48)
    with pytest.raises(MissingReferenceError, match="no oc20_elemental reference energy for N") as err:
        atomic.energy_of({"N": 2})
    assert isinstance(err.value, SchemaError)  # the CLI reports it like OmniFlowsError


def test_adsorption_energy_must_match_its_terms():
    doc = placement(0, -0.65)
    assert doc.energy - doc.slab_energy - doc.reference_energy == pytest.approx(-0.65)
    assert doc.valid and doc.provenance.energy_reference.energies["CO"] == -14.8
    fields = doc.model_dump()
    fields["adsorption_energy"] = -0.75
    with pytest.raises(ValidationError, match="adsorption_energy -0.75 !="):
        AdsorptionPlacementDoc(**fields)
    fields = doc.model_dump()
    fields["provenance"]["energy_reference"] = None
    with pytest.raises(ValidationError, match="needs provenance.energy_reference"):
        AdsorptionPlacementDoc(**fields)


def test_best_placement_is_the_lowest_valid_one():
    placements = [
        placement(0, -1.20, anomalies=[AnomalyKind.DESORPTION]),
        placement(1, -0.90),
        placement(2, -0.50),
        placement(3, -2.00, converged=False),
    ]
    best = BestAdsorptionDoc.from_placements(placements)
    assert (best.adsorption_energy, best.best_placement_index) == (-0.90, 1)
    assert (best.n_placements, best.n_valid, best.valid) == (4, 2, True)

    none_valid = BestAdsorptionDoc.from_placements([placements[0], placements[3]])
    assert none_valid.adsorption_energy is None and none_valid.n_valid == 0
    assert not none_valid.valid


def test_site_composition_is_optional_and_carried_to_the_best_placement():
    plain = placement(0, -0.90)
    assert plain.site_composition is None
    alloy = [plain.model_copy(update={"site_composition": "NiPtPt"}),
             placement(1, -0.50).model_copy(update={"site_composition": "Pt"})]
    assert BestAdsorptionDoc.from_placements(alloy).site_composition == "NiPtPt"
    assert BestAdsorptionDoc.from_placements([plain]).site_composition is None


def test_input_hash_changes_with_geometry_and_parameters_only():
    def calc(structure, fmax=0.05):
        inp = CalculationInput(structure=structure, calc_type=CalcType.RELAX, fmax=fmax)
        out = CalculationOutput(
            structure=structure,
            energy=-14.9,
            energy_per_atom=-3.725,
            forces=[(0.0, 0.0, 0.0)] * 4,
            max_force=0.0,
        )
        return MLIPCalculationDoc(provenance=provenance(), input=inp, output=out)

    base = calc(fcc_cu())
    assert (base.formula_pretty, base.elements, base.nsites) == ("Cu", ["Cu"], 4)
    noisy = fcc_cu()
    noisy.translate_sites([1], [1e-9, 0, 0])  # float noise: same input
    moved = fcc_cu()
    moved.translate_sites([1], [0.01, 0, 0], frac_coords=False)  # 0.01 A: another input
    assert calc(noisy).input_hash == base.input_hash
    assert calc(moved).input_hash != base.input_hash
    assert calc(fcc_cu(), fmax=0.02).input_hash != base.input_hash
    assert not calc(fcc_cu()).model_copy(update={"anomalies": [Anomaly(kind="dissociation")]}).valid


def test_documents_survive_bson_and_read_back():
    slab = SlabDoc(
        provenance=provenance(),
        bulk_id="mp-30",
        bulk_formula="Cu",
        miller_index=(1, 1, 1),
        shift=0.123456,
        structure=fcc_cu(),
        min_slab_size=8.0,
        min_vacuum_size=15.0,
        energy=-50.25,
    )
    flagged = placement(0, -1.2, anomalies=[AnomalyKind.DESORPTION]).to_document()
    assert flagged["anomalies"] == [{"kind": "desorption", "detail": ""}]  # queryable values
    assert flagged["provenance"]["energy_reference"]["scheme"] == "gas_molecules"
    assert flagged["valid"] is False

    stored = bson.decode(bson.encode(slab.to_document()))
    assert stored["slab_id"] == "mp-30/1,1,1/0.1235" and stored["shift"] == 0.1235
    assert stored["area"] == pytest.approx(3.6 * 3.6)
    assert "@class" not in stored and stored["valid"] is True
    back = SlabDoc.model_validate(stored)
    assert back.structure == slab.structure and back.energy == -50.25

    pairs = [(-1.0, -0.9), (-0.5, -0.8), (0.2, 0.2)]
    entries = [
        BenchmarkEntry(system_id=str(i), reference=r, predicted=p) for i, (r, p) in enumerate(pairs)
    ]
    run = BenchmarkRunDoc.from_entries(
        entries, provenance=provenance(settings={"model": "test-model", "fmax": 0.05}),
        dataset="toy", dataset_hash="x", quantity="e_ads"
    )
    assert run.mae == pytest.approx((0.1 + 0.3 + 0.0) / 3)
    assert run.rmse == pytest.approx(((0.01 + 0.09) / 3) ** 0.5)
    assert run.max_abs_error == pytest.approx(0.3) and run.n == 3


def test_a_new_benchmark_run_is_keyed_by_its_settings_not_an_invented_legacy_id():
    """Reference: db_schemas.identity.settings_id of the run's own settings. The legacy id
    (model, task, checkpoint) gave runs with other parameters one key: one replaced the other."""
    from omni_flows.db_schemas.identity import settings_id
    from omni_flows.db_schemas.legacy import legacy_settings_id

    entries = [BenchmarkEntry(system_id="a", reference=-1.0, predicted=-0.9)]

    def run(fmax, **extra):
        settings = {"model": "test-model", "task": "PBE", "checkpoint": "ab" * 32,
                    "parameters": {"fmax": fmax}}
        return BenchmarkRunDoc.from_entries(entries, provenance=provenance(settings=settings),
                                            dataset="toy", dataset_hash="x", quantity="e_ads")

    a, b = run(0.05), run(0.02)
    assert a.settings_id == settings_id(a.provenance.settings)
    assert a.settings_id != legacy_settings_id(a.to_document())
    assert a.settings_id != b.settings_id  # other parameters: another result
    assert BenchmarkRunDoc.model_validate(a.to_document()).settings_id == a.settings_id
    with pytest.raises(SchemaError, match="needs provenance.settings"):
        BenchmarkRunDoc.from_entries(entries, provenance=provenance(), dataset="toy",
                                     dataset_hash="x", quantity="e_ads")
    old = a.to_document()  # as stored before settings ids: still read, with its legacy id
    del old["settings_id"]
    # before 2026-12 model, task and checkpoint were stored beside the settings
    old["provenance"].update(settings={}, model_name="test-model", task="PBE",
                             checkpoint_hash="ab" * 32)
    assert BenchmarkRunDoc.model_validate(old).settings_id == legacy_settings_id(old)


def test_every_collection_exports_a_schema_with_its_natural_key():
    schemas = json_schemas()
    assert set(schemas) == {doc.collection for doc in RESULT_DOCUMENTS}
    # the settings id hashes model, task and checkpoint: they are not in the key again
    assert schemas["adsorption_best"]["x-natural-key"] == [
        "slab_id", "adsorbate_id", "settings_id"]
    for name, schema in schemas.items():
        json.dumps(schema)  # plain JSON
        for path in schema["x-natural-key"]:  # every key field is a documented property
            node = schema
            for part in path.split("."):
                node = node["properties"][part]
                node = schema["$defs"][node["$ref"].split("/")[-1]] if "$ref" in node else node
        assert {"provenance", "anomalies", "valid"} <= set(schema["properties"]), name


@pytest.mark.parametrize(
    "term, expected",
    [
        ("adsorption_energy<-0.5", {"adsorption_energy": {"$lt": -0.5}}),
        ("n_valid>=2", {"n_valid": {"$gte": 2}}),
        ("adsorbate=CO", {"adsorbate": "CO"}),
        ("bulk_id=mp-30", {"bulk_id": "mp-30"}),
        ("valid=true", {"valid": True}),
        ('adsorbate=["CO","OH"]', {"adsorbate": {"$in": ["CO", "OH"]}}),
        ("site_type!=hollow", {"site_type": {"$ne": "hollow"}}),
        ("label~^Cu", {"label": {"$regex": "^Cu"}}),
        # stored once, in the settings (beside them in older documents): matched everywhere
        ("model=7net-mf-0", {"$or": [{"provenance.settings.mlip.model": {"$eq": "7net-mf-0"}},
                                     {"provenance.settings.model": {"$eq": "7net-mf-0"}},
                                     {"provenance.model_name": {"$eq": "7net-mf-0"}}]}),
        ("output.energy<=-3", {"output.energy": {"$lte": -3}}),
    ],
)
def test_query_terms_become_mongodb_filters(term, expected):
    assert parse_term(term) == expected


def test_what_made_a_result_is_stored_once_in_its_settings():
    """Reference: the settings' own values (hashed into the settings id); a document of
    before 2026-12 (the same facts beside the settings) reads and matches the same."""
    mlip = {"model": "test-model", "task": "PBE", "checkpoint": "ab" * 32, "optimizer": "FIRE",
            "fmax": 0.05}
    made_by = {"model_name": "test-model", "task": "PBE", "checkpoint_hash": "ab" * 32,
               "optimizer": "FIRE"}
    stored = provenance(optimizer="FIRE", settings={"mlip": mlip}).model_dump(mode="json")
    assert not set(made_by) & set(stored)
    back = Provenance.model_validate(stored)
    assert {k: getattr(back, k) for k in made_by} == made_by == identity_of(stored)
    old = {**stored, **made_by, "settings": {}}
    assert identity_of(old) == made_by
    for doc in ({"provenance": stored}, {"provenance": old}):
        assert field_value(doc, "provenance.model_name") == "test-model"
    # a value other than the settings' is kept (nothing stored is lost); a DFT code's
    # settings do not name it: stored beside them
    other = provenance(optimizer=None, settings={"mlip": mlip}).model_dump(mode="json")
    assert other["optimizer"] is None and Provenance.model_validate(other).optimizer is None
    dft = dft_provenance("GPAW", "PBE", {"code": "gpaw", "xc": "PBE"}, {}).model_dump()
    assert (dft["model_name"], dft["task"], dft["checkpoint_hash"]) == ("GPAW", "PBE", "")
    # over several places: != must hold in every one (a missing field meets $ne), and null
    # is a stored null, not an absent field
    assert list(parse_term("model!=x")) == ["$and"]
    assert all(next(iter(c.values())) == {"$eq": None, "$exists": True}
               for c in parse_term("task=null")["$or"])


def test_query_terms_and_json_filter_combine_with_and():
    assert build_filter(["adsorbate=CO"], '{"n_valid": {"$gt": 0}}') == {
        "$and": [{"adsorbate": "CO"}, {"n_valid": {"$gt": 0}}]
    }
    assert build_filter([], None) == {}
    for bad in ("3<a", "$where=1", "energy"):
        with pytest.raises(QueryError, match="cannot read query term"):
            parse_term(bad)
    with pytest.raises(QueryError, match="not valid JSON"):
        build_filter([], "{adsorbate: CO}")


def test_db_schemas_imports_neither_torch_nor_a_database_driver():
    code = (
        "import sys, omni_flows.db_schemas; "
        "print(sorted({'torch', 'pymongo', 'jobflow'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
