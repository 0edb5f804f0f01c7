"""`omni-flows benchmark hea` with a committee: sigma per site, the share within 2 sigma,
Spearman(sigma, |error|) and the reliability diagram.

References: the reliability points and shares by hand on a small case (the Gaussian's
z = 2 at p = 0.9545); each site's sigma against one OmniCalculator per member (the member
rows as tasks, one structure at a time) and statistics.stdev. The committee: omni-ads-0's
gpaw_rpbe with 4 members whose task weights are moved by a seeded perturbation (no
shipped checkpoint has a trained committee yet). Skips without the CHEAT data.
"""

import json
import statistics

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from omni_flows.accuracy.hea import GAS_REFERENCES, load_gas, load_sites, run_hea
from omni_flows.accuracy.results import DEFAULT_DATA_ROOT
from omni_flows.cli import app
from omni_flows.model import OmniCalculator, load_model, save_checkpoint
from omni_flows.model.committee import reliability

EXAMPLE = DEFAULT_DATA_ROOT / "hea_gpaw_rpbe" / "hea_example"
TASK, SCALE = "gpaw_rpbe", 3.0


def test_reliability_points_by_hand():
    """|errors| 0.05, 0.15, 0.25, 0.5 with sigma 0.1: z(0.5) = 0.674 covers 0.05 only,
    z(0.9545) = 2.000 covers 0.05 and 0.15, z(0.99) = 2.576 also 0.25."""
    expected, observed = reliability([0.05, -0.15, 0.25, -0.5], [0.1] * 4, (0.5, 0.9545, 0.99))
    np.testing.assert_allclose(expected, [0.5, 0.9545, 0.99])
    np.testing.assert_allclose(observed, [0.25, 0.5, 0.75])


@pytest.fixture(scope="module")
def committee_model(tmp_path_factory):
    """omni-ads-0 with a committee of 4 on gpaw_rpbe, members' task weights moved by 2 %
    noise (seed 27), scale 3, saved and given by path."""
    m = load_model("omni-ads-0")
    members = m.add_committee(TASK, 4)
    rows = [m.task_index(name) for name in members]
    generator = torch.Generator().manual_seed(27)
    with torch.no_grad():
        for name, p in m.task_specific_parameters().items():
            if name.endswith("task_weight"):
                noise = torch.randn(p[rows].shape, generator=generator, dtype=p.dtype)
                p[rows] += 0.02 * p[rows].abs().mean() * noise
    m.set_committee_scale(TASK, SCALE)
    path = tmp_path_factory.mktemp("committee") / "omni-ads-0-committee.safetensors"
    save_checkpoint(m, path)
    return path, members


@pytest.mark.skipif(not EXAMPLE.is_dir(), reason=f"CHEAT data not found at {EXAMPLE}")
def test_hea_sigma_is_the_members_spread_and_the_shares_follow(committee_model, tmp_path):
    path, members = committee_model
    metrics, entries = run_hea(str(path), TASK, EXAMPLE, slab_ids=[0], device="cpu")
    sites = {s.system_id: s for s in load_sites(EXAMPLE, [0])}
    gas = load_gas(EXAMPLE.parent / "gas", {s.ads for s in sites.values()})
    by_member = []
    for member in members:  # one calculator per member, one structure at a time
        calc = OmniCalculator(str(path), task=member, device="cpu")

        def energy(atoms):
            atoms = atoms.copy()
            atoms.calc = calc
            return atoms.get_potential_energy()

        ref = {stem: energy(a) for stem, a in gas.items()}
        by_member.append({i: energy(s.atoms) - energy(s.slab) - sum(
            c * ref[m] for m, c in GAS_REFERENCES[s.ads].items()) for i, s in sites.items()})
    assert {e.group for e in entries} == {"H", "O", "OH"} and len(entries) == 6
    for e in entries:
        by_hand = SCALE * statistics.stdev(b[e.system_id] for b in by_member)
        assert e.sigma == pytest.approx(by_hand, rel=1e-3, abs=1e-5)
        assert e.sigma > 1e-3  # the perturbation moves the members apart
    for ads in ("H", "O", "OH"):
        mine = [e for e in entries if e.group == ads]
        errors = np.array([e.predicted - e.reference for e in mine])
        sigmas = np.array([e.sigma for e in mine])
        assert metrics[f"{ads}_within_2sigma"] == np.mean(np.abs(errors) <= 2 * sigmas)
        assert metrics[f"{ads}_mean_sigma"] == pytest.approx(sigmas.mean())
        assert metrics[f"{ads}_spearman_sigma_error"] is None  # 2 sites: no rank correlation
    assert metrics["committee_scale"] == SCALE


@pytest.mark.skipif(not EXAMPLE.is_dir(), reason=f"CHEAT data not found at {EXAMPLE}")
def test_benchmark_hea_cli_prints_the_shares_and_draws_the_reliability_diagram(
        committee_model, tmp_path):
    path, _ = committee_model
    args = ["benchmark", "hea", "--data", str(EXAMPLE), "--model", f"{path}:{TASK}",
            "--device", "cpu", "--no-store", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args + ["--json"])
    assert result.exit_code == 0, result.output
    (metrics,) = json.loads(result.stdout).values()
    for ads in ("H", "O", "OH"):
        assert 0 <= metrics[f"{ads}_within_2sigma"] <= 1
        assert metrics[f"{ads}_n_sites"] == 4
        rho = metrics[f"{ads}_spearman_sigma_error"]
        assert rho is None or -1 <= rho <= 1
    (png,) = tmp_path.glob("hea_reliability-*.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    table = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "O_within_2sigma" in table.output and "reliability_diagram: " in table.output
