"""`omni-flows benchmark hea`: alloy adsorption energies in the CHEAT layout.

References: the DFT adsorption energies are recomputed here with plain ASE database
reads and the gas trajectories; relative to Pt(111) they are checked against CHEAT's
own adsorption energy of O*/OH* on Pt (key ``e`` of its pure-metal database); the
model's values against one OmniCalculator call per structure. Skips without the data.
"""

import json
import shutil

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect
from ase.io import read
from omni_flows.model import OmniCalculator
from typer.testing import CliRunner

from omni_flows.accuracy.hea import load_sites, run_hea
from omni_flows.accuracy.results import DEFAULT_DATA_ROOT, BenchmarkDataError
from omni_flows.cli import app

HEA = DEFAULT_DATA_ROOT / "hea_gpaw_rpbe"
EXAMPLE = HEA / "hea_example"
pytestmark = pytest.mark.skipif(not EXAMPLE.is_dir(), reason=f"CHEAT data not found at {HEA}")
runner = CliRunner()


def gas_energy(name):
    return read(HEA / "gas" / f"{name}.traj", -1).get_potential_energy()


def dft_o_adsorption(slab_id):
    """E(slab+O) - E(slab) - (E(H2O) - E(H2)) for every O row of ``slab_id``, by plain ASE."""
    (slab,) = connect(EXAMPLE / "example_project_slab.db").select(slabId=slab_id)
    ref = gas_energy("h2o") - gas_energy("h2")
    return sorted(r.energy - slab.energy - ref
                  for r in connect(EXAMPLE / "example_project_fcc_O.db").select(slabId=slab_id))


def test_hea_sites_follow_the_file_names_and_slab_ids():
    sites = load_sites(EXAMPLE)
    assert len(sites) == 12 and {s.ads for s in sites} == {"H", "O", "OH"}
    assert {(s.ads, s.site) for s in sites} == {("H", "fcc"), ("O", "fcc"), ("OH", "ontop")}
    assert all(len(s.slab) == 45 and len(s.atoms) > 45 for s in sites)
    assert {s.slab_id for s in load_sites(EXAMPLE, [1])} == {1}


def test_hea_gas_referenced_energies_match_plain_ase(tmp_path):
    metrics, entries = run_hea("7net-mf-0", "PBE", EXAMPLE, slab_ids=[0], device="cpu")
    o = sorted(e.reference for e in entries if "_fcc_O/" in e.system_id)
    assert o == pytest.approx(dft_o_adsorption(0), abs=1e-9)
    assert metrics["O_n_sites"] == metrics["OH_n_sites"] == metrics["H_n_sites"] == 2
    assert metrics["reference"] == "gas molecules"
    # the model's numbers: one OmniCalculator call per structure
    calc = OmniCalculator("7net-mf-0", task="PBE", device="cpu")

    def e(atoms):
        atoms = atoms.copy()
        atoms.calc = calc
        return atoms.get_potential_energy()

    (slab,) = connect(EXAMPLE / "example_project_slab.db").select(slabId=0)
    rows = list(connect(EXAMPLE / "example_project_fcc_O.db").select(slabId=0))
    ref = e(read(HEA / "gas" / "h2o.traj", -1)) - e(read(HEA / "gas" / "h2.traj", -1))
    mine = [e(r.toatoms()) - e(slab.toatoms()) - ref for r in rows]
    dft = [r.energy - slab.energy - (gas_energy("h2o") - gas_energy("h2")) for r in rows]
    err = np.array(mine) - np.array(dft)
    assert metrics["O_mae"] == pytest.approx(np.abs(err).mean(), abs=1e-4)
    assert metrics["O_mean_error"] == pytest.approx(err.mean(), abs=1e-4)
    assert metrics["O_spearman"] is None  # two sites: no rank correlation


def pt111_refs(target):
    """hea_example plus refs/ from CHEAT's Pt rows; the clean Pt slab energy from key ``e``."""
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("traj"))
    refs = target / "refs"
    refs.mkdir()
    pure = connect(HEA / "pure_metals.db")
    o = next(pure.select(element="Pt", ads="O"))
    h = next(pure.select(element="Pt", ads="H"))
    clean = h.toatoms()[:45]
    clean.calc = SinglePointCalculator(clean, energy=h.energy - h.e - 0.5 * gas_energy("h2"))
    for name, atoms in (("3x3x5_pt111_slab.db", clean), ("3x3x5_pt111_fcc_O.db", o.toatoms()),
                        ("3x3x5_pt111_ontop_OH.db",
                         next(pure.select(element="Pt", ads="OH")).toatoms())):
        connect(refs / name).write(atoms, relaxed=1)
    return target, o.e, next(pure.select(element="Pt", ads="OH")).e


def test_hea_relative_to_pt111_matches_cheat_pt_adsorption_energies(tmp_path):
    folder, e_o_pt, _ = pt111_refs(tmp_path / "data")
    metrics, entries = run_hea("7net-mf-0", "PBE", folder, slab_ids=[1], device="cpu")
    assert metrics["reference"] == "Pt(111)" and "H_mae" not in metrics  # no Pt H reference
    o = sorted(e.reference for e in entries if "_fcc_O/" in e.system_id)
    assert o == pytest.approx([v - e_o_pt for v in dft_o_adsorption(1)], abs=1e-6)


def test_hea_cli_json_and_bad_data(tmp_path):
    result = runner.invoke(app, ["benchmark", "hea", "--data", str(EXAMPLE), "--slab-id", "0",
                                 "--model", "7net-mf-0:PBE", "--device", "cpu", "--json",
                                 "--no-store", "--out", str(tmp_path)])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    metrics = json.loads(result.stdout)["7net-mf-0/PBE"]
    assert metrics["n_sites"] == 6 and metrics["O_mae"] >= 0
    (plot,) = tmp_path.glob("hea_parity-*.png")  # named by the run: never overwritten
    assert plot.stat().st_size > 0
    bad = tmp_path / "bad"
    bad.mkdir()
    connect(bad / "x_slab.db").write(read(HEA / "gas" / "h2.traj", -1))  # no slabId
    with pytest.raises(BenchmarkDataError, match="slabId"):
        load_sites(bad)
    result = runner.invoke(app, ["benchmark", "hea", "--data", str(tmp_path / "nowhere"),
                                 "--no-store"])
    assert result.exit_code != 0 and "nowhere" in str(result.exception or result.output)
