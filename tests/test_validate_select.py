"""`omni-flows validate --select uncertain`: the stored results of largest committee sigma.

Reference: the stored documents themselves (a real SecantusDB), sorted here by hand; the
CLI contract for what cannot be selected (exit code 2 through omni_flows.errors, a
message naming the fix, nothing run).
"""

import pytest
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.errors import exit_code, user_error_message
from omni_flows.results import ResultsNotFoundError, validation_results
from omni_flows.stores import connect_database

MODEL = "7net-mf-0"
# (slab, adsorbate, E_ads, sigma, valid, coverage): sigma None = a screen without committee
STORED = [("s1", "O", -0.2, 0.31, True, 1), ("s2", "O", -1.5, 0.05, True, 1),
          ("s3", "O", 0.4, 0.12, True, 1), ("s4", "OH", -0.9, 0.27, True, 1),
          ("s5", "OH", -0.3, None, True, 1), ("s6", "O", -2.0, 0.90, False, 1),
          ("s7", "O", -3.0, 0.80, True, 2), ("s8", "OH", 0.1, 0.19, True, None)]


def _doc(slab, adsorbate, e_ads, sigma, valid, coverage):
    doc = {"slab_id": slab, "adsorbate": adsorbate, "adsorption_energy": e_ads, "valid": valid,
           "settings_id": "a1b2c3d4e5", "provenance": {"model_name": MODEL}}
    if coverage is not None:
        doc["coverage"] = coverage
    if sigma is not None:
        doc |= {"adsorption_energy_std": sigma, "committee_scale": 2.0}
    return doc


def _env(settings):
    return {"OMNI_FLOWS_HOME": str(settings.home), "OMNI_FLOWS_DB_PORT": str(settings.db_port),
            "OMNI_FLOWS_DATABASE": settings.database, "OMNI_FLOWS_MONGODB_URI": None,
            "OMNI_FLOWS_CONFIG": None, "OMNI_FLOWS_DEVICE": "cpu"}


def test_select_uncertain_picks_exactly_the_k_largest_sigma(settings):
    """Valid, one adsorbate per cell (s6 invalid, s7 a coverage result: left out however
    large their sigma); s5 has no sigma. Largest sigma: s1 0.31, s4 0.27, s8 0.19, s3 0.12."""
    db = connect_database(settings)
    db["adsorption_best"].insert_many([_doc(*row) for row in STORED])
    eligible = [r for r in STORED if r[4] and r[5] in (1, None)]
    for k in (1, 3, 4):
        chosen = validation_results(db, k, None, MODEL, "uncertain")
        by_hand = sorted((r for r in eligible if r[3] is not None), key=lambda r: -r[3])[:k]
        assert [d["slab_id"] for d in chosen] == [r[0] for r in by_hand]
    assert [d["slab_id"] for d in validation_results(db, 3, None, MODEL, "uncertain")] == [
        "s1", "s4", "s8"]
    lowest = validation_results(db, 2, None, MODEL, "lowest")  # today's selection, beside it
    assert [d["slab_id"] for d in lowest] == ["s2", "s4"]
    only_o = validation_results(db, 5, ["O"], MODEL, "uncertain")
    assert [d["slab_id"] for d in only_o] == ["s1", "s3", "s2"]


def test_select_uncertain_without_any_sigma_is_refused_before_any_compute(settings):
    db = connect_database(settings)
    db["adsorption_best"].insert_many([_doc("s1", "O", -0.2, None, True, 1),
                                       _doc("s2", "O", -0.5, None, True, 1)])
    result = CliRunner().invoke(app, ["validate", "--select", "uncertain", "--top", "1"],
                                env=_env(settings))
    assert isinstance(result.exception, ResultsNotFoundError), result.output
    assert user_error_message(result.exception) and exit_code(result.exception) == 2
    message = str(result.exception)
    assert "\n" not in message
    assert message.startswith("--select uncertain: no stored result of model 7net-mf-0 has a "
                              "sigma (adsorption_energy_std)")
    assert "r2SCAN validation" not in result.output  # nothing ran
    with pytest.raises(ResultsNotFoundError, match="use --select lowest"):
        validation_results(db, 1, None, MODEL, "uncertain")
