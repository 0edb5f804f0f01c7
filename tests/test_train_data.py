"""Graph cache on real OC20 data, and the `omni-flows train` command on a tiny model.

References: the FixAtoms constraint and the calculator results stored in the
.traj files (read independently with ase.io.read).
"""

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write
from omni_flows.model import load_model
from omni_flows.model.train.config import DatasetConfig
from omni_flows.model.train.graph_cache import open_dataset
from typer.testing import CliRunner

from omni_flows.cli import app

SHARED = Path(
    os.environ.get(
        "OMNI_FLOWS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)
OC20 = SHARED / "oc20_relaxations" / "random1000100.traj"


@pytest.mark.skipif(
    not OC20.exists(), reason=f"shared OC20 data not found at {OC20} (set OMNI_FLOWS_SHARED_DATA)"
)
def test_train_cache_keeps_oc20_labels_and_fixed_atoms(tmp_path):
    """Cached energies, raw forces (fixed atoms included) and the free mask match the .traj file."""
    spec = DatasetConfig(path=str(OC20), task="oc20", every=25)
    store = open_dataset(spec, 5.0, tmp_path)
    frames = read(OC20, "::25")
    assert len(store) == len(frames)
    folder = store.folder
    stamp = (folder / "positions.bin").stat().st_mtime_ns
    assert open_dataset(spec, 5.0, tmp_path).folder == folder  # reused, not rebuilt
    assert (folder / "positions.bin").stat().st_mtime_ns == stamp
    for k in (0, len(frames) - 1):
        atoms, cached = frames[k], store[k]
        fixed = atoms.constraints[0].index
        assert cached["energy"] == atoms.calc.results["energy"]
        np.testing.assert_array_equal(cached["forces"], atoms.calc.results["forces"])
        assert not cached["free"][fixed].any() and cached["free"].sum() == len(atoms) - len(fixed)
        assert np.isnan(cached["stress"]).all()  # OC20 has no stress: not zero-filled


def test_train_cli_writes_checkpoint_logs_and_plot(tmp_path):
    frames = []
    for k in range(6):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=atoms.get_potential_energy(),
            forces=atoms.get_forces(),
            stress=atoms.get_stress(),
        )
        frames.append(atoms)
    write(tmp_path / "cu.extxyz", frames)
    out = tmp_path / "out"
    cfg = {
        "data": {
            "train": [{"path": str(tmp_path / "cu.extxyz"), "task": "A"}],
            "valid": [{"path": str(tmp_path / "cu.extxyz"), "task": "A", "index": ":2"}],
            "batch_size": 3,
            "cache_dir": str(tmp_path / "cache"),
        },
        "model": {
            "config": {
                "species": ["Cu"],
                "cutoff": 3.5,
                "node_irreps": ["4x0e", "4x0e+2x1o", "4x0e"],
                "lmax_edge": 1,
                "radial_mlp_hidden": [4],
                "tasks": ["A", "B"],
                "task_inputs": ["self_interaction_1"],
                "self_connection": "linear",
            }
        },
        "regularization": {"weight": 1.0e-3},
        "epochs": 2,
        "output_dir": str(out),
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "train.yaml"), "--no-progress"])
    assert result.exit_code == 0, result.output
    for name in ("state.pt", "model.safetensors", "log.csv", "steps.csv", "loss_curve.png"):
        assert (out / name).exists(), name
    assert load_model(out / "model.safetensors").config.tasks == ["A", "B"]
    assert "valid_A_force_mae_mev_a" in (out / "log.csv").read_text()
    bad = CliRunner().invoke(app, ["train", str(tmp_path / "missing.yaml")])
    assert bad.exit_code != 0
