"""DFT results are training data: `omni-flows train` on the GPAW single points that
`omni-flows validate --dft gpaw` stored, with whole (slab, adsorbate) targets held out,
and a few fine-tuning steps of a real pretrained model (7net-mf-0) on them.

The documents come from the project's own GPAW path: the tiny Cu(111) + H screen and
validation of tests/test_gpaw_validation.py (conftest's session fixture ``gpaw_screen``).
References: the stored documents themselves, read back with pymongo (energies, forces,
cells), the validation document's DFT energies (E(slab+H) and E(slab) of each
placement), Newton's third law on the DFT forces, and the model's energies and forces
computed by its ASE calculator, apart from the trainer's own metrics.
"""

import numpy as np
import pytest
import yaml
from ase.io import read
from pymatgen.core import Molecule, Structure
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.model.train.config import DatasetConfig, TrainConfig, TrainingConfigError
from omni_flows.stores import connect_database
from omni_flows.training_data import export_dataset, export_mongodb_datasets

TASK = "gpaw_quick"  # the GPAW level of the fixture (PBE/PW250/k3x3x1), a new task


def dft_spec(settings_id: str, **kw) -> DatasetConfig:
    return DatasetConfig(source="mongodb", collection="dft_calculations",
                         filter={"settings_id": settings_id}, task=TASK, **kw)


@pytest.fixture(scope="module")
def dft(gpaw_screen):
    settings, env, out = gpaw_screen
    db = connect_database(settings)
    docs = list(db["dft_calculations"].find({}, {"_id": 0}).sort("_id", 1))
    (validation,) = list(db["dft_validation"].find({"top_k": 2}, {"_id": 0}))
    return settings, env, db, docs, validation


def frames_of(db, spec, tmp_path):
    exported = export_dataset(db, spec, tmp_path / "mongodb")
    return exported, read(exported.path, ":")


def test_dft_calculations_read_back_with_their_energies_forces_and_cells(dft, tmp_path):
    settings, env, db, docs, validation = dft
    (settings_id,) = {d["settings_id"] for d in docs}
    _, frames = frames_of(db, dft_spec(settings_id), tmp_path)
    assert len(frames) == len(docs) == 4  # H2, the clean slab, two H placements
    for doc, atoms in zip(docs, frames):
        raw = doc["structure"]
        structure = (Structure if "lattice" in raw else Molecule).from_dict(raw)
        assert atoms.get_chemical_symbols() == [s.specie.symbol for s in structure]
        np.testing.assert_allclose(atoms.positions, structure.cart_coords, atol=1e-10)
        if doc["kind"] == "slab":
            np.testing.assert_allclose(atoms.cell.array, structure.lattice.matrix, atol=1e-10)
            assert atoms.pbc.all()
        else:  # a gas molecule: no cell (GPAW's box is a numerical setting, not the system)
            assert not atoms.pbc.any() and atoms.cell.volume == 0
        assert atoms.get_potential_energy() == doc["energy"]
        forces = atoms.get_forces()
        np.testing.assert_array_equal(forces, np.asarray(doc["forces"]))
        # Newton's third law: DFT forces of an isolated system sum to ~0 (egg-box residue)
        assert np.abs(forces.sum(axis=0)).max() < 0.05
        assert "stress" not in atoms.calc.results  # none stored, none made up
    # the energies the validation document's adsorption energies were made of
    by_energy = {round(a.get_potential_energy(), 8) for a in frames}
    assert round(validation["dft_slab_energy"], 8) in by_energy
    for p in validation["placements"]:
        assert round(p["dft_energy"], 8) in by_energy


def test_hold_out_leaves_out_whole_targets_and_targets_reads_only_theirs(dft, tmp_path):
    settings, env, db, docs, validation = dft
    (settings_id,) = {d["settings_id"] for d in docs}
    placements = {p["structure_hash"] for p in validation["placements"]}
    system = validation["system_id"]  # '<slab_id>|H'

    def hashes(frames_docs):
        return sorted(d["structure_hash"] for d in frames_docs)

    kept = [d for d in docs if d["structure_hash"] not in placements]
    _, frames = frames_of(db, dft_spec(settings_id, hold_out=[system]), tmp_path / "a")
    assert len(frames) == len(kept) == 2  # the clean slab and H2 stay: they are not targets
    assert sorted(a.get_potential_energy() for a in frames) == sorted(d["energy"] for d in kept)
    _, wild = frames_of(db, dft_spec(settings_id, hold_out=["*|H"]), tmp_path / "b")
    assert [a.get_potential_energy() for a in wild] == [a.get_potential_energy() for a in frames]
    _, only = frames_of(db, dft_spec(settings_id, targets=[system]), tmp_path / "c")
    energies = sorted(p["dft_energy"] for p in validation["placements"])
    assert sorted(a.get_potential_energy() for a in only) == pytest.approx(energies, abs=0)
    with pytest.raises(TrainingConfigError, match=r"matches no validated \(slab, adsorbate\)"):
        frames_of(db, dft_spec(settings_id, hold_out=["*|O"]), tmp_path / "d")
    with pytest.raises(TrainingConfigError, match="no dft_calculations document matches"):
        frames_of(db, dft_spec("0000000000"), tmp_path / "e")
    with pytest.raises(TrainingConfigError, match="name its DFT level"):
        frames_of(db, DatasetConfig(source="mongodb", collection="dft_calculations",
                                    task=TASK), tmp_path / "f")
    with pytest.raises(TrainingConfigError, match="use them with source: mongodb"):
        DatasetConfig(path="x.traj", task=TASK, hold_out=["*|H"])
    with pytest.raises(TrainingConfigError, match="write 'slab_id|adsorbate'"):
        dft_spec(settings_id, hold_out=["H"])
    assert not list((tmp_path / "d").glob(".*partial*"))  # nothing half-written stays


def test_train_cli_refuses_an_unknown_task_before_reading_the_database(dft, tmp_path):
    settings, env, db, docs, validation = dft
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"train": [{"source": "mongodb", "collection": "dft_calculations",
                            "filter": {"settings_id": docs[0]["settings_id"]}, "task": TASK}],
                 "cache_dir": str(tmp_path / "cache")},
        "model": {"checkpoint": "7net-mf-0"}, "output_dir": str(tmp_path / "out")}))
    result = CliRunner().invoke(app, ["train", str(config), "--no-progress"], env=env)
    assert result.exit_code != 0
    assert f"task '{TASK}' is not a task of 7net-mf-0" in str(result.exception)
    assert "append_tasks" in str(result.exception)
    assert not (tmp_path / "cache").exists()  # refused before any data was read


def test_fine_tuning_steps_on_the_dft_structures_lower_their_error(dft, tmp_path):
    """A new task (a copy of PBE, shifts refitted to this GPAW level) trained for a few
    steps on the four DFT structures: its energy and force errors on them go down."""
    import torch

    from omni_flows.model import OmniCalculator
    from omni_flows.model.train import Trainer

    settings, env, db, docs, validation = dft
    cfg = TrainConfig.from_dict({
        "data": {"train": [{"source": "mongodb", "collection": "dft_calculations",
                            "filter": {"settings_id": docs[0]["settings_id"]}, "task": TASK}],
                 "batch_size": 4, "cache_dir": str(tmp_path / "cache")},
        "model": {"checkpoint": "7net-mf-0", "append_tasks": [{"name": TASK, "copy_from": "PBE"}],
                  "use_statistics": True},
        "loss": {"energy_weight": 10.0, "force_weight": 1.0},
        "optim": {"lr": 2.0e-3, "ema_decay": None, "scheduler": "none"},
        "epochs": 4, "max_steps": 4, "threads": 1, "progress": False,
        "output_dir": str(tmp_path / "out")})
    cfg = export_mongodb_datasets(cfg, db)
    torch.manual_seed(0)
    trainer = Trainer(cfg)
    items = trainer.sampler.train
    assert len(items) == 4
    before = trainer.evaluate(items)[TASK]
    trainer.fit()
    after = trainer.evaluate(items)[TASK]
    assert after["energy_mae_mev_atom"] < before["energy_mae_mev_atom"]
    assert after["force_mae_mev_a"] < before["force_mae_mev_a"]
    # the saved model, through its ASE calculator, gives the errors the trainer measured
    calc = OmniCalculator(str(tmp_path / "out" / "model.safetensors"), task=TASK, device="cpu")
    assert calc.model.config.tasks[-1] == TASK
    e_err, f_err = [], []
    for atoms in read(cfg.data.train[0].path, ":"):
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = calc
        e_err.append(abs(atoms.get_potential_energy() - energy) / len(atoms))
        f_err.append(np.abs(atoms.get_forces() - forces).ravel())
    assert 1000 * np.mean(e_err) == pytest.approx(after["energy_mae_mev_atom"], rel=1e-3, abs=0.05)
    assert 1000 * np.concatenate(f_err).mean() == pytest.approx(after["force_mae_mev_a"],
                                                                rel=1e-3, abs=0.05)
