"""Graph cache on real OC20 data, data sets from the MongoDB store, and the
`omni-flows train` command on a tiny model.

References: the FixAtoms constraint and the calculator results stored in the
.traj files (read independently with ase.io.read); atomate2's stress conversion.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write
from atomate2.ase.schemas import convert_stress_from_voigt_to_symm
from omni_flows.db_schemas.calculation import (
    CalculationInput,
    CalculationOutput,
    MLIPCalculationDoc,
)
from omni_flows.db_schemas.provenance import Provenance
from omni_flows.model import load_model
from omni_flows.model.train.config import DatasetConfig, TrainingConfigError
from omni_flows.model.train.graph_cache import open_dataset, read_labels
from pymatgen.io.ase import AseAtomsAdaptor
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.stores import connect_database
from omni_flows.training_data import ase_stress, document_atoms

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


# ----- data sets from the project's MongoDB store ---------------------------
def calculation_doc(atoms, tag: str) -> dict:
    """An OC20 DFT frame as a stored calculation (labels: its VASP energy and forces)."""
    plain = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    structure = AseAtomsAdaptor.get_structure(plain)
    forces = atoms.calc.results["forces"]
    fixed = [int(i) for i in atoms.constraints[0].index]
    free = np.setdiff1d(np.arange(len(atoms)), fixed)
    doc = MLIPCalculationDoc(
        provenance=Provenance(model_name="VASP", task="RPBE", checkpoint_hash="OC20"),
        input=CalculationInput(structure=structure, calc_type="static", fixed_indices=fixed),
        output=CalculationOutput(
            structure=structure,
            energy=atoms.calc.results["energy"],
            energy_per_atom=atoms.calc.results["energy"] / len(atoms),
            forces=[tuple(f) for f in forces],
            max_force=float(np.linalg.norm(forces[free], axis=1).max()),
        ),
        tags=[tag],
    )
    return doc.to_document()


@pytest.mark.skipif(not OC20.exists(), reason=f"shared OC20 data not found at {OC20}")
def test_train_reads_mongodb_calculations(settings, tmp_path):
    """`omni-flows train` on documents of the calculations collection: the filter picks the
    documents, and the cached graphs hold exactly the DFT frames they were made from."""
    frames = read(OC20, ":")
    chosen = {0: "train", 60: "other", len(frames) - 1: "train"}
    db = connect_database(settings)
    db["calculations"].insert_many([calculation_doc(frames[k], tag) for k, tag in chosen.items()])
    out = tmp_path / "out"
    cfg = {
        "data": {
            "train": [
                {
                    "source": "mongodb",
                    "filter": {"tags": "train"},
                    "task": "oc20",
                    "force_weight": 2.0,
                }
            ],
            "batch_size": 2,
            "cache_dir": str(tmp_path / "cache"),
        },
        "model": {
            "config": {
                "species": ["Au", "Na", "O"],
                "cutoff": 4.0,
                "node_irreps": ["4x0e", "4x0e+2x1o", "4x0e"],
                "lmax_edge": 1,
                "radial_mlp_hidden": [4],
                "tasks": ["oc20"],
            }
        },
        "max_steps": 3,
        "epochs": 3,
        "output_dir": str(out),
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    env = {
        "OMNI_FLOWS_HOME": str(settings.home),
        "OMNI_FLOWS_DB_PORT": str(settings.db_port),
        "OMNI_FLOWS_DATABASE": settings.database,
        "OMNI_FLOWS_MONGODB_URI": None,
        "OMNI_FLOWS_CONFIG": None,
    }
    args = ["train", str(tmp_path / "train.yaml"), "--no-progress"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    assert len((out / "steps.csv").read_text().splitlines()) == 1 + 3

    (exported,) = (tmp_path / "cache" / "mongodb").glob("*.traj")
    assert CliRunner().invoke(app, args, env=env).exit_code == 0  # same query: same file
    assert list((tmp_path / "cache" / "mongodb").glob("*.traj")) == [exported]
    store = open_dataset(DatasetConfig(path=str(exported), task="oc20"), 4.0, tmp_path / "cache")
    assert len(store) == 2
    for n, k in enumerate([0, len(frames) - 1]):
        cached, atoms = store[n], frames[k]
        np.testing.assert_array_equal(cached["numbers"], atoms.numbers)
        np.testing.assert_allclose(cached["positions"], atoms.positions, rtol=0, atol=1e-10)
        np.testing.assert_allclose(cached["cell"], atoms.cell.array, rtol=0, atol=1e-12)
        assert cached["energy"] == atoms.calc.results["energy"]
        np.testing.assert_array_equal(cached["forces"], atoms.calc.results["forces"])
        np.testing.assert_array_equal(
            ~cached["free"], np.isin(range(len(atoms)), atoms.constraints[0].index)
        )
        assert np.isnan(cached["stress"]).all()  # no stress stored: none fitted


def test_train_mongodb_stress_conventions():
    """A 3x3 kbar stress (atomate2's OutputDoc) reads back as the Voigt eV/A^3 it came from."""
    voigt = np.array([0.01, -0.02, 0.03, 0.004, -0.005, 0.006])
    kbar = convert_stress_from_voigt_to_symm(voigt)  # atomate2's own conversion
    np.testing.assert_allclose(ase_stress(kbar), voigt, rtol=1e-12)
    np.testing.assert_array_equal(ase_stress(list(voigt)), voigt)
    with pytest.raises(TrainingConfigError, match="stress of shape"):
        ase_stress([1.0, 2.0])


def test_train_mongodb_data_set_needs_export_and_valid_keys(tmp_path):
    with pytest.raises(TrainingConfigError, match="leave it out"):
        DatasetConfig(source="mongodb", path="x.traj", task="PBE")
    with pytest.raises(TrainingConfigError, match="source 'sql'"):
        DatasetConfig(source="sql", task="PBE")


@pytest.mark.skipif(not OC20.exists(), reason=f"shared OC20 data not found at {OC20}")
def test_train_mongodb_reads_atomate2_and_adsorption_fields():
    """atomate2's `output.mol_or_struct` and an adsorption placement's final structure and
    energy give the DFT frame back; labels a document lacks stay missing (NaN), not zero."""
    atoms = read(OC20, -1)
    structure = AseAtomsAdaptor.get_structure(
        Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    ).as_dict()
    energy, forces = atoms.calc.results["energy"], atoms.calc.results["forces"]
    atomate2_doc = {"output": {"mol_or_struct": structure, "energy": energy, "forces": forces}}
    placement = {"final_structure": structure, "energy": energy}
    for doc, collection in ((atomate2_doc, "calculations"), (placement, "adsorption_placements")):
        got = document_atoms(doc, collection)
        np.testing.assert_allclose(got.positions, atoms.positions, rtol=0, atol=1e-10)
        e, f, s = read_labels(got)
        assert e == energy and np.isnan(s).all()
        if collection == "calculations":
            np.testing.assert_array_equal(f, forces)
        else:
            assert np.isnan(f).all()
    assert document_atoms({"final_structure": structure}, "adsorption_placements") is None
