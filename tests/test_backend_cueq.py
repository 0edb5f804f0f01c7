"""The cuEquivariance backend against the default e3nn backend, with pretrained weights.

Without a GPU the cueq convolution runs cuEquivariance's PyTorch reference method,
so its parity is checked here on CPU; the CUDA kernel's form of the same polynomial
is checked with that method too, and on the GPU itself where there is one.
"""

import numpy as np
import pytest
import torch
from ase import Atoms
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.io.ase import AseAtomsAdaptor

from omni_flows.model import OmniCalculator, cueq, load_model
from omni_flows.model.backends import BackendUnavailableError, _check_cueq, apply_backend
from omni_flows.model.checkpoint import model_hash
from omni_flows.model.convolution import Convolution
from omni_flows.model.inference import evaluate
from omni_flows.workflows import MLIPSettings, OmniStaticMaker
from omni_flows.workflows.relax import get_calculator

from structures import PARITY_STRUCTURES, co_on_pt111

needs_cueq = pytest.mark.skipif(cueq.cuet is None, reason="cuequivariance-torch is not installed")

# the acceptance: same numbers as the e3nn backend
ENERGY_PER_ATOM_TOL = 1e-5  # eV/atom
FORCE_TOL = 1e-4  # eV/A
STRESS_TOL = 1e-6  # eV/A^3, about 1.6e-4 GPa


def small_structures():
    return [make() for name, make in PARITY_STRUCTURES.items() if name != "cu_500"]


def assert_same_results(got, ref):
    for g, r in zip(got, ref):
        n = len(r["forces"])
        assert abs(g["energy"] - r["energy"]) / n < ENERGY_PER_ATOM_TOL
        np.testing.assert_allclose(g["forces"], r["forces"], atol=FORCE_TOL)
        assert ("stress" in g) == ("stress" in r)
        if "stress" in r:
            np.testing.assert_allclose(g["stress"], r["stress"], atol=STRESS_TOL)


@needs_cueq
@pytest.mark.parametrize("name, task", [("7net-mf-0", "PBE"), ("7net-0", None)])
def test_cueq_gives_the_numbers_of_the_e3nn_backend(name, task):
    structures = small_structures()  # one batched graph: slab, bulk, molecule, tiny cell, wire
    ref = evaluate(load_model(name), structures, task)
    got = evaluate(load_model(name, backend="cueq"), structures, task)
    assert_same_results(got, ref)


@needs_cueq
def test_static_maker_on_cueq_gives_the_e3nn_calculator_energy():
    atoms = co_on_pt111()
    job = OmniStaticMaker(mlip=MLIPSettings(model="7net-mf-0", task="PBE", device="cpu",
                                             backend="cueq")).make(
        AseAtomsAdaptor.get_structure(atoms))
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(job, store=store, log=False, raise_immediately=True)
    energy = store.get_output(job.uuid)["output"]["energy"]
    calc = get_calculator("7net-mf-0", "PBE", "cpu", "cueq")  # the Maker's, cached
    assert isinstance(calc.model.interactions[0].convolution, cueq.CueqConvolution)
    atoms.calc = OmniCalculator("7net-mf-0", task="PBE", device="cpu")  # e3nn
    assert abs(energy - atoms.get_potential_energy()) / len(atoms) < ENERGY_PER_ATOM_TOL


@needs_cueq
def test_cueq_keeps_the_checkpoint_and_switches_back():
    model = load_model("7net-mf-0", dtype=torch.float64)
    digest = model_hash(model)
    atoms = [co_on_pt111()]
    ref = evaluate(model, atoms, "PBE")[0]
    apply_backend(model, "cueq")
    assert model_hash(model) == digest  # same state dict: same weights, no new entries
    in_cueq = evaluate(model, atoms, "PBE")[0]
    apply_backend(model, "e3nn")
    assert all(type(b.convolution) is Convolution for b in model.interactions)
    back = evaluate(model, atoms, "PBE")[0]
    assert back["energy"] == ref["energy"]
    # float64: the two implementations agree to rounding
    assert abs(in_cueq["energy"] - ref["energy"]) < 1e-9
    np.testing.assert_allclose(in_cueq["forces"], ref["forces"], atol=1e-9)


@needs_cueq
def test_cuda_kernel_form_of_the_polynomial_gives_the_same_numbers():
    """The form built for the ``uniform_1d`` kernel (scalar coefficients, channels in
    chunks of one size) is what the kernel accepts and, evaluated by the reference
    method, reproduces the e3nn backend."""
    model = load_model("7net-mf-0", backend="cueq")
    # the first block (scalars in), a middle one (all irreps), the last (filtered outputs);
    # building the reference method for the 214-path middle form takes seconds each
    for block in (model.interactions[0], model.interactions[1], model.interactions[-1]):
        conv = block.convolution
        poly = cueq.kernel_polynomial(cueq.conv_descriptor(conv.e3nn))
        ((_, stp),) = poly.operations
        assert stp.coefficient_subscripts == ""
        extents = {o.segment_shape for o in poly.operands if o.ndim == 1}
        assert all(o.ndim in (0, 1) and o.all_same_segment_shape() for o in poly.operands)
        assert len(extents) == 1 and extents.pop()[0] % 32 == 0  # 128/64/32 channels: chunks of 32
        conv.tp = cueq.cuet.SegmentedPolynomial(poly, method="naive")
    atoms = [co_on_pt111()]
    ref = evaluate(load_model("7net-mf-0"), atoms, "PBE")
    assert_same_results(evaluate(model, atoms, "PBE"), ref)


def test_missing_cuequivariance_fails_with_what_to_install(monkeypatch):
    monkeypatch.setattr(cueq, "cuet", None)
    with pytest.raises(BackendUnavailableError, match="pip install cuequivariance-torch"):
        load_model("7net-0", backend="cueq")
    with pytest.raises(BackendUnavailableError, match="cuequivariance-ops-torch-cu12"):
        _check_cueq(torch.device("cuda"))


@needs_cueq
def test_gpu_without_cuda_kernels_fails_with_what_to_install(monkeypatch):
    monkeypatch.setattr(cueq, "cuda_kernels_available", lambda: False)
    with pytest.raises(BackendUnavailableError, match="pip install cuequivariance-ops-torch-cu12"):
        _check_cueq(torch.device("cuda"))


@pytest.mark.gpu
@pytest.mark.skipif(not cueq.cuda_kernels_available(), reason="needs cuequivariance-ops-torch")
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cueq_cuda_kernels_give_the_numbers_of_e3nn_on_the_gpu():
    structures = small_structures()
    ref = evaluate(load_model("7net-mf-0", device="cuda"), structures, "PBE")
    model = load_model("7net-mf-0", device="cuda", backend="cueq")
    assert all(b.convolution.tp.method == "uniform_1d" for b in model.interactions)
    assert_same_results(evaluate(model, structures, "PBE"), ref)


@needs_cueq
def test_cueq_handles_an_atom_without_neighbours():
    """No edges at all: the convolution adds nothing, the atom sits in no field."""
    lone = Atoms("Cu")
    ref = evaluate(load_model("7net-0"), [lone])[0]
    got = evaluate(load_model("7net-0", backend="cueq"), [lone])[0]
    assert got["energy"] == pytest.approx(ref["energy"], abs=1e-6)
    np.testing.assert_array_equal(got["forces"], np.zeros((1, 3)))
