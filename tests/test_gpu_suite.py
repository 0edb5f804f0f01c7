"""benchmarks/gpu_suite.py at toy sizes on CPU: every section runs and writes its figures.

The figures on CPU are not GPU figures; these tests check that the suite runs end to
end, records what it skipped, and that its checks hold where they are checks: parity
against sevenn within the issue's tolerance, a batched relaxation reaching the minima
of the one-by-one run, a screen whose measured peaks stay within its budget.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_suite.py"


def run_suite(tmp_path, *args, timeout=900):
    out = tmp_path / "suite.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, str(SUITE), "--device", "cpu", "--toy", "--threads", "1",
                          "--out", str(out), *args], capture_output=True, text=True, env=env,
                         timeout=timeout)
    return res, out


def check_relax_and_screen(sections):
    relax = sections["relax"]
    assert relax["status"] == "ok", relax
    assert relax["sequential_placements_timed"] == relax["placements"]
    assert relax["batched_converged"] == relax["sequential_converged"] == relax["placements"]
    assert relax["max_dE_same_minima"] < 1e-3  # same optimizer, same minima (eV)
    assert relax["throughput_ratio"] > 0
    screen = sections["screen"]
    assert screen["status"] == "ok", screen
    s = screen["screen"]
    assert s["evaluated"] == s["structures"] and s["oom_splits"] == s["unsplittable_ooms"] == 0
    assert s["max_measured_over_budget"] <= 1.0
    assert s["max_dE_per_atom_vs_one_by_one"] < 1e-5
    for check in screen["prediction_checks"]:  # the fit, on a cell it never saw
        assert abs(check["relative_error"]) < 0.3


def test_suite_relax_and_screen_sections(tmp_path):
    res, out = run_suite(tmp_path, "--sections", "relax,screen")
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["environment"]["torch"] and report["command"].startswith("python benchmarks/gpu_suite.py")
    assert set(report["sections"]) == {"relax", "screen"}
    check_relax_and_screen(report["sections"])


@pytest.mark.parametrize("args, message", [(["--sections", "speed,warp"], "unknown section"),
                                           (["--device", "cuda"], "no CUDA device")])
def test_bad_input_exits_2_before_any_work(tmp_path, args, message):
    if "cuda" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    res = subprocess.run([sys.executable, str(SUITE), *args, "--out", str(tmp_path / "x.json")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_toy_suite_runs_every_section_end_to_end(tmp_path):
    res, out = run_suite(tmp_path, "--budget", "900")
    assert res.returncode == 0, res.stderr[-3000:]
    sections = json.loads(out.read_text())["sections"]
    assert set(sections) == {"parity", "speed", "memory", "relax", "screen", "train"}
    assert all(s["status"] == "ok" for s in sections.values()), {k: s["skipped"] for k, s in sections.items()}

    parity = sections["parity"]
    assert parity["all_within_tolerance"]
    runs = {(r["model"], r["dtype"], r["backend"]) for r in parity["rows"]}
    for model in ("7net-0", "7net-mf-0", "omni13-random"):
        for dtype in ("float32", "float64"):
            assert (model, dtype, "e3nn") in runs and (model, dtype, "cueq") in runs
    assert parity["backends"]["compile"].startswith("skipped")  # minutes on CPU

    speed = sections["speed"]
    assert set(speed["ratio_sevenn_best_over_ours"]["ours_e3nn"]) == set(speed["atoms"])
    memory = sections["memory"]["models"]
    for label in ("7net-mf-0", "mf-ompa-random"):
        assert "largest_fitting_atoms" in memory[label]["e3nn"]
    check_relax_and_screen(sections)
    train = sections["train"]
    assert train["ours_structures_per_s"] > 0 and train["sevenn_structures_per_s"] > 0
