"""Task adapters (per-task low-rank corrections W + A B of the interactions' linear layers).

References: 7net-mf-0 without adapters (zero adapters must give its numbers bit for bit),
the symmetries of physics and finite differences (nonzero adapters must keep them),
a numpy sum of squares for the penalty, and the saved model for the checkpoint.
"""

import numpy as np
import pytest
import torch
from ase.build import fcc111
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from omni_flows.model import load_checkpoint, load_model, save_checkpoint
from omni_flows.model.config import ModelConfig
from omni_flows.model.errors import CheckpointError
from omni_flows.model.graph import build_graph
from omni_flows.model.header import checkpoint_header
from omni_flows.model.inference import evaluate
from omni_flows.model.network import OmniNet
from omni_flows.model.train import TrainConfig, Trainer, TrainingConfigError
from omni_flows.model.train.regularization import regularized_parameters, selective_l2

from structures import co_on_pt111, cu_o_slab, random_rotation, water

RANK = 8
# per task at rank 8 on all 5 interactions of 7net-mf-0: sum over linear_1 and linear_2 and
# irreps of r * (m_in + m_out), r = min(8, m_in, m_out) (printed by benchmarks/bench_adapters.py)
MF0_ADAPTER_PARAMS_PER_TASK = 55552


def randomise_adapters(model: OmniNet, scale: float = 0.3, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.task_specific_parameters().items():
            if ".adapter_up." in name:
                p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def adapted(dtype=torch.float64) -> OmniNet:
    """7net-mf-0 with nonzero rank-8 adapters (the same ones every time)."""
    model = load_model("7net-mf-0", dtype=dtype)
    torch.manual_seed(0)  # A
    model.add_adapters(RANK)
    randomise_adapters(model)  # B
    return model


@pytest.fixture(scope="module")
def adapted64():
    return adapted()


def energy(model, atoms, task="PBE"):
    return evaluate(model, [atoms], task, stress=False)[0]["energy"]


def test_zero_adapters_give_7net_mf_0_bit_for_bit():
    """Adapters with B = 0 leave energy, forces and stress of PBE and R2SCAN unchanged
    (torch.equal), and add 55,552 parameters per task at rank 8."""
    model = load_model("7net-mf-0")
    structures = [co_on_pt111()]  # a slab with a cell: energy, forces and stress
    ref = {t: evaluate(model, structures, t) for t in ("PBE", "R2SCAN")}
    n_task = sum(p.numel() for p in model.parameter_groups()["task_specific"])
    model.add_adapters(RANK)
    for task, results in ref.items():
        for got, want in zip(evaluate(model, structures, task), results):
            assert got["energy"] == want["energy"]
            for key in ("forces", "stress", "energies"):
                assert torch.equal(torch.from_numpy(got[key]), torch.from_numpy(want[key])), key
    grown = sum(p.numel() for p in model.parameter_groups()["task_specific"]) - n_task
    assert grown == 2 * MF0_ADAPTER_PARAMS_PER_TASK
    model.add_adapters(RANK)  # the same adapters again: nothing changes
    with pytest.raises(CheckpointError, match="already has task adapters of rank 8"):
        model.add_adapters(16)


def test_nonzero_adapters_change_the_task_and_only_it(adapted64):
    """Random adapters move PBE by more than 10 meV; a batch with both tasks gives each
    structure its own task's numbers (the several-task path against the one-task path)."""
    plain = load_model("7net-mf-0", dtype=torch.float64)
    atoms = cu_o_slab()
    assert abs(energy(adapted64, atoms) - energy(plain, atoms)) > 0.01
    structures = [cu_o_slab(), co_on_pt111()]
    c = adapted64.config
    graph = build_graph(structures, c.species, c.cutoff,
                        [adapted64.task_index("PBE"), adapted64.task_index("R2SCAN")],
                        torch.float64)
    mixed = adapted64(graph)
    for g, (atoms, task) in enumerate(zip(structures, ("PBE", "R2SCAN"))):
        alone = evaluate(adapted64, [atoms], task, stress=False)[0]
        assert float(mixed["energy"][g]) == pytest.approx(alone["energy"], abs=1e-9)
        forces = mixed["forces"][graph.batch == g].detach().numpy()
        np.testing.assert_allclose(forces, alone["forces"], atol=1e-10)


def test_adapted_energy_invariant_and_forces_rotate(adapted64):
    """Rotation and translation: energy unchanged, forces rotate with the structure."""
    atoms = co_on_pt111()
    ref = evaluate(adapted64, [atoms], "PBE", stress=False)[0]
    rot = random_rotation(5)
    moved = atoms.copy()
    moved.set_cell(atoms.cell.array @ rot.T)
    moved.positions = atoms.positions @ rot.T + np.array([0.9, -1.7, 0.4])
    got = evaluate(adapted64, [moved], "PBE", stress=False)[0]
    assert abs(got["energy"] - ref["energy"]) < 1e-7
    np.testing.assert_allclose(got["forces"], ref["forces"] @ rot.T, atol=1e-7)


def test_adapted_permutation_permutes_forces(adapted64):
    atoms = water()
    perm = [2, 0, 1]
    ref = evaluate(adapted64, [atoms], "R2SCAN")[0]
    got = evaluate(adapted64, [atoms[perm]], "R2SCAN")[0]
    assert abs(got["energy"] - ref["energy"]) < 1e-10
    np.testing.assert_allclose(got["forces"], ref["forces"][perm], atol=1e-10)


def test_adapted_forces_are_minus_finite_differences(adapted64):
    atoms = cu_o_slab()
    forces = evaluate(adapted64, [atoms], "PBE")[0]["forces"]
    h = 1e-4
    for i in (0, 11, 12):  # a bottom Cu, a surface Cu, the O
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, a] += h
            minus.positions[i, a] -= h
            fd = -(energy(adapted64, plus) - energy(adapted64, minus)) / (2 * h)
            assert abs(fd - forces[i, a]) < 1e-5, (i, a, fd, forces[i, a])


def test_appended_task_copies_the_adapters(adapted64):
    """A task copied from PBE predicts exactly PBE's numbers with nonzero adapters."""
    model = adapted()
    model.append_task("gpaw_rpbe", copy_from="PBE")
    atoms = cu_o_slab()
    pbe, new = (evaluate(model, [atoms], t)[0] for t in ("PBE", "gpaw_rpbe"))
    assert pbe["energy"] == new["energy"]
    assert np.array_equal(pbe["forces"], new["forces"]) and np.array_equal(pbe["stress"], new["stress"])
    assert pbe["energy"] == energy(adapted64, atoms)  # PBE itself unchanged by the append
    # a task from nothing gets fresh adapters: B zero, A random
    model.append_task("blank")
    lin = model.interactions[0].linear_1
    assert not lin.adapter_up["0e"][-1].any() and lin.adapter_down["0e"][-1].std() > 0.1


TINY = {
    "species": ["Cu", "Pt"], "cutoff": 4.0, "node_irreps": ["8x0e", "8x0e+4x1o", "8x0e"],
    "lmax_edge": 1, "radial_mlp_hidden": [8], "tasks": ["A", "B", "C"],
    "self_connection": "linear", "avg_num_neighbors": 1.0,
    "task_inputs": ["self_interaction_1", "self_interaction_2"], "adapter_rank": 2,
}


def test_penalty_is_the_adapters_correction_and_reaches_them():
    """lambda/2 * (sum ||w_t||^2 + sum ||A_t B_t||^2) (numpy), zero for fresh adapters,
    with a gradient on both factors; regularization.tasks picks rows."""
    torch.manual_seed(0)
    model = OmniNet(ModelConfig.from_dict(dict(TINY))).double()
    params = regularized_parameters(model, ["interactions."])
    assert {n for n in params if ".adapter_" in n} == {
        n for n in model.task_specific_parameters() if ".adapter_" in n}
    assert float(selective_l2(params, 0.5)) == 0.0  # task weights zero, B zero
    assert regularized_parameters(model, ["linear_1.adapter_up"]).keys() == {
        "interactions.0.linear_1.adapter_up.0e", "interactions.0.linear_1.adapter_down.0e",
        "interactions.1.linear_1.adapter_up.0e", "interactions.1.linear_1.adapter_down.0e",
        "interactions.1.linear_1.adapter_up.1o", "interactions.1.linear_1.adapter_down.1o"}
    rng = np.random.default_rng(1)
    values = {}
    with torch.no_grad():
        for n, p in params.items():
            values[n] = rng.standard_normal(tuple(p.shape))
            p.copy_(torch.from_numpy(values[n]))
    for rows in (None, [1]):
        expected = 0.0
        for n, v in values.items():
            if ".adapter_down." in n:
                continue
            if ".adapter_up." in n:
                v = values[n.replace("adapter_up", "adapter_down")] @ v
            expected += 0.5 * 0.3 * float(((v if rows is None else v[rows]) ** 2).sum())
        penalty = selective_l2(params, 0.3, rows)
        assert float(penalty) == pytest.approx(expected, rel=1e-12)
    penalty.backward()
    for n, p in params.items():
        if ".adapter_" in n:
            assert p.grad[1].abs().sum() > 0 and not p.grad[[0, 2]].any(), n


def test_checkpoint_round_trip_with_adapters(tmp_path):
    """Save and load (float32, as checkpoints load): the same weights, rank and numbers,
    bit for bit; the header names the rank; models without adapters keep their content
    hash (omni-ads-0's)."""
    model = adapted(torch.float32)
    path = tmp_path / "adapted.safetensors"
    digest = save_checkpoint(model, path)
    again = load_checkpoint(path)
    assert again.checkpoint_hash == digest and again.config.adapter_rank == RANK
    state = model.state_dict()
    assert any(".adapter_up." in k for k in state)
    for k, v in again.state_dict().items():
        assert torch.equal(v, state[k]), k
    atoms = cu_o_slab()
    assert energy(again.eval(), atoms) == energy(model, atoms)
    assert checkpoint_header(str(path)).adapter_rank == RANK
    assert checkpoint_header("omni-ads-0").adapter_rank == 0
    assert "adapter_rank" not in load_model("7net-mf-0").config.to_json()


def test_cueq_backend_applies_the_adapters(adapted64):
    """The cueq backend replaces only the convolution: adapters give the same numbers."""
    from omni_flows.model import cueq

    if cueq.cuet is None:
        pytest.skip("cuequivariance-torch is not installed")
    model = adapted(torch.float32)
    atoms = co_on_pt111()
    ref = evaluate(model, [atoms], "PBE")[0]
    got = evaluate(load_model(model, backend="cueq"), [atoms], "PBE")[0]
    assert abs(got["energy"] - ref["energy"]) / len(atoms) < 1e-5
    np.testing.assert_allclose(got["forces"], ref["forces"], atol=1e-4)


def slabs(path, n):
    out = []
    for k in range(n):
        atoms = fcc111("Cu", (2, 2, 2), vacuum=5.0)
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        res = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        atoms.calc = SinglePointCalculator(atoms, **res)
        out.append(atoms)
    write(path, out)
    return path


def test_freeze_universal_trains_only_task_parts_and_keeps_pbe_bit_for_bit(tmp_path):
    """Two Adam steps on a new task with model.adapter_rank and freeze_universal: the new
    task's adapters move, PBE and R2SCAN give 7net-mf-0's numbers bit for bit."""
    cfg = TrainConfig.from_dict({
        "data": {"train": [{"path": str(slabs(tmp_path / "slabs.extxyz", 2)), "task": "new"}],
                 "batch_size": 2, "cache_dir": str(tmp_path / "cache")},
        "model": {"checkpoint": "7net-mf-0", "adapter_rank": RANK, "freeze_universal": True,
                  "append_tasks": [{"name": "new", "copy_from": "PBE"}]},
        "regularization": {"weight": 0.01, "tasks": ["new"]},
        "optim": {"lr": 0.01}, "max_steps": 2, "output_dir": str(tmp_path / "out"),
        "progress": False,
    })
    trainer = Trainer(cfg)
    model = trainer.model
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in model.parameter_groups()["task_specific"]}
    assert any(".adapter_up." in n for n in trainer.reg_params)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for _ in range(2):
        trainer.next_step()
    new = model.task_index("new")
    up = model.interactions[4].linear_2.adapter_up["0e"]
    assert up[new].abs().max() > 0 and torch.equal(up[:new], before[
        "interactions.4.linear_2.adapter_up.0e"][:new])
    plain = load_model("7net-mf-0")
    atoms = co_on_pt111()
    model.eval()
    for task in ("PBE", "R2SCAN"):
        got, want = evaluate(model, [atoms], task)[0], evaluate(plain, [atoms], task)[0]
        assert got["energy"] == want["energy"]
        assert np.array_equal(got["forces"], want["forces"])
        assert np.array_equal(got["stress"], want["stress"])
    assert evaluate(model, [atoms], "new")[0]["energy"] != evaluate(plain, [atoms], "PBE")[0]["energy"]


@pytest.mark.parametrize("bad, match", [
    ({"adapter_rank": -1}, "model.adapter_rank -1"),
    ({"adapter_rank": "8"}, "model.adapter_rank '8'"),
    ({"adapter_rank": 4, "adapter_layers": [1.5]}, "model.adapter_layers"),
])
def test_bad_adapter_settings_are_refused(bad, match, tmp_path):
    with pytest.raises(TrainingConfigError, match=match):
        TrainConfig.from_dict({"data": {"train": [{"path": "x.extxyz", "task": "PBE"}]},
                               "model": {"checkpoint": "7net-mf-0", **bad}})
    single = dict(TINY, tasks=[])
    with pytest.raises(CheckpointError, match="multi-task"):
        ModelConfig.from_dict(single)
    with pytest.raises(CheckpointError, match="adapter_layers"):
        ModelConfig.from_dict(dict(TINY, adapter_layers=[2]))
