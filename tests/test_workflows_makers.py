"""MLIP Makers: atomate2 force-field Makers whose documents carry provenance and convergence.

References: a plain ASE FIRE relaxation with a separately built OmniCalculator,
the calculator's single point and stress, the checkpoint hash of ``load_model``,
the minimum of an E(a) scan for the cell, and the starting positions of fixed
atoms (which must not move at all).
"""

import numpy as np
import pytest
from ase.build import add_adsorbate, bulk, fcc111, molecule
from ase.constraints import FixAtoms
from ase.optimize import FIRE
from atomate2.forcefields.jobs import ForceFieldRelaxMaker, ForceFieldStaticMaker
from atomate2.forcefields.schemas import ForceFieldMoleculeTaskDocument, ForceFieldTaskDocument
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from monty.json import MontyDecoder
from omni_flows.db_schemas import CalcType, MLIPCalculationDoc
from omni_flows.model import OmniCalculator
from omni_flows.model.pretrained import load_model
from omni_flows.workflows import OmniRelaxMaker, OmniStaticMaker
from omni_flows.workflows.relax import get_calculator
from pymatgen.core import Molecule
from pymatgen.io.ase import AseAtomsAdaptor

from omni_flows.stores import connect_database, job_store

MODEL, TASK = "7net-mf-0", "PBE"


def run(maker, structure, store=None, **kwargs):
    """The Maker's job run by jobflow; its output document."""
    job = maker.make(structure, **kwargs)
    store = store or JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(job, store=store, log=False, raise_immediately=True)
    return job, MontyDecoder().process_decoded(store.get_output(job.uuid, load=True))


@pytest.fixture(scope="module")
def co_on_pt():
    """CO atop on Pt(111) 2x2x3, bottom layer fixed (ASE FixAtoms), rattled off its minimum."""
    atoms = fcc111("Pt", (2, 2, 3), vacuum=7.0, a=3.97)
    add_adsorbate(atoms, molecule("CO"), 2.0, "ontop", mol_index=1)
    atoms.set_constraint(FixAtoms([a.index for a in atoms if a.tag == 3]))
    atoms.positions += np.random.default_rng(1).normal(0, 0.03, atoms.positions.shape)
    return atoms


def test_relax_equals_plain_ase_fire_keeps_fixed_atoms_and_cell_and_records_provenance(
    co_on_pt,
):
    maker = OmniRelaxMaker(model=MODEL, task=TASK, device="cpu", optimizer="FIRE")
    assert isinstance(maker, ForceFieldRelaxMaker) and not maker.relax_cell
    assert maker.relax_kwargs["fmax"] == 0.05 and maker.optimizer_kwargs["optimizer"] == "FIRE"
    structure = AseAtomsAdaptor.get_structure(co_on_pt)  # FixAtoms -> selective_dynamics
    fixed = [i for i, a in enumerate(co_on_pt) if a.tag == 3]
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    job, doc = run(maker, structure, store=store, label="CO/Pt(111)")
    assert isinstance(doc, ForceFieldTaskDocument) and doc.label == "CO/Pt(111)"
    stored = MLIPCalculationDoc.from_task_document(store.query_one({"uuid": job.uuid})["output"])
    assert stored.input.fixed_indices == fixed and stored.input.calc_type == CalcType.RELAX
    assert (stored.input.fmax, stored.input.optimizer) == (0.05, "FIRE")

    reference = co_on_pt.copy()
    reference.calc = OmniCalculator(MODEL, task=TASK, device="cpu")  # not the cached one
    assert FIRE(reference, logfile=None).run(fmax=0.05, steps=maker.steps)
    assert doc.output.energy == pytest.approx(reference.get_potential_energy(), abs=1e-4)
    assert doc.is_force_converged
    assert np.linalg.norm(doc.output.forces, axis=1).max() < 0.05

    start, end = co_on_pt.positions, doc.output.structure.cart_coords
    np.testing.assert_allclose(end[fixed], start[fixed], rtol=0, atol=1e-9)  # did not move
    assert np.abs(end - start).max() > 1e-2  # the free atoms did relax
    np.testing.assert_allclose(doc.output.structure.lattice.matrix, co_on_pt.cell.array,
                               atol=1e-9)  # relax_cell=False: the cell is kept

    p = doc.provenance
    assert (p.model_name, p.task, doc.forcefield_name) == (MODEL, TASK, MODEL)
    assert p.checkpoint_hash == load_model(MODEL).checkpoint_hash
    assert "torch" in p.package_versions


def test_static_is_one_calculator_energy_and_flags_unconverged_forces(co_on_pt):
    maker = OmniStaticMaker(model=MODEL, task=TASK, device="cpu")
    assert isinstance(maker, ForceFieldStaticMaker)
    structure = AseAtomsAdaptor.get_structure(co_on_pt)
    _, doc = run(maker, structure)
    atoms = co_on_pt.copy()
    atoms.calc = get_calculator(MODEL, TASK, "cpu")
    assert doc.output.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
    assert doc.output.n_steps == 1 and doc.input.steps == 1
    assert not doc.is_force_converged  # a rattled slab is not at a minimum
    moved = doc.output.structure.frac_coords - structure.frac_coords
    np.testing.assert_allclose(moved - np.round(moved), 0, atol=1e-9)  # up to a lattice vector


def test_force_convergence_is_false_when_the_steps_run_out(co_on_pt):
    maker = OmniRelaxMaker(model=MODEL, task=TASK, device="cpu", steps=3)
    _, doc = run(maker, AseAtomsAdaptor.get_structure(co_on_pt))
    assert not doc.is_force_converged
    assert np.linalg.norm(doc.output.forces, axis=1).max() > 0.05


def test_cell_relaxes_only_when_asked_to_the_minimum_of_an_energy_scan():
    strained = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.75))
    calc = get_calculator(MODEL, TASK, "cpu")
    scan = np.linspace(3.55, 3.75, 9)
    energies = [calc.get_potential_energy(bulk("Cu", "fcc", a=a)) for a in scan]
    a0 = -np.polyfit(scan, energies, 2)[1] / (2 * np.polyfit(scan, energies, 2)[0])

    _, kept = run(OmniRelaxMaker(model=MODEL, task=TASK, device="cpu"), strained)
    assert kept.output.structure.volume == pytest.approx(strained.volume, rel=1e-12)
    _, relaxed = run(OmniRelaxMaker(model=MODEL, task=TASK, device="cpu", relax_cell=True),
                     strained)
    a = (4 * relaxed.output.structure.volume) ** (1 / 3)  # fcc: 4 atoms per a^3
    assert a == pytest.approx(a0, abs=0.01)
    assert relaxed.output.energy < kept.output.energy


def test_molecule_relaxes_as_a_job_around_its_fixed_atom_with_steps_in_the_blob_store():
    h2o = Molecule(["O", "H", "H"], [[0, 0, 0], [0.0, 0.8, 0.6], [0.0, -0.8, 0.6]])
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    job, doc = run(OmniRelaxMaker(model=MODEL, task=TASK, device="cpu"), h2o, store=store,
                   fixed=[0], label="H2O(g)")
    assert isinstance(doc, ForceFieldMoleculeTaskDocument)
    assert doc.is_force_converged and doc.label == "H2O(g)"
    coords = doc.output.mol_or_struct.cart_coords
    np.testing.assert_allclose(coords[0], h2o.cart_coords[0], atol=1e-9)  # `fixed` holds O
    oh = np.linalg.norm(coords[1:] - coords[0], axis=1)
    assert np.allclose(oh, 0.97, atol=0.03)  # PBE O-H of water: 0.97 A
    stored = store.query_one({"uuid": job.uuid})["output"]["output"]["ionic_steps"]
    assert stored["store"] == "data"  # a blob reference, not the steps
    assert len(doc.output.ionic_steps) == doc.output.n_steps  # loaded back from the blob


def test_stored_calculation_names_model_task_checkpoint_and_keeps_the_stress(settings):
    strained = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.75))
    store = job_store(settings)
    job, _ = run(OmniStaticMaker(model=MODEL, task=TASK, device="cpu"), strained,
                        store=store, label="Cu strained")
    stored = connect_database(settings)["calculations"].find_one({"label": "Cu strained"})
    doc = MLIPCalculationDoc.model_validate(stored)
    atoms = bulk("Cu", "fcc", a=3.75)
    atoms.calc = get_calculator(MODEL, TASK, "cpu")
    p = doc.provenance
    assert (p.model_name, p.task, p.jobflow_uuid) == (MODEL, TASK, job.uuid)
    assert p.checkpoint_hash == load_model(MODEL).checkpoint_hash
    assert doc.input.calc_type == CalcType.STATIC and doc.output.n_steps == 1
    assert doc.output.converged  # one atom per cell: no force, by symmetry
    assert doc.output.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
    # Voigt eV/A^3 as ASE gives it, back from atomate2's kbar
    np.testing.assert_allclose(doc.output.stress, atoms.get_stress(), atol=1e-7)
    assert abs(doc.output.stress[0]) > 1e-3  # a strained cell is under stress
    store.close()
