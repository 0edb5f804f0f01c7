"""MLIP Makers: documents with provenance and a convergence flag; fixed atoms stay fixed.

References: the calculator's own checkpoint hash and single-point energy, and
the starting positions of the fixed atoms (which must not move at all).
"""

import numpy as np
import pytest
from ase.build import fcc111
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from omni_flows.db_schemas import CalcType, MLIPCalculationDoc
from omni_flows.workflows import OmniRelaxMaker, OmniStaticMaker
from omni_flows.workflows.conversion import to_pymatgen
from omni_flows.workflows.relax import get_calculator
from pymatgen.core import Molecule

MODEL, TASK = "7net-mf-0", "PBE"


@pytest.fixture(scope="module")
def rattled_slab():
    """Cu(111) 2x2x3, bottom layer fixed, top layers rattled off their minimum."""
    atoms = fcc111("Cu", (2, 2, 3), vacuum=6.0, a=3.63)
    fixed = [a.index for a in atoms if a.tag == 3]
    rng = np.random.default_rng(1)
    atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
    return to_pymatgen(atoms), fixed


def test_relax_keeps_fixed_atoms_and_records_provenance_and_convergence(rattled_slab):
    structure, fixed = rattled_slab
    doc = OmniRelaxMaker(model=MODEL, task=TASK, device="cpu").compute(structure, fixed)
    assert isinstance(doc, MLIPCalculationDoc)
    assert doc.input.calc_type == CalcType.RELAX and doc.input.fixed_indices == fixed
    assert doc.output.converged and doc.output.max_force <= 0.05
    assert doc.output.n_steps > 0 and doc.output.energy_downhill
    start, end = structure.cart_coords, doc.output.structure.cart_coords
    np.testing.assert_allclose(end[fixed], start[fixed], rtol=0, atol=1e-9)  # did not move
    free = [i for i in range(len(structure)) if i not in fixed]
    assert np.abs(end[free] - start[free]).max() > 1e-3  # the free atoms did relax
    calc = get_calculator(MODEL, TASK, "cpu")
    p = doc.provenance
    assert (p.model_name, p.task, p.checkpoint_hash) == (MODEL, TASK, calc.checkpoint_hash)
    assert "torch" in p.package_versions


def test_static_is_one_energy_of_the_calculator_and_flags_unconverged_forces(rattled_slab):
    structure, fixed = rattled_slab
    doc = OmniStaticMaker(model=MODEL, task=TASK, device="cpu").compute(structure, fixed)
    atoms = fcc111("Cu", (2, 2, 3), vacuum=6.0, a=3.63)
    atoms.positions = structure.cart_coords
    atoms.calc = get_calculator(MODEL, TASK, "cpu")
    assert doc.output.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
    assert doc.input.calc_type == CalcType.STATIC and doc.output.n_steps == 0
    assert not doc.output.converged  # a rattled slab is not at a minimum
    np.testing.assert_allclose(doc.output.structure.cart_coords, structure.cart_coords, atol=1e-9)


def test_relax_maker_runs_as_a_jobflow_job_on_a_molecule():
    h2o = Molecule(["O", "H", "H"], [[0, 0, 0], [0.0, 0.8, 0.6], [0.0, -0.8, 0.6]])
    job = OmniRelaxMaker(model=MODEL, task=TASK, device="cpu").make(h2o, label="H2O(g)")
    store = JobStore(MemoryStore())
    run_locally(job, store=store, log=False, raise_immediately=True)
    doc = MLIPCalculationDoc.model_validate(store.get_output(job.uuid))
    oh = np.linalg.norm(doc.output.structure.cart_coords[1:] - doc.output.structure.cart_coords[0],
                        axis=1)
    assert doc.output.converged and doc.label == "H2O(g)"
    assert np.allclose(oh, 0.97, atol=0.03)  # PBE O-H of water: 0.97 A
