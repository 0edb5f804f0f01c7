"""Batched relaxation against ASE's sequential FIRE and BFGS; kernel backend selection."""

import numpy as np
import pytest
import torch
from ase.build import add_adsorbate, bulk, fcc111
from ase.constraints import FixAtoms
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE

from omni_flows.model import OmniCalculator, load_model
from omni_flows.model.backends import BackendUnavailableError
from omni_flows.model import batch_relax, defaults
from omni_flows.model.batch_relax import relax_batch
from omni_flows.model.inference import evaluate

from structures import co_on_pt111


def placements():
    out = []
    for k, (ads, site) in enumerate([("O", "fcc"), ("H", "hcp")]):
        slab = fcc111("Cu", (2, 2, 3), vacuum=6.0)
        add_adsorbate(slab, ads, 1.5, site)
        slab.set_constraint(FixAtoms(indices=[a.index for a in slab if a.tag == 3]))
        slab.rattle(0.03, seed=k)
        out.append(slab)
    return out


@pytest.mark.parametrize("optimizer", [FIRE, BFGS], ids=["FIRE", "BFGS"])
def test_batched_relaxation_matches_sequential_ase(optimizer):
    model = load_model("7net-mf-0", dtype=torch.float64)
    structures = placements()
    batched = relax_batch(structures, model, "PBE", fmax=0.05, steps=200,
                          optimizer=optimizer.__name__)
    calc = OmniCalculator(model, task="PBE", dtype=torch.float64)
    for s, b in zip(structures, batched):
        a = s.copy()
        a.calc = calc
        opt = optimizer(a, logfile=None)
        assert opt.run(fmax=0.05, steps=200) and b.converged
        assert b.nsteps == opt.nsteps  # the same trajectory, step for step
        assert abs(b.energy - a.get_potential_energy()) < 1e-6
        np.testing.assert_allclose(b.atoms.positions, a.positions, atol=1e-5)
        fixed = s.constraints[0].get_indices()
        np.testing.assert_array_equal(b.atoms.positions[fixed], s.positions[fixed])
        assert np.linalg.norm(b.forces, axis=1).max() < 0.05


def strained_bulks():
    cu = bulk("Cu", "fcc", a=3.70, cubic=True)  # 2.5% expanded
    pt = bulk("Pt", "fcc", a=3.92) * (2, 1, 1)
    pt.set_cell(pt.cell * [1.02, 0.98, 1.0], scale_atoms=True)
    for k, a in enumerate((cu, pt)):
        a.rattle(0.03, seed=k)
    return [cu, pt]


@pytest.mark.parametrize("optimizer", [FIRE, BFGS], ids=["FIRE", "BFGS"])
def test_batched_cell_relaxation_matches_ase_with_frechet_cell_filter(optimizer):
    model = load_model("7net-mf-0", dtype=torch.float64)
    structures = strained_bulks()
    batched = relax_batch(structures, model, "PBE", fmax=0.02, steps=200,
                          optimizer=optimizer.__name__, relax_cell=True)
    calc = OmniCalculator(model, task="PBE", dtype=torch.float64)
    for s, b in zip(structures, batched):
        a = s.copy()
        a.calc = calc
        opt = optimizer(FrechetCellFilter(a), logfile=None)
        assert opt.run(fmax=0.02, steps=200) and b.converged
        assert b.nsteps == opt.nsteps  # the same trajectory, step for step
        assert abs(b.energy - a.get_potential_energy()) < 1e-6
        np.testing.assert_allclose(b.atoms.cell[:], a.cell[:], atol=1e-5)
        np.testing.assert_allclose(b.atoms.positions, a.positions, atol=1e-5)
        np.testing.assert_allclose(b.stress, a.get_stress(), atol=1e-7)
        # the cell moved: the strained start relaxed towards the model's lattice
        assert abs(b.atoms.get_volume() - s.get_volume()) > 0.02 * s.get_volume()
        # converged cell: FrechetCellFilter's cell force is the virial per atom, V|stress|/N
        assert np.abs(b.stress).max() * b.atoms.get_volume() / len(a) < 0.02


def test_cell_relaxation_refuses_a_slab():
    slab = fcc111("Cu", (2, 2, 3), vacuum=6.0)
    with pytest.raises(ValueError, match="3D periodic cell; structures \\[0\\]"):
        relax_batch([slab], load_model("7net-mf-0"), "PBE", relax_cell=True)


def test_batched_bfgs_does_not_stall_where_an_update_breaks_ases():
    """O ontop on Cu(111), as in benchmarks/bench_relax.py (placement 45): a step of
    negative curvature gives ASE's BFGS Hessian an eigenvalue of about -2e4 and ASE then
    stays at |F| ~ 0.9 eV/A for hundreds of steps. Skipping that update converges it."""
    slab = fcc111("Cu", (3, 3, 3), vacuum=7.0)
    add_adsorbate(slab, "O", 1.6, "ontop")
    slab.set_constraint(FixAtoms(indices=[a.index for a in slab if a.tag == 3]))
    slab.rattle(0.05, seed=45)
    model = load_model("7net-mf-0")
    (r,) = relax_batch([slab], model, "PBE", fmax=0.05, steps=100, optimizer="BFGS")
    assert r.converged and r.nsteps < 100
    # forces recomputed at the final geometry by the ASE calculator, free atoms only
    a = r.atoms.copy()
    a.calc = OmniCalculator(model, task="PBE")
    free = slab.positions[:, 2] > slab.positions[:, 2].min() + 0.5
    assert np.linalg.norm(a.get_forces()[free], axis=1).max() < 0.05
    # ASE's BFGS from the same start is still far from converged after as many steps
    b = slab.copy()
    b.calc = OmniCalculator(model, task="PBE")
    assert not BFGS(b, logfile=None).run(fmax=0.05, steps=r.nsteps)
    assert b.get_potential_energy() > r.energy + 0.05


def test_unknown_backend_fails_clearly():
    with pytest.raises(BackendUnavailableError, match="choose one of"):
        OmniCalculator("7net-0", backend="fast")


@pytest.mark.slow  # the first compiled call takes minutes on CPU
def test_compile_backend_gives_the_same_numbers():
    atoms = co_on_pt111()
    ref = evaluate(load_model("7net-mf-0"), [atoms], "PBE")[0]
    got = evaluate(load_model("7net-mf-0", backend="compile"), [atoms], "PBE")[0]
    assert abs(got["energy"] - ref["energy"]) / len(atoms) < 1e-5
    np.testing.assert_allclose(got["forces"], ref["forces"], atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu():
    atoms = co_on_pt111()
    ref = evaluate(load_model("7net-mf-0"), [atoms], "PBE")[0]
    got = evaluate(load_model("7net-mf-0", device="cuda"), [atoms], "PBE")[0]
    assert abs(got["energy"] - ref["energy"]) / len(atoms) < 1e-5
    np.testing.assert_allclose(got["forces"], ref["forces"], atol=1e-4)


def test_settings_offer_exactly_the_optimizers_the_engine_has():
    """The torch-free list that settings validate against names the engine's optimizers."""
    assert sorted(defaults.OPTIMIZERS) == sorted(batch_relax.OPTIMIZERS)
