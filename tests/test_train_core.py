"""Training core on a tiny two-task model and EMT-labelled data (CPU, seconds).

References: EMT (ase) labels the data; the regularization is checked against a
numpy sum of squares; resume and DDP are checked against an uninterrupted,
single-process run of the same batches.
"""

import os
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
from ase.io import read, write
from omni_flows.model import load_checkpoint, save_checkpoint
from omni_flows.model.graph import build_graph
from omni_flows.model.train import TrainConfig, Trainer, TrainingConfigError
from omni_flows.model.train.loss import row_loss

TINY = {
    "species": ["Cu", "Pt"],
    "cutoff": 4.0,
    "node_irreps": ["8x0e", "8x0e+4x1o", "8x0e"],
    "lmax_edge": 1,
    "radial_mlp_hidden": [8],
    "tasks": ["A", "B"],
    "self_connection": "linear",
    "avg_num_neighbors": 1.0,
    "task_inputs": ["self_interaction_1", "self_interaction_2", "readout"],
}


def labelled(atoms, stress=True, forces=True):
    atoms.calc = EMT()
    res = {"energy": atoms.get_potential_energy()}
    if forces:
        res["forces"] = atoms.get_forces()
    if stress:
        res["stress"] = atoms.get_stress()
    atoms.calc = SinglePointCalculator(atoms, **res)
    return atoms


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Bulk Cu/Pt with stress (task A); Cu(111) slabs without stress, bottom layer fixed (task B)."""
    root = tmp_path_factory.mktemp("train-data")
    rng = np.random.default_rng(0)
    bulks = []
    for k in range(8):
        el, a0 = [("Cu", 3.6), ("Pt", 3.92)][k % 2]
        atoms = bulk(el, "fcc", a=a0 * (1 + 0.02 * rng.standard_normal()), cubic=True)
        atoms.rattle(0.05, seed=k)
        bulks.append(labelled(atoms))
    slabs = []
    for k in range(6):
        atoms = fcc111("Cu", (2, 2, 2), vacuum=5.0)
        atoms.set_constraint(FixAtoms(indices=[a.index for a in atoms if a.tag == 2]))
        atoms.rattle(0.05, seed=k)
        slabs.append(labelled(atoms, stress=False))
    write(root / "bulk.extxyz", bulks)
    write(root / "slab.traj", slabs)
    write(
        root / "energy_only.extxyz",
        [labelled(a.copy(), stress=False, forces=False) for a in slabs[:4]],
    )
    return root


def config(data, tmp_path, **over):
    cfg = {
        "data": {
            "train": [
                {"path": str(data / "bulk.extxyz"), "task": "A"},
                {"path": str(data / "slab.traj"), "task": "B"},
            ],
            "batch_size": 4,
            "cache_dir": str(data / "cache"),
        },
        "model": {"config": dict(TINY)},
        "optim": {"lr": 0.01, "ema_decay": None},
        "epochs": 2,
        "dtype": "float64",
        "output_dir": str(tmp_path / "out"),
        "progress": False,
    }
    for key, value in over.items():
        section, _, name = key.partition("__")
        if name:
            cfg.setdefault(section, {})[name] = value
        else:
            cfg[section] = value
    return TrainConfig.from_dict(cfg)


def all_items(trainer):
    return list(trainer.sampler.train)


def test_train_loss_decreases(data, tmp_path):
    """Energy+force MAE on the training data falls after 40 steps of Adam."""
    trainer = Trainer(config(data, tmp_path, epochs=10))
    before = trainer.evaluate(all_items(trainer))
    trainer.fit()
    after = trainer.evaluate(all_items(trainer))
    for task in ("A", "B"):
        assert after[task]["force_mae_mev_a"] < 0.8 * before[task]["force_mae_mev_a"]
    assert (tmp_path / "out" / "log.csv").exists() and (tmp_path / "out" / "steps.csv").exists()


def test_train_regularization_equals_analytic_value(data, tmp_path):
    """lambda/2 * sum of squares of the interaction blocks' task weights (numpy), nothing else by default."""
    lam = 0.3
    trainer = Trainer(config(data, tmp_path, regularization={"weight": lam}))
    rng = np.random.default_rng(1)
    expected = 0.0
    with torch.no_grad():
        for name, p in trainer.model.task_specific_parameters().items():
            values = rng.standard_normal(tuple(p.shape))
            p.copy_(torch.from_numpy(values))
            if name.startswith("interactions."):
                expected += 0.5 * lam * float((values**2).sum())
    assert sorted(trainer.reg_params) == sorted(
        n for n in trainer.model.task_specific_parameters() if n.startswith("interactions.")
    )
    assert float(trainer.regularization()) == pytest.approx(expected, rel=1e-12)
    # with the readout group as well
    both = Trainer(
        config(
            data, tmp_path, regularization={"weight": lam, "groups": ["interactions.", "readout"]}
        )
    )
    assert "readout_hidden.task_weight" in both.reg_params and "energy_shift" not in both.reg_params


def test_train_resume_reproduces_next_step_exactly(data, tmp_path):
    """Stop after 3 steps, resume from state.pt: step 4's loss equals the uninterrupted run's."""
    over = {
        "optim": {"optimizer": "adamw", "lr": 0.01, "scheduler": "onecycle", "ema_decay": 0.9},
        "regularization": {"weight": 0.01},
        "data__batch_size": 3,
    }
    first = Trainer(config(data, tmp_path, **over))
    for _ in range(3):
        first.next_step()
    state = first.save(tmp_path / "ckpt")
    expected = first.next_step()
    resumed = Trainer(config(data, tmp_path, resume=str(state), **over))
    got = resumed.next_step()
    assert got["loss"] == expected["loss"] and got["lr"] == expected["lr"]
    for (n, p), q in zip(first.model.named_parameters(), resumed.model.parameters()):
        assert torch.equal(p, q), n
    assert all(torch.equal(first.ema.shadow[n], resumed.ema.shadow[n]) for n in first.ema.shadow)


def test_train_appended_task_predicts_its_source(data, tmp_path):
    """A task appended with copy_from gives exactly the source task's energies and forces."""
    torch.manual_seed(3)
    source = Trainer(config(data, tmp_path)).model
    with torch.no_grad():  # non-trivial task weights, so that copying matters
        for p in source.task_specific_parameters().values():
            p.normal_()
    ckpt = tmp_path / "base.safetensors"
    save_checkpoint(source, ckpt)
    tuned = Trainer(
        config(
            data,
            tmp_path,
            model={
                "checkpoint": str(ckpt),
                "append_tasks": [{"name": "C", "copy_from": "B"}],
                "freeze_universal": True,
            },
            data__train=[{"path": str(data / "slab.traj"), "task": "C"}],
        )
    ).model
    atoms = fcc111("Cu", (2, 2, 2), vacuum=5.0)
    atoms.rattle(0.1, seed=0)
    out = {}
    for task in ("B", "C"):
        graph = build_graph(
            [atoms], TINY["species"], TINY["cutoff"], tuned.task_index(task), torch.float64
        )
        out[task] = tuned.eval()(graph)
    assert torch.equal(out["B"]["energy"], out["C"]["energy"])
    assert torch.equal(out["B"]["forces"], out["C"]["forces"])
    trainable = {id(p) for p in tuned.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in tuned.parameter_groups()["task_specific"]}
    assert load_checkpoint(ckpt).config.tasks == ["A", "B"]


def test_train_without_stress_or_forces(data, tmp_path):
    """A data set without stress, and one with energies only, train; missing labels are not fitted."""
    cfg = config(
        data,
        tmp_path,
        data__train=[
            {"path": str(data / "slab.traj"), "task": "B"},
            {"path": str(data / "energy_only.extxyz"), "task": "A"},
        ],
    )
    trainer = Trainer(cfg)
    row = trainer.fit()
    assert row["train_B_force_mae_mev_a"] > 0 and np.isnan(row["train_B_stress_mae_gpa"])
    assert np.isnan(row["train_A_force_mae_mev_a"]) and row["train_A_energy_mae_mev_atom"] > 0
    _, labels = trainer.make_batch([trainer.sampler.train[0]])
    assert labels.force_mask.sum() == 4  # 8 atoms, the 4 of the fixed bottom layer left out
    assert not labels.stress_mask.any()


def test_train_statistics_give_each_task_its_force_scale(data, tmp_path):
    """With per_task_scale every task's energy scale is the RMS of its own forces (all atoms,
    numpy on the files); without it, one RMS over all training forces."""
    forces = {
        "A": np.concatenate([a.calc.results["forces"] for a in read(data / "bulk.extxyz", ":")]),
        "B": np.concatenate([a.calc.results["forces"] for a in read(data / "slab.traj", ":")]),
    }

    def rms(f):
        return np.sqrt(np.mean(f**2))

    model = {"config": {**TINY, "per_task_scale": True}}
    scale = Trainer(config(data, tmp_path, model=model)).model.energy_scale.detach().numpy()
    np.testing.assert_allclose(scale[0], rms(forces["A"]), rtol=1e-12)
    np.testing.assert_allclose(scale[1], rms(forces["B"]), rtol=1e-12)
    shared = Trainer(config(data, tmp_path)).model.energy_scale.detach().numpy()
    np.testing.assert_allclose(shared, rms(np.concatenate(list(forces.values()))), rtol=1e-12)


def test_train_losses_match_their_definitions():
    diff = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    assert row_loss("mse", diff, 1.0).tolist() == pytest.approx([25 / 3, 1 / 3])
    assert row_loss("mae", diff, 1.0).tolist() == pytest.approx([7 / 3, 1 / 3])
    assert row_loss("l2mae", diff, 1.0).tolist() == pytest.approx([5.0, 1.0])
    assert row_loss("huber", diff, 1.0).tolist() == pytest.approx([(2.5 + 3.5) / 3, 0.5 / 3])


def test_train_config_rejects_unknown_keys(data, tmp_path):
    with pytest.raises(TrainingConfigError, match="lrr"):
        config(data, tmp_path, optim={"lrr": 1.0})
    with pytest.raises(TrainingConfigError, match="task"):
        Trainer(
            config(data, tmp_path, data__train=[{"path": str(data / "slab.traj"), "task": "X"}])
        )


def test_train_dbs_sampler_is_reproducible(data, tmp_path):
    """The DBS makes up the configured share of every epoch, identically for the same seed."""
    over = {
        "data__dbs": [{"path": str(data / "bulk.extxyz"), "task": "A"}],
        "data__dbs_fraction": 0.3,
    }
    a, b = Trainer(config(data, tmp_path, **over)), Trainer(config(data, tmp_path, **over))
    n_train = len(a.sampler.train)
    assert a.sampler.num_dbs == round(0.3 / 0.7 * n_train)
    items = a.sampler.epoch_items(0)
    assert sum(i.source == 2 for i in items) == a.sampler.num_dbs
    assert items == b.sampler.epoch_items(0) and items != a.sampler.epoch_items(1)


def test_train_energy_only_batches_skip_forces_and_match_energy_loss(data, tmp_path):
    """force_weight 0 makes a data set energy-only; grouped batches hold one kind each, an
    energy-only batch's loss is the energy term alone (equal to the sum computed here), and
    every item is visited once per epoch."""
    cfg = config(
        data,
        tmp_path,
        data__train=[
            {"path": str(data / "bulk.extxyz"), "task": "A", "force_weight": 0.0,
             "stress_weight": 0.0},
            {"path": str(data / "slab.traj"), "task": "B"},
        ],
        data__group_energy_only=True,
        data__batch_size=3,
    )
    trainer = Trainer(cfg)
    batches = trainer.sampler.epoch_batches(0)
    assert all(len({i.source for i in b}) == 1 for b in batches)  # one kind per batch
    seen = sorted((i.source, i.index) for b in batches for i in b)
    assert seen == sorted((i.source, i.index) for i in trainer.sampler.train)
    assert trainer.sampler.batches_per_epoch == len(batches) == 3 + 2  # ceil(8/3) + ceil(6/3)
    energy_batch = next(b for b in batches if b[0].source == 0)
    graph, labels = trainer.make_batch(energy_batch)
    assert not labels.force_mask.any() and not labels.stress_mask.any()
    info = trainer.loss_and_backward(energy_batch)
    with torch.no_grad():
        e = trainer.model(graph, compute_forces=False)["energy"]
    expected = float((((e - labels.energy) / labels.num_atoms) ** 2).mean())
    assert info["force_loss"] == 0 and info["data_loss"] == pytest.approx(expected, rel=1e-9)


def test_train_total_energy_loss_is_the_mse_of_total_energies(data, tmp_path):
    """loss.energy_per_atom false: the energy term is the mean squared error of the total
    energies (eV^2), N^2 times the per-atom term of a structure of N atoms."""
    cfg = config(
        data,
        tmp_path,
        data__train=[{"path": str(data / "bulk.extxyz"), "task": "A", "force_weight": 0.0,
                      "stress_weight": 0.0}],
        loss__energy_per_atom=False,
    )
    trainer = Trainer(cfg)
    batch = trainer.sampler.epoch_batches(0)[0]
    graph, labels = trainer.make_batch(batch)
    info = trainer.loss_and_backward(batch)
    with torch.no_grad():
        e = trainer.model(graph, compute_forces=False)["energy"]
    expected = float(((e - labels.energy) ** 2).mean())
    assert info["data_loss"] == pytest.approx(expected, rel=1e-9)
    assert expected > 1.5 * float((((e - labels.energy) / labels.num_atoms) ** 2).mean())


def test_train_regularization_of_chosen_task_rows(data, tmp_path):
    """regularization.tasks: only those rows of the task weights enter the penalty."""
    cfg = config(
        data, tmp_path, regularization={"weight": 0.1, "tasks": ["B"]},
    )
    trainer = Trainer(cfg)
    with torch.no_grad():
        for p in trainer.model.task_specific_parameters().values():
            p.normal_()
    b = trainer.model.task_index("B")
    expected = 0.05 * sum(
        float((p[b] ** 2).sum())
        for n, p in trainer.model.task_specific_parameters().items()
        if "interactions." in n
    )
    assert float(trainer.regularization()) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(TrainingConfigError, match="not tasks of the model"):
        Trainer(config(data, tmp_path, regularization={"weight": 0.1, "tasks": ["C"]}))


def test_train_universal_lr_ratio_scales_only_the_shared_step(data, tmp_path):
    """Adam's first step moves a parameter by lr * g / (|g| + eps), i.e. by its group's lr:
    the universal parameters by lr * universal_lr_ratio, the task-specific ones by lr."""
    trainer = Trainer(config(data, tmp_path, optim={"lr": 0.01, "universal_lr_ratio": 0.25,
                                                    "ema_decay": None, "grad_clip": None}))
    groups = trainer.model.parameter_groups()
    before = {k: [p.detach().clone() for p in ps] for k, ps in groups.items()}
    trainer.next_step()
    moved = {
        k: max(float((p - q).abs().max()) for p, q in zip(groups[k], before[k])) for k in groups
    }
    assert moved["universal"] == pytest.approx(0.0025, rel=1e-3)
    assert moved["task_specific"] == pytest.approx(0.01, rel=1e-3)
    with pytest.raises(TrainingConfigError, match="freeze_universal"):
        config(data, tmp_path, optim={"universal_lr_ratio": 0.0})


# ----- DDP -------------------------------------------------------------------
# The ranks meet through a file, not a TCP port: a port picked free and then released can
# be taken by another test's server before rank 0 binds it (pytest-xdist runs tests side
# by side), and a rank connected to a foreign server waits for an answer that never comes.
# Every wait is bounded, so a broken rendezvous fails the test instead of stalling CI.
DDP_TIMEOUT = timedelta(minutes=5)  # generous: 2 shared cores can be very busy


def _ddp_worker(rank, world, rendezvous, cfg_dict, out_file):
    import torch.distributed as dist

    def stage(name):  # where a rank got to, for the message of a stuck run
        with open(f"{rendezvous}.rank{rank}", "a") as f:
            f.write(f"{time.monotonic():.1f} {name}\n")

    stage("started")
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world, timeout=DDP_TIMEOUT
    )
    stage("joined")
    trainer = Trainer(TrainConfig.from_dict(cfg_dict))
    stage("trainer built")
    info = trainer.loss_and_backward(trainer.sampler.train[:5])
    stage("gradients")
    if rank == 0:
        grads = {n: p.grad for n, p in trainer.model.named_parameters()}
        torch.save({"loss": info["loss"], "grads": grads}, out_file)
    stage("saved")
    # Leave at once: 1 run in ~8 had both ranks past this point but never exiting (in
    # destroy_process_group or the interpreter's shutdown), which stalled the test.
    os._exit(0)


def run_ranks(worker, world: int, rendezvous: str, args: tuple) -> None:
    """``worker(rank, world, rendezvous, *args)`` in ``world`` spawned processes; raises if
    any fails or they have not all finished within twice the process-group timeout."""
    context = torch.multiprocessing.start_processes(
        worker, args=(world, rendezvous, *args), nprocs=world, join=False, start_method="spawn"
    )
    start = time.monotonic()
    while not context.join(timeout=1.0):
        if time.monotonic() - start > 2 * DDP_TIMEOUT.total_seconds():
            for process in context.processes:
                process.terminate()
            stages = [Path(f"{rendezvous}.rank{r}") for r in range(world)]
            seen = [f.read_text() if f.exists() else "" for f in stages]
            raise TimeoutError(f"DDP ranks still running after {2 * DDP_TIMEOUT}: {seen}")


def test_train_ddp_two_processes_give_single_process_gradients(data, tmp_path):
    """2 gloo ranks splitting a batch of 5 structures (3 + 2) reproduce 1 process's gradients."""
    cfg = config(data, tmp_path, regularization={"weight": 0.1})
    cfg_dict = cfg.to_dict()
    single = Trainer(cfg)
    info = single.loss_and_backward(single.sampler.train[:5])
    out_file = tmp_path / "ddp.pt"
    run_ranks(_ddp_worker, 2, str(tmp_path / "rendezvous"), (cfg_dict, str(out_file)))
    ddp = torch.load(out_file, weights_only=True)
    assert ddp["loss"] == pytest.approx(info["loss"], rel=1e-12)
    for name, p in single.model.named_parameters():
        torch.testing.assert_close(ddp["grads"][name], p.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_train_records_each_tasks_training_elements(data, tmp_path):
    """The checkpoint says which elements each task saw (read back here with ASE), so that a
    screen can flag a result outside them."""
    from ase.io import read

    trainer = Trainer(config(data, tmp_path))
    for task, name in (("A", "bulk.extxyz"), ("B", "slab.traj")):
        symbols = {s for a in read(data / name, ":") for s in a.get_chemical_symbols()}
        assert trainer.model.config.task_elements[task] == sorted(symbols)
