"""The computational hydrogen electrode: equilibrium potentials, limiting potentials, volcanoes,
plots, and Pt(111) ORR from the MLIP's own free energies against the literature."""

import matplotlib
import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111, molecule
from ase.constraints import FixAtoms
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS

from omni_flows.che import (
    MLIP,
    TEXTBOOK,
    TEXTBOOK_CORRECTIONS,
    analyse,
    free_energies_from_documents,
    free_energy_diagram,
    save_figure,
    scaling_relations,
    volcano_line,
    volcano_plot,
)
from omni_flows.workflows.errors import WorkflowInputError
from omni_flows.workflows.thermo.reactions import get_reaction, reaction_networks


@pytest.mark.parametrize("name, u0", [
    ("orr", 1.23),  # 4.92 eV / 4 (Nørskov et al. 2004)
    ("oer", 1.23),
    ("her", 0.0),
    ("co2rr", -0.10),  # CO2/CO: -0.10 V vs RHE (Peterson et al. 2010; NIST-JANAF dG_f)
    ("nrr", 0.06),  # N2/NH3(g): +0.06 V vs RHE from dG_f(NH3, g) = -16.4 kJ/mol
])
def test_equilibrium_potentials_are_the_standard_ones(name, u0):
    assert get_reaction(name).equilibrium_potential() == pytest.approx(u0, abs=0.01)


def test_every_step_balances_and_networks_are_as_documented():
    networks = reaction_networks()
    assert set(networks) == {"orr", "oer", "her", "co2rr", "nrr"}
    assert networks["orr"].intermediates == ["OOH", "O", "OH"]
    assert networks["nrr"].electrons == 6 and networks["oer"].electrons == -4
    with pytest.raises(WorkflowInputError, match="unknown reaction"):
        get_reaction("hor")


def test_ideal_orr_catalyst_has_all_steps_at_the_equilibrium_potential():
    """dG_OH = 1.23, dG_O = 2.46, dG_OOH = 3.69 eV: every step -1.23 eV, U_L = U0 = 1.23 V
    for ORR and OER alike, zero overpotential."""
    values = {"OH": 1.23, "O": 2.46, "OOH": 3.69}
    orr = analyse(get_reaction("orr"), values)
    np.testing.assert_allclose(orr.step_free_energies, -1.23, atol=1e-9)
    assert orr.limiting_potential == pytest.approx(1.23)
    assert orr.overpotential == pytest.approx(0.0, abs=1e-9)
    oer = analyse(get_reaction("oer"), values)
    assert oer.limiting_potential == pytest.approx(1.23)
    np.testing.assert_allclose(oer.step_free_energies_at(1.23), 0.0, atol=1e-9)


def test_limiting_potential_sign_convention_and_pds():
    """Reduction: dG_i(U) = dG_i(0) + eU, U_L = -max dG_i(0); at U_L the PDS is flat."""
    values = {"OH": 0.8, "O": 1.6, "OOH": 4.0}  # step dGs: -0.92, -2.4, -0.8, -0.8
    r = analyse(get_reaction("orr"), values)
    np.testing.assert_allclose(r.step_free_energies, [-0.92, -2.4, -0.8, -0.8], atol=1e-9)
    assert r.limiting_potential == pytest.approx(0.8)
    assert r.potential_determining_step in (2, 3)
    assert r.step_free_energies_at(r.limiting_potential).max() == pytest.approx(0.0, abs=1e-9)
    assert r.overpotential == pytest.approx(0.43)
    assert r.states_at(0.0)[-1] == pytest.approx(-4.92)


@pytest.mark.parametrize("dg_h, u_l, pds", [(0.1, -0.1, 0), (-0.2, -0.2, 1), (0.0, 0.0, 0)])
def test_her_limiting_potential_is_minus_abs_dg_h(dg_h, u_l, pds):
    r = analyse(get_reaction("her"), {"H": dg_h})
    assert r.limiting_potential == pytest.approx(u_l)
    assert r.potential_determining_step == pds


def test_co2rr_chemical_desorption_step_is_not_the_pds():
    r = analyse(get_reaction("co2rr"), {"COOH": 0.3, "CO": -0.5})
    assert r.step_free_energies[2] == pytest.approx(0.5)  # CO* -> CO(g), uphill, no electrons
    assert r.chemical_barriers == [2]
    assert r.potential_determining_step == 0
    # CO2(g) sits 0.208 eV below CO + H2O(l) - H2 (NIST-JANAF): step 1 = 0.3 + 0.208
    assert r.limiting_potential == pytest.approx(-(0.3 + 0.2078), abs=1e-3)


def test_scaling_volcano_tops_are_the_known_limits():
    """With dG_OOH = dG_OH + 3.2 eV and dG_O = 2 dG_OH (universal scalings, Man et al. 2011),
    the ORR volcano peaks at U_L = (4.92 - 3.2)/2 = 0.86 V and the least OER overpotential is
    (3.2 - 2.46)/2 = 0.37 V."""
    entries = _entries({"A": 0.5, "B": 1.0, "C": 1.5})
    fits = scaling_relations(entries, get_reaction("orr"))
    assert fits["OOH"].slope == pytest.approx(1.0) and fits["OOH"].intercept == pytest.approx(3.2)
    grid = np.linspace(0, 2, 2001)
    assert volcano_line(get_reaction("orr"), fits, grid).max() == pytest.approx(0.86, abs=1e-3)
    oer = volcano_line(get_reaction("oer"), scaling_relations(entries, get_reaction("oer")), grid)
    assert oer.min() - 1.23 == pytest.approx(0.37, abs=1e-3)


def _entries(oh_by_surface):
    from omni_flows.che import SurfaceFreeEnergies

    return [SurfaceFreeEnergies(s, {"OH": x, "O": 2 * x, "OOH": x + 3.2})
            for s, x in oh_by_surface.items()]


def _doc(bulk_formula, adsorbate, e_ads, g_ads=None, slab="s1", settings="a1b2c3d4e5",
         adsorbate_id=None, coverage_ml=0.25):
    doc = {"bulk_formula": bulk_formula, "miller_index": [1, 1, 1], "slab_id": slab,
           "adsorbate": adsorbate, "adsorbate_id": adsorbate_id or adsorbate,
           "settings_id": settings, "adsorption_energy": e_ads, "coverage_ml": coverage_ml}
    if g_ads is not None:
        doc["adsorption_free_energy"] = g_ads
    return doc


def test_documents_use_stored_free_energies_or_say_textbook():
    docs = [_doc("Pt", "OH", 0.9, 1.2), _doc("Pt", "*O", 1.5), _doc("Pt", "OOH", 4.0),
            _doc("Pd", "OH", 0.7, slab="s2")]
    entries, incomplete = free_energies_from_documents(docs, get_reaction("orr"))
    (pt,) = entries
    assert pt.surface == "Pt(111)"
    assert pt.values == pytest.approx({"OH": 1.2, "O": 1.55, "OOH": 4.4})
    assert pt.sources == {"OH": MLIP, "O": TEXTBOOK, "OOH": TEXTBOOK}
    assert incomplete == {"Pd(111)": ["OOH", "O"]}


def test_other_settings_are_another_entry_same_settings_twice_is_refused():
    docs = [_doc("Pt", n, e) for n, e in (("OH", 0.9), ("O", 1.5), ("OOH", 4.0))]
    docs += [_doc("Pt", n, e, settings="ffff000011") for n, e in
             (("OH", 1.0), ("O", 1.6), ("OOH", 4.1))]
    entries, _ = free_energies_from_documents(docs, get_reaction("orr"))
    assert [e.surface for e in entries] == ["Pt(111) [a1b2c3d4e5]", "Pt(111) [ffff000011]"]
    docs.append(_doc("Pt", "OH", 1.0, adsorbate_id="OH:0-12345678"))
    with pytest.raises(WorkflowInputError, match="several OH results"):
        free_energies_from_documents(docs, get_reaction("orr"))


def test_no_free_energy_and_no_textbook_value_is_an_error():
    docs = [_doc("Cu", "COOH", 0.2), _doc("Cu", "CO", -0.3)]
    with pytest.raises(WorkflowInputError, match="--free-energy"):
        free_energies_from_documents(docs, get_reaction("co2rr"))


def test_plots_are_written_without_touching_the_global_backend(tmp_path):
    backend = matplotlib.get_backend()
    entries = _entries({"Pt(111)": 0.9, "Pd(111)": 0.7, "Au(111)": 1.6})
    orr = get_reaction("orr")
    results = [analyse(orr, e.values, e.surface) for e in entries]
    save_figure(free_energy_diagram(results), tmp_path / "diagram.png")
    save_figure(volcano_plot(results, entries, scaling_relations(entries, orr)),
                tmp_path / "volcano.png")
    for name in ("diagram.png", "volcano.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend


# --- Pt(111) ORR from the MLIP's own adsorption free energies --------------------------


@pytest.fixture(scope="module")
def pt111_orr():
    """O (fcc), OH and OOH (ontop) on a relaxed 2x2x4 Pt(111) slab (0.25 ML, bottom two
    layers fixed), gas H2 and H2O, all with 7net-mf-0/PBE; free-energy corrections from the
    MLIP's vibrations. Gas references as the screen uses them (O = H2O - H2, ...)."""
    from omni_flows.model import OmniCalculator
    from omni_flows.workflows.thermo.thermochemistry import (
        adsorbate_free_energy,
        free_energy_correction,
        gas_free_energy,
    )

    calc = OmniCalculator("7net-mf-0", task="PBE", device="cpu")

    def relax(atoms, fmax=0.02):
        atoms.calc = calc
        BFGS(atoms, logfile=None).run(fmax=fmax, steps=400)
        return atoms.get_potential_energy()

    pt = bulk("Pt", "fcc", a=3.95)
    pt.calc = calc
    BFGS(FrechetCellFilter(pt), logfile=None).run(fmax=0.005)
    a = pt.cell.lengths()[0] * 2 ** 0.5

    def slab():
        s = fcc111("Pt", (2, 2, 4), a=a, vacuum=8.0)
        s.set_constraint(FixAtoms(indices=[x.index for x in s if x.tag >= 3]))
        return s

    e_slab = relax(slab())
    gases = {}
    for name in ("H2", "H2O"):
        m = molecule(name)
        m.center(vacuum=6.0)
        gases[name] = (m, relax(m, 0.005))
    e_h2, e_h2o = gases["H2"][1], gases["H2O"][1]
    thermo = {n: gas_free_energy(n, m, calc) for n, (m, _) in gases.items()}
    adsorbates = {
        "O": (Atoms("O"), "fcc", 1.2, e_h2o - e_h2),
        "OH": (Atoms("OH", positions=[(0, 0, 0), (0.3, 0, 0.95)]), "ontop", 2.0,
               e_h2o - 0.5 * e_h2),
        "OOH": (Atoms("OOH", positions=[(0, 0, 0), (1.0, 0, 0.9), (1.3, 0.8, 1.3)]), "ontop",
                2.0, 2 * e_h2o - 1.5 * e_h2),
    }
    dg, corrections = {}, {}
    for name, (ads, site, height, e_ref) in adsorbates.items():
        s = slab()
        add_adsorbate(s, ads, height, site)
        e_ads = relax(s) - e_slab - e_ref
        n = len(ads)
        free = adsorbate_free_energy(s, range(len(s) - n, len(s)), calc)
        corrections[name] = free_energy_correction(name, free, thermo)
        dg[name] = e_ads + corrections[name].free_energy_correction
    return dg, corrections


def test_mlip_free_energy_corrections_near_the_textbook_ones(pt111_orr):
    """dZPE - TdS + int(C dT) of O*, OH*, OOH* on Pt(111) from the MLIP's vibrations against
    the textbook 0.05 / 0.35 / 0.40 eV (Nørskov 2004; Man 2011). Ours include the heat
    capacity terms and the quasi-harmonic entropy of soft modes, theirs not: 0.15 eV."""
    _, corrections = pt111_orr
    for name, textbook in TEXTBOOK_CORRECTIONS.items():
        if name in corrections:
            assert corrections[name].free_energy_correction == pytest.approx(textbook, abs=0.15)
            assert corrections[name].n_imaginary == 0


def test_mlip_ooh_oh_scaling_on_pt111(pt111_orr):
    """dG_OOH - dG_OH = 3.2 eV across metals and oxides, scatter ~0.2 eV (Man et al. 2011;
    Viswanathan et al. 2012)."""
    dg, _ = pt111_orr
    assert dg["OOH"] - dg["OH"] == pytest.approx(3.2, abs=0.2)


# Nørskov et al. 2004 (J. Phys. Chem. B 108, 17886): U_L(Pt(111)) = 0.78 V, RPBE, O* at 1/2 ML,
# OH* in a water layer. Compared only under that solvation convention (OH* -0.50, OOH* -0.25
# eV, the preset viswanathan2012); the functional (the model's PBE task) and the coverage
# (1/4 ML here) still differ, and the 0.15 V tolerance holds them.
NORSKOV_2004_PT111 = 0.78


def test_mlip_orr_pt111_in_vacuum_is_no_literature_comparison(pt111_orr):
    """In vacuum (no solvation) the model's Pt(111) U_L is limited by OOH* formation and
    lies 0.3 V below 0.78 V: a convention gap, not a number to compare (docs/che.md). The
    vacuum step dGs add up to -4.92 eV (O2 at 4.92 eV, Nørskov et al. 2004)."""
    dg, _ = pt111_orr
    result = analyse(get_reaction("orr"), dg, "Pt(111)")
    assert sum(result.step_free_energies) == pytest.approx(-4.92)
    assert result.potential_determining_step == 0
    assert NORSKOV_2004_PT111 - result.limiting_potential > 0.2


def test_mlip_orr_pt111_under_the_literature_solvation_convention(pt111_orr):
    """With OH* -0.50 and OOH* -0.25 eV (the convention of the 0.78 V) the model's Pt(111)
    U_L is 0.78 V within 0.15 V."""
    from omni_flows.che import Solvation

    dg, _ = pt111_orr
    orr = get_reaction("orr")
    shifts = Solvation.parse("viswanathan2012", orr)
    solvated = {name: value + shifts.shift(name) for name, value in dg.items()}
    result = analyse(orr, solvated, "Pt(111)")
    assert result.limiting_potential == pytest.approx(NORSKOV_2004_PT111, abs=0.15)


# --- omni-flows report che on stored documents -----------------------------------------


def _cli_env(settings):
    return {"OMNI_FLOWS_HOME": str(settings.home), "OMNI_FLOWS_DB_PORT": str(settings.db_port),
            "OMNI_FLOWS_DATABASE": settings.database, "OMNI_FLOWS_MONGODB_URI": None,
            "OMNI_FLOWS_CONFIG": None, "COLUMNS": "250"}


def test_report_che_prints_limiting_potentials_and_writes_figures(settings, tmp_path):
    """Stored adsorption_best rows -> table per surface, PNGs and CSV under
    OUT/CAMPAIGN/REACTION; a second campaign leaves the first one's files alone."""
    import csv

    from typer.testing import CliRunner

    from omni_flows.cli import app
    from omni_flows.stores import connect_database

    oh = {"Pt": 0.45, "Pd": 0.30, "Au": 1.20}  # E_ads of OH; O and OOH by the scalings
    docs = []
    for metal, e in oh.items():
        docs += [_doc(metal, "OH", e, slab=f"{metal}-111"),
                 _doc(metal, "O", 2 * e + 0.6, slab=f"{metal}-111"),
                 _doc(metal, "*OOH", e + 3.15, slab=f"{metal}-111")]
    docs.append(_doc("Ag", "OH", 1.0, slab="Ag-111"))  # incomplete: skipped, said so
    connect_database(settings)["adsorption_best"].insert_many(docs)
    runner = CliRunner()
    args = ["report", "che", "--reaction", "orr", "--out", str(tmp_path)]
    result = runner.invoke(app, args + ["--campaign", "c1"], env=_cli_env(settings))
    assert result.exit_code == 0, result.output
    assert "Ag(111): skipped, no valid OOH*, O*" in result.output
    assert "textbook" in result.output  # no stored free energies: said so
    folder = tmp_path / "c1" / "orr"
    for name in ("che_orr_diagram.png", "che_orr_volcano.png", "che_orr_scaling.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    rows = {r["surface"]: r for r in csv.DictReader(open(folder / "che_orr.csv"))}
    assert set(rows) == {"Pt(111)", "Pd(111)", "Au(111)"}
    for metal, e in oh.items():
        values = {"OH": e + 0.35, "O": 2 * e + 0.65, "OOH": e + 3.55}
        expected = analyse(get_reaction("orr"), values)
        assert float(rows[f"{metal}(111)"]["limiting_potential"]) == pytest.approx(
            expected.limiting_potential)
        assert f"{expected.limiting_potential:.2f}" in result.output
    before = (folder / "che_orr_volcano.png").read_bytes()
    result = runner.invoke(app, args + ["--campaign", "c2", "--filter", '{"bulk_formula": '
                                        '{"$in": ["Pt", "Pd"]}}'], env=_cli_env(settings))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c2" / "orr" / "che_orr_volcano.png").is_file()
    assert (folder / "che_orr_volcano.png").read_bytes() == before


def test_report_che_unknown_reaction_fails_before_the_database(tmp_path):
    from typer.testing import CliRunner

    from omni_flows.cli import app

    env = {"OMNI_FLOWS_MONGODB_URI": "mongodb://127.0.0.1:9/", "OMNI_FLOWS_CONFIG": None}
    result = CliRunner().invoke(app, ["report", "che", "--reaction", "hor"], env=env)
    assert isinstance(result.exception, WorkflowInputError)
    assert "unknown reaction 'hor'" in str(result.exception)


# --- solvation conventions, coverage and the JSON report (issue 29) --------------------


def test_solvation_presets_explicit_shifts_and_refusals():
    """'none' shifts nothing; the preset is OH* -0.50, OOH* -0.25 eV with its source;
    explicit shifts are read per intermediate ('OH*' or 'OH'); bad values are refused."""
    from omni_flows.che import Solvation

    orr = get_reaction("orr")
    assert Solvation.parse("none", orr).shifts == {}
    preset = Solvation.parse("viswanathan2012", orr)
    assert preset.shifts == {"OH": -0.50, "OOH": -0.25}
    assert "J. Phys. Chem. Lett. 3, 2948 (2012)" in preset.label
    given = Solvation.parse("OH*=-0.3, OOH=-0.3", orr)
    assert given.shifts == {"OH": -0.3, "OOH": -0.3} and given.tag == "OH-0.30_OOH-0.30"
    for bad, message in (("wet", "use none, a preset"), ("CO=-0.1", "'CO' is not an "
                         "intermediate of ORR"), ("OH=abc", "'abc' is not a number"),
                         ("OH=nan", "'nan' is not a number"), ("OH=-0.5,OH=-0.4", "twice")):
        with pytest.raises(WorkflowInputError, match=message):
            Solvation.parse(bad, orr)


def _pt_orr_docs():
    """Pt(111) O, OH, OOH at 1/9 ML (a 3x3 cell) with MLIP free energies, and a GPAW
    validation of O* at the screen's settings (one of OH* at other settings does not count)."""
    g = {"OOH": 4.50, "O": 1.95, "OH": 1.20}
    best = [_doc("Pt", n, g[n.strip("*")] - 0.3, g[n.strip("*")], slab="Pt-111",
                 coverage_ml=1 / 9) for n in ("*OOH", "O", "OH")]
    validations = [{"slab_id": "Pt-111", "adsorbate": "O", "screen_settings_id": "a1b2c3d4e5",
                    "dft_code": "gpaw", "settings_id": "9f8e7d6c5b"},
                   {"slab_id": "Pt-111", "adsorbate": "OH", "screen_settings_id": "0000000000",
                    "dft_code": "gpaw", "settings_id": "9f8e7d6c5b"}]
    return g, best, validations


def test_report_che_json_with_and_without_solvation_differs_by_exactly_the_shifts(
        settings, tmp_path):
    """`report che --reaction orr --json`, then with `--solvation OH=-0.5,OOH=-0.25`: each
    dG differs by its shift, each step by the difference of its two intermediates' shifts
    (O2 -> OOH*: -0.25, OOH* -> O*: +0.25, O* -> OH*: -0.50, OH* -> H2O: +0.50; written out
    by hand here), U_L is the analysis of the shifted values, and the coverage (1/9 ML),
    settings id and DFT-checked O* come with every surface."""
    import json

    from typer.testing import CliRunner

    from omni_flows.cli import app
    from omni_flows.stores import connect_database

    g, best, validations = _pt_orr_docs()
    db = connect_database(settings)
    db["adsorption_best"].insert_many(best)
    db["dft_validation"].insert_many(validations)
    args = ["report", "che", "--reaction", "orr", "--json", "--out", str(tmp_path)]
    runner = CliRunner()
    reports = []
    for extra in ([], ["--solvation", "OH=-0.5,OOH=-0.25"]):
        result = runner.invoke(app, args + extra, env=_cli_env(settings))
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    vacuum, solvated = reports
    assert vacuum["reaction"] == "orr" and vacuum["solvation"]["shifts"] == {}
    assert solvated["solvation"] == {"name": "custom", "shifts": {"OH*": -0.5, "OOH*": -0.25},
                                     "source": "given with --solvation"}
    (v,), (w,) = vacuum["surfaces"], solvated["surfaces"]
    assert v["surface"] == "Pt(111)" and v["settings_id"] == "a1b2c3d4e5"
    assert v["delta_g"] == pytest.approx({"OOH*": g["OOH"], "O*": g["O"], "OH*": g["OH"]})
    shifts = {"OOH*": -0.25, "O*": 0.0, "OH*": -0.5}
    for name, shift in shifts.items():
        assert w["delta_g"][name] - v["delta_g"][name] == pytest.approx(shift, abs=1e-12)
    step_shifts = [-0.25, 0.25, -0.5, 0.5]
    for a, b, shift in zip(v["steps"], w["steps"], step_shifts):
        assert b["delta_g"] - a["delta_g"] == pytest.approx(shift, abs=1e-12)
    # vacuum: steps 4.92 - 4.50 = -0.42 (O2 -> OOH*), ..., U_L 0.42 V at OOH* formation
    assert v["limiting_potential"] == pytest.approx(0.42)
    assert v["potential_determining_step"]["index"] == 1
    expected = analyse(get_reaction("orr"), {"OOH": 4.25, "O": 1.95, "OH": 0.70})
    assert w["limiting_potential"] == pytest.approx(expected.limiting_potential)
    assert w["limiting_potential"] == pytest.approx(0.67)  # 4.92 - 4.25
    for s in (v, w):
        assert s["coverage_ml"] == pytest.approx({n: 1 / 9 for n in shifts})
        assert s["dft_checked"] == ["O*"]


def test_report_che_says_its_convention_and_coverage_everywhere(settings, tmp_path):
    """The table prints the convention and θ; the CSV has a solvation and coverage column;
    a solvated report's files carry the convention in their names (the vacuum report's
    stay), and its JSON is saved beside them."""
    import csv
    import json

    from typer.testing import CliRunner

    from omni_flows.cli import app
    from omni_flows.stores import connect_database

    _, best, _ = _pt_orr_docs()
    connect_database(settings)["adsorption_best"].insert_many(best)
    args = ["report", "che", "--reaction", "orr", "--out", str(tmp_path), "--campaign", "c"]
    runner = CliRunner()
    plain = runner.invoke(app, args, env=_cli_env(settings))
    assert plain.exit_code == 0, plain.output
    assert "solvation none: vacuum, no solvation" in plain.output
    assert "0.111" in plain.output and "θ (ML)" in plain.output
    wet = runner.invoke(app, args + ["--solvation", "viswanathan2012"], env=_cli_env(settings))
    assert wet.exit_code == 0, wet.output
    assert "solvation viswanathan2012: OH* -0.50, OOH* -0.25 eV" in wet.output
    folder = tmp_path / "c" / "orr"
    assert (folder / "che_orr.csv").is_file() and (folder / "che_orr_volcano.png").is_file()
    (row,) = csv.DictReader(open(folder / "che_orr_viswanathan2012.csv"))
    assert row["solvation"].startswith("solvation viswanathan2012: OH* -0.50, OOH* -0.25 eV")
    assert float(row["coverage_ml_O"]) == pytest.approx(1 / 9)
    assert float(row["dG_OH"]) == pytest.approx(1.20 - 0.50)
    saved = json.loads((folder / "che_orr_viswanathan2012.json").read_text())
    assert saved["solvation"]["name"] == "viswanathan2012"
    assert (folder / "che_orr_viswanathan2012_diagram.png").read_bytes()[:4] == b"\x89PNG"


def test_report_che_at_80_columns_keeps_surfaces_and_numbers_whole(settings, tmp_path):
    """Issue 28's reproduction: `COLUMNS=80 omni-flows report che --reaction orr` showed
    "Pt(…" and ΔG as "-2.…". Every surface name and every number of the JSON report
    appears whole in the 80-column output."""
    import json

    from typer.testing import CliRunner

    from omni_flows.cli import app
    from omni_flows.stores import connect_database

    _, best, _ = _pt_orr_docs()
    connect_database(settings)["adsorption_best"].insert_many(best)
    args = ["report", "che", "--reaction", "orr", "--out", str(tmp_path), "--campaign", "c"]
    runner = CliRunner()
    narrow = runner.invoke(app, args, env={**_cli_env(settings), "COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    assert "…" not in narrow.output
    assert max(len(line) for line in narrow.output.splitlines()) <= 80
    report = json.loads(runner.invoke(app, args + ["--json"], env=_cli_env(settings)).output)
    for surface in report["surfaces"]:
        assert surface["surface"] in narrow.output
        assert f"{surface['limiting_potential']:.2f}" in narrow.output
        for dg in surface["delta_g"].values():
            assert f"{dg:.2f}" in narrow.output
