"""Error bars of `report che` from stored committee members (omni_flows.che_uncertainty).

References: each sigma by hand from the stored members (statistics.stdev, ddof 1, times the
stored committee scale; a step's members are the members' own step dGs); the
probabilities against certainties (one surface better in every member by far) and
symmetries (two identical or mirrored surfaces: 1/2 each; HER at dG_H = 0: either step
is the PDS with probability 1/2); the correlation of one committee across surfaces
(two surfaces whose members move together keep their order in every draw).
"""

import csv
import json
import statistics

import numpy as np
import pytest
from typer.testing import CliRunner

from omni_flows.che import Solvation, SurfaceFreeEnergies, analyse
from omni_flows.che_report import CHEReport
from omni_flows.che_uncertainty import MemberSpread, campaign_uncertainty
from omni_flows.cli import app
from omni_flows.workflows.thermo.reactions import get_reaction

ORR, HER = get_reaction("orr"), get_reaction("her")
SCALE = 2.0
MODEL = {"model_name": "omni-ads-test", "task": "gpaw_rpbe", "checkpoint_hash": "abc"}
# raw member E_ads (eV) of Pt(111); the model's own values beside them
PT = {"OH": (0.80, [0.78, 0.83, 0.80, 0.76]), "O": (1.60, [1.52, 1.66, 1.61, 1.58]),
      "OOH": (3.50, [3.48, 3.55, 3.50, 3.44])}


def _doc(metal, adsorbate, e_ads, members=None):
    doc = {"bulk_formula": metal, "miller_index": [1, 1, 1], "slab_id": f"{metal}-111",
           "adsorbate": adsorbate, "adsorbate_id": adsorbate, "settings_id": "a1b2c3d4e5",
           "adsorption_energy": e_ads, "coverage_ml": 0.25, "provenance": MODEL}
    if members is not None:
        doc |= {"adsorption_energy_members": members, "committee_scale": SCALE,
                "adsorption_energy_std": SCALE * statistics.stdev(members)}
    return doc


def _env(settings, columns=250):
    return {"OMNI_FLOWS_HOME": str(settings.home), "OMNI_FLOWS_DB_PORT": str(settings.db_port),
            "OMNI_FLOWS_DATABASE": settings.database, "OMNI_FLOWS_MONGODB_URI": None,
            "OMNI_FLOWS_CONFIG": None, "COLUMNS": str(columns)}


def test_report_che_sigmas_are_the_stored_members_spread(settings, tmp_path):
    """Pt(111) with members: each dG's sigma is 2 x stdev of its members; step 2
    (OOH* -> O*) has 2 x stdev of the members' own O - OOH (the H2O term is one number).
    Au(111) without members has no sigma anywhere (None in JSON, empty in CSV, no ±),
    and no surface gets a P(best) while one lacks members."""
    from omni_flows.stores import connect_database

    docs = [_doc("Pt", n, e, m) for n, (e, m) in PT.items()]
    docs += [_doc("Au", n, e + 0.8) for n, (e, _) in PT.items()]
    connect_database(settings)["adsorption_best"].insert_many(docs)
    args = ["report", "che", "--reaction", "orr", "--out", str(tmp_path), "--campaign", "c"]
    runner = CliRunner()
    result = runner.invoke(app, args + ["--json"], env=_env(settings))
    assert result.exit_code == 0, result.output
    pt, au = sorted(json.loads(result.stdout)["surfaces"], key=lambda s: s["surface"] != "Pt(111)")
    for name, (_, members) in PT.items():
        assert pt["delta_g_std"][f"{name}*"] == pytest.approx(SCALE * statistics.stdev(members))
    step2 = [o - h for o, h in zip(PT["O"][1], PT["OOH"][1])]
    assert pt["steps"][1]["delta_g_std"] == pytest.approx(SCALE * statistics.stdev(step2))
    # dG: OOH 3.90, O 1.65, OH 1.15 eV; steps -1.02, -2.25, -0.50, -1.15: step 3 (O* -> OH*)
    # sets U_L = 0.50 V, 0.5 eV above the next, so U_L's sigma is step 3's, O - OH by hand
    assert pt["potential_determining_step"]["index"] == 3
    assert pt["limiting_potential"] == pytest.approx(0.50)
    step3 = [h - o for h, o in zip(PT["OH"][1], PT["O"][1])]
    assert pt["limiting_potential_std"] == pytest.approx(SCALE * statistics.stdev(step3), rel=0.05)
    assert pt["potential_determining_step"]["probability"] == 1.0
    assert pt["p_best"] is None and au["p_best"] is None  # Au has no members
    assert au["delta_g_std"] == {"OOH*": None, "O*": None, "OH*": None}
    assert au["limiting_potential_std"] is None and au["steps"][0]["delta_g_std"] is None

    table = runner.invoke(app, args, env=_env(settings))
    assert table.exit_code == 0, table.output
    assert f"{PT['OH'][0] + 0.35:.2f}±{pt['delta_g_std']['OH*']:.2f}" in table.output
    assert "no P(best): Au(111) has no committee members" in table.output
    rows = {r["surface"]: r for r in csv.DictReader(open(tmp_path / "c/orr/che_orr.csv"))}
    assert float(rows["Pt(111)"]["dG_std_O"]) == pytest.approx(pt["delta_g_std"]["O*"])
    assert rows["Au(111)"]["dG_std_O"] == "" and rows["Au(111)"]["limiting_potential_std"] == ""
    assert (tmp_path / "c/orr/che_orr_volcano.png").read_bytes()[:4] == b"\x89PNG"


def _entry(surface, values, deviations, committee=("m", "t", "h", 4)):
    """An entry whose members deviate by ``deviations`` (eV, scale included) per name."""
    return SurfaceFreeEnergies(surface, dict(values), spreads={
        n: MemberSpread(committee, np.asarray(d, float)) for n, d in deviations.items()})


def _uncertainty(network, entries):
    results = [analyse(network, e.values, e.surface) for e in entries]
    return campaign_uncertainty(entries, results, network)


D = [0.05, -0.03, 0.01, -0.03]  # sums to 0: deviations from the members' mean


def test_p_best_is_certain_far_apart_and_one_half_for_identical_or_mirrored_surfaces():
    her = {"H": D}
    far = _uncertainty(HER, [_entry("A", {"H": 0.05}, her), _entry("B", {"H": 0.9}, her,
                                                                          ("other",) * 3 + (4,))])
    assert [u.p_best for u in far] == [1.0, 0.0]  # |dG_H| 0.05 vs 0.9 eV, sigma 0.04
    same = _uncertainty(HER, [_entry("A", {"H": 0.2}, her), _entry("B", {"H": 0.2}, her)])
    assert [u.p_best for u in same] == [0.5, 0.5]  # tied in every draw: credit shared
    mirrored = _uncertainty(HER, [_entry("A", {"H": 0.2}, her),
                                  _entry("B", {"H": 0.2}, {"H": [-d for d in D]})])
    assert mirrored[0].p_best == pytest.approx(0.5, abs=1e-12)  # antithetic draws: exact
    assert sum(u.p_best for u in mirrored) == pytest.approx(1.0)


def test_one_committee_is_correlated_across_surfaces():
    """dG_H 2.0 and 2.1 eV, sigma 0.38 eV each (HER: the lower |dG_H| is best): members
    that move both surfaces together keep A best in every draw; two committees
    (independent) make B best in about 43 % (P(N(0, 0.54) < -0.1))."""
    big = [0.5, -0.3, 0.1, -0.3]
    together = _uncertainty(HER, [_entry("A", {"H": 2.0}, {"H": big}),
                                  _entry("B", {"H": 2.1}, {"H": big})])
    assert together[0].p_best == 1.0
    apart = _uncertainty(HER, [_entry("A", {"H": 2.0}, {"H": big}),
                               _entry("B", {"H": 2.1}, {"H": big}, ("other",) * 3 + (4,))])
    assert apart[1].p_best == pytest.approx(0.43, abs=0.05)


def test_p_pds_is_certain_far_from_a_tie_and_one_half_at_dg_h_zero():
    """HER: step 1 (H adsorption) sets U_L when dG_H > 0, step 2 when dG_H < 0."""
    (far,) = _uncertainty(HER, [_entry("A", {"H": 0.5}, {"H": D})])
    assert far.p_pds == 1.0
    assert far.limiting_potential_std == pytest.approx(statistics.stdev(D), rel=0.05)
    (tie,) = _uncertainty(HER, [_entry("A", {"H": 0.0}, {"H": D})])
    assert tie.p_pds == pytest.approx(0.5, abs=1e-12)


def test_no_members_no_sigma_and_the_report_object_says_so():
    docs = [_doc("Pt", n, e) for n, (e, _) in PT.items()]
    report = CHEReport.from_documents(docs, ORR, Solvation())
    (surface,) = report.as_dict()["surfaces"]
    assert not report.has_uncertainty and surface["p_best"] is None
    assert set(surface["delta_g_std"].values()) == {None}
    assert surface["potential_determining_step"]["probability"] is None
