"""MLIP Makers and the one relaxation engine: documents with provenance and convergence.

References: a plain ASE FIRE relaxation with a separately built OmniCalculator
(the batched engine follows ASE's FIRE step for step), the calculator's single
point and stress, the checkpoint hash of ``load_model``, the minimum of an E(a)
scan for the cell, the starting positions of fixed atoms (which must not move),
and the same placements relaxed one by one.
"""

import numpy as np
import pytest
from ase.build import add_adsorbate, bulk, fcc111, molecule
from ase.constraints import FixAtoms
from ase.optimize import FIRE
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from monty.json import MontyDecoder
from omni_flows.db_schemas import CalcType, MLIPCalculationDoc
from omni_flows.model import OmniCalculator
from omni_flows.model.pretrained import load_model
from omni_flows.workflows import MLIPSettings, OmniRelaxMaker, OmniStaticMaker
from omni_flows.workflows.structures.adsorbates import get_adsorbate
from omni_flows.workflows.structures.geometry import to_atoms
from omni_flows.workflows.structures.placements import PlacementSettings, make_placements
from omni_flows.workflows.relax import get_calculator, relax
from pymatgen.core import Molecule
from pymatgen.io.ase import AseAtomsAdaptor

from omni_flows.stores import connect_database, job_store

MODEL, TASK = "7net-mf-0", "PBE"
CPU = MLIPSettings(model=MODEL, task=TASK, device="cpu")


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
    mlip = CPU.model_copy(update={"optimizer": "FIRE"})
    maker = OmniRelaxMaker(mlip=mlip)
    structure = AseAtomsAdaptor.get_structure(co_on_pt)  # FixAtoms -> selective_dynamics
    fixed = [i for i, a in enumerate(co_on_pt) if a.tag == 3]
    _, doc = run(maker, structure, label="CO/Pt(111)")
    assert isinstance(doc, MLIPCalculationDoc) and doc.label == "CO/Pt(111)"
    assert doc.input.fixed_indices == fixed and doc.input.calc_type == CalcType.RELAX
    assert (doc.input.fmax, doc.input.optimizer) == (0.05, "FIRE")

    reference = co_on_pt.copy()
    reference.calc = OmniCalculator(MODEL, task=TASK, device="cpu")  # not the cached one
    assert FIRE(reference, logfile=None).run(fmax=0.05, steps=mlip.steps)
    assert doc.output.energy == pytest.approx(reference.get_potential_energy(), abs=1e-4)
    assert doc.output.converged and doc.output.max_force < 0.05

    start, end = co_on_pt.positions, doc.output.structure.cart_coords
    np.testing.assert_allclose(end[fixed], start[fixed], rtol=0, atol=1e-9)  # did not move
    assert np.abs(end - start).max() > 1e-2  # the free atoms did relax
    np.testing.assert_allclose(doc.output.structure.lattice.matrix, co_on_pt.cell.array,
                               atol=1e-9)  # relax_cell=False: the cell is kept

    p = doc.provenance
    assert (p.model_name, p.task, p.backend, p.optimizer, p.device) == (
        MODEL, TASK, "e3nn", "FIRE", "cpu")
    assert p.checkpoint_hash == load_model(MODEL).checkpoint_hash == mlip.checkpoint_hash
    assert p.settings["mlip"]["optimizer"] == "FIRE" and len(doc.settings_id) == 10
    assert "torch" in p.package_versions


def test_static_is_one_calculator_energy_and_flags_unconverged_forces(co_on_pt):
    structure = AseAtomsAdaptor.get_structure(co_on_pt)
    _, doc = run(OmniStaticMaker(mlip=CPU), structure)
    atoms = co_on_pt.copy()
    atoms.calc = get_calculator(CPU)
    assert doc.output.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
    assert doc.output.n_steps == 0 and doc.input.calc_type == CalcType.STATIC
    assert not doc.output.converged  # a rattled slab is not at a minimum
    moved = doc.output.structure.frac_coords - structure.frac_coords
    np.testing.assert_allclose(moved - np.round(moved), 0, atol=1e-9)  # up to a lattice vector


def test_force_convergence_is_false_when_the_steps_run_out(co_on_pt):
    _, doc = run(OmniRelaxMaker(mlip=CPU.model_copy(update={"steps": 3})),
                 AseAtomsAdaptor.get_structure(co_on_pt))
    assert not doc.output.converged and doc.output.n_steps == 3
    assert doc.output.max_force > 0.05


def test_cell_relaxes_only_when_asked_to_the_minimum_of_an_energy_scan():
    strained = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.75))
    calc = get_calculator(CPU)
    scan = np.linspace(3.55, 3.75, 9)
    energies = [calc.get_potential_energy(bulk("Cu", "fcc", a=a)) for a in scan]
    a0 = -np.polyfit(scan, energies, 2)[1] / (2 * np.polyfit(scan, energies, 2)[0])

    _, kept = run(OmniRelaxMaker(mlip=CPU), strained)
    assert kept.output.structure.volume == pytest.approx(strained.volume, rel=1e-12)
    _, relaxed = run(OmniRelaxMaker(mlip=CPU, relax_cell=True), strained)
    a = (4 * relaxed.output.structure.volume) ** (1 / 3)  # fcc: 4 atoms per a^3
    assert a == pytest.approx(a0, abs=0.01)
    assert relaxed.output.energy < kept.output.energy


def test_molecule_relaxes_as_a_job_around_its_fixed_atom():
    h2o = Molecule(["O", "H", "H"], [[0, 0, 0], [0.0, 0.8, 0.6], [0.0, -0.8, 0.6]])
    _, doc = run(OmniRelaxMaker(mlip=CPU), h2o, fixed=[0], label="H2O(g)")
    assert doc.output.converged and doc.label == "H2O(g)"
    assert isinstance(doc.output.structure, Molecule)
    coords = doc.output.structure.cart_coords
    start = to_atoms(h2o).positions[0]  # the molecule as centred in its box
    np.testing.assert_allclose(coords[0], start, atol=1e-9)  # `fixed` holds O
    assert np.abs(coords[1:] - to_atoms(h2o).positions[1:]).max() > 0.02  # the H moved
    oh = np.linalg.norm(coords[1:] - coords[0], axis=1)
    assert np.allclose(oh, 0.97, atol=0.03)  # PBE O-H of water: 0.97 A
    assert len(doc.trajectory["energies"]) == doc.output.n_steps + 1


def test_stored_calculation_names_model_task_checkpoint_and_keeps_the_stress(settings):
    strained = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.75))
    store = job_store(settings)
    job, _ = run(OmniStaticMaker(mlip=CPU), strained, store=store, label="Cu strained")
    stored = connect_database(settings)["calculations"].find_one({"label": "Cu strained"})
    doc = MLIPCalculationDoc.model_validate(stored)
    atoms = bulk("Cu", "fcc", a=3.75)
    atoms.calc = get_calculator(CPU)
    p = doc.provenance
    assert (p.model_name, p.task, p.jobflow_uuid) == (MODEL, TASK, job.uuid)
    assert p.checkpoint_hash == load_model(MODEL).checkpoint_hash
    assert doc.input.calc_type == CalcType.STATIC and doc.output.n_steps == 0
    assert doc.output.converged  # one atom per cell: no force, by symmetry
    assert doc.output.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
    np.testing.assert_allclose(doc.output.stress, atoms.get_stress(), atol=1e-7)  # Voigt eV/A^3
    assert abs(doc.output.stress[0]) > 1e-3  # a strained cell is under stress
    store.close()


def test_a_placement_relaxed_alone_and_in_a_batch_gets_the_same_energy():
    """One engine: 1 structure or several, the same optimizer, criterion and result."""
    slab = AseAtomsAdaptor.get_structure(fcc111("Pt", (2, 2, 3), vacuum=7.0, a=3.97))
    fixed = [0, 1, 2, 3]
    placements = make_placements(slab, fixed, get_adsorbate("CO"),
                                 PlacementSettings(n_random=1, max_placements=3))
    structures = [to_atoms(p.structure, fixed) for p in placements]
    batch = relax(structures, CPU)
    alone = relax(structures[:1], CPU)
    assert len(batch) == 3 and all(r.converged for r in batch + alone)
    assert alone[0].energy == pytest.approx(batch[0].energy, abs=1e-4)
    assert alone[0].nsteps == pytest.approx(batch[0].nsteps, abs=2)
