"""The model's user-facing behaviour: errors, batching, tasks, checkpoints, CLI."""

import json
import platform
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from omni_flows.model import OmniCalculator, load_model, predict
from omni_flows.model.checkpoint import load_checkpoint, save_checkpoint
from omni_flows.model.errors import (
    CheckpointError, InvalidStructureError, ModelNotFoundError, OmniFlowsError, UnknownElementError,
    UnknownTaskError,
)
from omni_flows.model.inference import evaluate

from structures import co_on_pt111, cu_bulk, small_cell, water, wire


@pytest.fixture(scope="module")
def mf0():
    return load_model("7net-mf-0")


def test_unknown_element_names_element_and_lists_known(mf0):
    atoms = Atoms("OgH", positions=[[0, 0, 0], [0, 0, 1.0]])
    with pytest.raises(UnknownElementError, match=r"\['Og'\].*knows 89 elements"):
        evaluate(mf0, [atoms], "PBE")


def test_task_errors():
    with pytest.raises(UnknownTaskError, match=r"R2SCAN"):
        OmniCalculator("7net-mf-0", task="HSE")
    with pytest.raises(UnknownTaskError, match="choose one"):
        OmniCalculator("7net-mf-0")
    OmniCalculator("7net-0")  # single-task: no task needed


@pytest.mark.parametrize("bad,match", [
    ("nan", "NaN or infinite"),
    ("close", "closer than 0.1"),
    ("nocell", "no cell vector"),
])
def test_bad_structures_raise_before_tensor_work(mf0, bad, match):
    atoms = water()
    if bad == "nan":
        atoms.positions[1, 0] = np.nan
    elif bad == "close":
        atoms.positions[2] = atoms.positions[1] + [0.05, 0, 0]
    else:
        atoms.pbc = True
    with pytest.raises(InvalidStructureError, match=match):
        evaluate(mf0, [atoms], "PBE")


def test_unknown_model_lists_available():
    with pytest.raises(ModelNotFoundError, match="7net-mf-0"):
        load_model("7net-nonexistent")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model("/nowhere/model.safetensors")
    assert issubclass(ModelNotFoundError, OmniFlowsError)


def test_batched_predict_equals_one_by_one(mf0):
    structures = [co_on_pt111(), cu_bulk(), water(), small_cell(), wire()] * 3
    batched = predict(structures, mf0, task="PBE")
    for atoms, b in zip(structures, batched):
        single = evaluate(mf0, [atoms], "PBE")[0]
        assert abs(b["energy"] - single["energy"]) < 1e-4
        np.testing.assert_allclose(b["forces"], single["forces"], atol=1e-5)


def test_calculator_molecule_has_no_stress_and_slab_has(mf0):
    calc = OmniCalculator(mf0, task="PBE")
    mol = molecule("CO")
    mol.calc = calc
    assert mol.get_potential_energy() == pytest.approx(mol.get_potential_energy(apply_constraint=False))
    assert mol.get_forces().shape == (2, 3)
    with pytest.raises(Exception, match="stress"):
        mol.get_stress()
    slab = co_on_pt111()
    slab.calc = calc
    assert slab.get_stress().shape == (6,)
    assert slab.get_potential_energies().sum() == pytest.approx(slab.get_potential_energy(), abs=1e-3)


def test_appended_task_predicts_exactly_its_source(mf0):
    model = load_model("7net-mf-0", dtype=torch.float64)
    atoms = co_on_pt111()
    before = evaluate(model, [atoms], "PBE")[0]
    n_task = sum(p.numel() for p in model.parameter_groups()["task_specific"])
    model.append_task("oc20", copy_from="PBE")
    after = evaluate(model, [atoms], "oc20")[0]
    assert after["energy"] == pytest.approx(before["energy"], abs=1e-10)
    np.testing.assert_allclose(after["forces"], before["forces"], atol=1e-10)  # scatter order only
    # existing tasks are untouched, and the task-specific group grew by one task
    assert evaluate(model, [atoms], "PBE")[0]["energy"] == pytest.approx(before["energy"], abs=1e-10)
    assert sum(p.numel() for p in model.parameter_groups()["task_specific"]) == n_task * 3 // 2


def test_parameter_groups_partition_the_parameters(mf0):
    groups = mf0.parameter_groups()
    total = sum(p.numel() for p in mf0.parameters())
    assert sum(p.numel() for g in groups.values() for p in g) == total
    # 7net-mf-0: task one-hot (2 wide) into 5x2 self-interaction linears + readout, and shifts
    assert sum(p.numel() for p in groups["task_specific"]) == 3634


def test_checkpoint_round_trip_and_tamper(mf0, tmp_path):
    path = tmp_path / "m.safetensors"
    digest = save_checkpoint(mf0, path)
    again = load_checkpoint(path)
    assert again.checkpoint_hash == digest
    atoms = cu_bulk()
    assert evaluate(again, [atoms], "R2SCAN")[0]["energy"] == evaluate(mf0, [atoms], "R2SCAN")[0]["energy"]
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # flip bits in the last tensor
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="hash mismatch"):
        load_checkpoint(path)


def test_cli_model_list_and_info():
    out = subprocess.run(["omni-flows", "model", "list"], capture_output=True, text=True, check=True)
    assert "7net-mf-0" in out.stdout and "7net-l3i5" in out.stdout
    out = subprocess.run(["omni-flows", "model", "info", "7net-mf-0", "--json"],
                         capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    assert info["tasks"] == ["R2SCAN", "PBE"] and len(info["elements"]) == 89
    out = subprocess.run(["omni-flows", "model", "info", "omni-ads-0", "--json"],
                         capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)  # the packaged name, and the network it was fine-tuned from
    assert (info["name"], info["architecture"]) == ("omni-ads-0", "7net-mf-0")
    bad = subprocess.run(["omni-flows", "model", "info", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Available pretrained models" in bad.stderr


def test_recomputed_blocks_give_the_same_energy_forces_and_stress(mf0):
    """Block recomputation (large graphs) only trades memory for time: numbers unchanged."""
    atoms = cu_bulk()
    (kept,) = evaluate(mf0, [atoms], "PBE")
    threshold = mf0.checkpoint_atoms
    try:
        mf0.checkpoint_atoms = 0  # recompute even this small graph
        (recomputed,) = evaluate(mf0, [atoms], "PBE")
    finally:
        mf0.checkpoint_atoms = threshold
    assert recomputed["energy"] == pytest.approx(kept["energy"], abs=1e-6)
    np.testing.assert_allclose(recomputed["forces"], kept["forces"], atol=1e-6)
    np.testing.assert_allclose(recomputed["stress"], kept["stress"], atol=1e-8)


_FREED_RSS = r"""
import sys, torch
from omni_flows.model.inference import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
x = torch.ones(int(sys.argv[2]) << 18)  # argv[2] MiB of float32, touched
before = rss_kb()
del x
print(before - rss_kb())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
@pytest.mark.parametrize("mib", [24, 96])  # below and above glibc's largest mmap threshold
def test_keep_freed_memory_keeps_a_freed_tensor_in_the_process(mib):
    """Per-step tensors (MBs) reuse memory instead of paying page faults on fresh mmaps."""
    def returned_kb(mode):
        out = subprocess.run([sys.executable, "-c", _FREED_RSS, mode, str(mib)],
                             capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])
    assert returned_kb("default") >= (mib - 4) << 10  # glibc unmaps a large freed block
    assert returned_kb("keep") < 1 << 10


def test_device_check_names_the_missing_device_and_needs_torch_only_for_a_gpu():
    """Reference: torch's own view of the machine (cuda/mps availability)."""
    from omni_flows.model.device import check_device
    from omni_flows.model.errors import DeviceUnavailableError
    from omni_flows.model.inference import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceUnavailableError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(DeviceUnavailableError, match=f"cuda:{count}'"):
        check_device(f"cuda:{count}")  # one past the last GPU (the first when there is none)
    if not torch.backends.mps.is_available():
        with pytest.raises(DeviceUnavailableError, match="MPS is not available"):
            check_device("mps")
    code = ("import sys; from omni_flows.model.device import check_device; "
            "check_device('cpu'); check_device('auto'); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
