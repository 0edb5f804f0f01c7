"""Batches sized by a measured memory model (model/memory_model.py).

References: known coefficients (the fit must recover them), brute force over every
batch (the greedy splitter must respect the budget and be greedy), a known
allocation (the resident-memory measurement), one-by-one evaluation (batched
numbers), and on a GPU the allocator's own peak on cells the fit never saw.
"""

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from omni_flows.model import load_model
from omni_flows.model import memory_model as mm
from omni_flows.model.inference import evaluate, predict

KNOWN = mm.LinearMemory(a=3e6, b=4e4, c=7e4)  # bytes; the size of 7net-mf-0 on CPU
SYNTHETIC = mm.MemoryModel(kept=KNOWN, recomputed=mm.LinearMemory(5e6, 1e5, 2.5e4), checkpoint_atoms=4096)


def test_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    atoms = rng.integers(10, 3000, 12)
    slots = atoms * rng.integers(10, 80, 12)
    measured = [KNOWN(n, s) * (1 + rng.normal(scale=1e-3)) for n, s in zip(atoms, slots)]
    fit = mm.fit_linear(atoms, slots, measured)
    assert fit.b == pytest.approx(KNOWN.b, rel=0.05)
    assert fit.c == pytest.approx(KNOWN.c, rel=0.01)
    assert abs(fit.a - KNOWN.a) < 0.02 * max(measured)


def test_fit_keeps_coefficients_non_negative():
    # no constant term and noise that would make it slightly negative
    atoms, slots = np.array([100, 200, 400]), np.array([4000, 8000, 16000])
    fit = mm.fit_linear(atoms, slots + np.array([0, 0, 1]), [1.0e6 - 5, 2.0e6, 4.0e6 + 5])
    assert min(fit.a, fit.b, fit.c) >= 0
    assert fit(300, 12000) == pytest.approx(3.0e6, rel=1e-3)


def test_max_atoms_is_the_largest_batch_within_budget():
    for width in (0, 12, 40, 90):
        for budget in (5e7, 4e8, 3e9, 8e10):
            n = SYNTHETIC.max_atoms(width, budget)
            assert SYNTHETIC.predict(n, width) <= budget
            # one more atom does not fit, unless the blocks switch to recomputation there
            assert SYNTHETIC.predict(n + 1, width) > budget or n + 1 > 4096


def test_greedy_splitter_respects_the_budget():
    rng = np.random.default_rng(1)
    sizes = [(int(n), int(w)) for n, w in zip(rng.integers(1, 800, 300), rng.integers(0, 70, 300))]
    budget = 6e8
    batches = mm.split_by_memory(sizes, SYNTHETIC, budget)
    assert [k for b in batches for k in b] == list(range(len(sizes)))  # all, in order
    for b, nxt in zip(batches, batches[1:] + [None]):
        n, w = sum(sizes[k][0] for k in b), max(sizes[k][1] for k in b)
        assert len(b) == 1 or SYNTHETIC.predict(n, w) <= budget
        if nxt:  # greedy: the next structure would not have fitted
            n2, w2 = n + sizes[nxt[0]][0], max(w, sizes[nxt[0]][1])
            assert SYNTHETIC.predict(n2, w2) > budget
    # the atom cap (CPU) holds as well
    for b in mm.split_by_memory(sizes, SYNTHETIC, budget, max_atoms=256):
        assert len(b) == 1 or sum(sizes[k][0] for k in b) <= 256


def test_peak_resident_memory_sees_a_known_allocation():
    size = 200 * 2**20

    def allocate():
        x = np.ones(size // 8)  # touched pages: resident
        return float(x[-1])

    got = mm.peak_bytes(allocate, torch.device("cpu"))
    assert 0.9 * size <= got <= 1.5 * size


def test_cpu_keeps_256_atoms_until_a_model_is_fitted():
    model = load_model("7net-0")
    cells = [bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2) for _ in range(20)]  # 32 atoms each
    assert mm.memory_model_for(model) is None
    assert mm.relaxation_batch_atoms(model, cells) == mm.CPU_BATCH_ATOMS
    assert [len(b) for b in mm.plan_batches(model, cells)] == [8, 8, 4]


def test_fitted_model_on_cpu_sizes_batches_and_numbers_equal_one_by_one(monkeypatch):
    """The fit's code path on CPU with a measurement that returns the synthetic model's
    bytes for each probe; the batches then follow the memory budget."""
    model = load_model("7net-0")
    probes = mm.probe_structures(model, torch.device("cpu"))
    sizes = iter(mm.structure_sizes(probes, model.config.cutoff) * 2)  # kept, then recomputed

    def measure(fn, device):
        n, w = next(sizes)
        return SYNTHETIC.kept(n, n * w)

    fitted = mm.fit_memory_model(model, probes, measure)
    assert fitted.kept.c == pytest.approx(KNOWN.c, rel=1e-6)
    assert mm.memory_model_for(model) is fitted  # cached for this model, backend, dtype, device
    structures = [molecule("H2O"), bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2), molecule("CO"),
                  bulk("Cu", "fcc", a=3.61, cubic=True), molecule("CH4")]
    for s in structures[1::2]:
        s.rattle(0.03, seed=1)
    widths = [w for _, w in mm.structure_sizes(structures, model.config.cutoff)]
    # a budget that fits the two molecules but not the 32-atom cell with them
    budget = SYNTHETIC.kept(35, 35 * max(widths)) - 1
    monkeypatch.setattr(mm, "free_bytes", lambda device: budget / mm.SAFETY)
    # 46 atoms: one batch by the atom rule; the budget splits off the water, and the
    # 32-atom cell with CO (34 atoms) fits where it does not with the water (35 atoms)
    assert mm.split_by_atoms([len(s) for s in structures], mm.CPU_BATCH_ATOMS) == [[0, 1, 2, 3, 4]]
    assert mm.plan_batches(model, structures) == [[0], [1, 2], [3, 4]]
    got = predict(structures, model)
    for s, g in zip(structures, got):
        ref = evaluate(model, [s])[0]
        assert g["energy"] == pytest.approx(ref["energy"], abs=1e-4)
        np.testing.assert_allclose(g["forces"], ref["forces"], atol=1e-4)


def test_out_of_memory_halves_the_batch(monkeypatch):
    model = load_model("7net-0")
    structures = [molecule(m) for m in ("H2O", "CO", "CH4", "NH3", "H2", "CO2")]
    real = mm.evaluate  # the one-graph call the batch planner makes (model/evaluation.py)

    def small_only(model, batch, *args, **kwargs):
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, batch, *args, **kwargs)

    monkeypatch.setattr(mm, "evaluate", small_only)
    stats = {}
    got = mm.evaluate_or_split(model, structures, None, False, stats)
    assert stats["oom_splits"] == 3  # 6 -> 3 + 3 -> (1 + 2) + (1 + 2)
    ref = [real(model, [s], None, False)[0]["energy"] for s in structures]
    assert [g["energy"] for g in got] == pytest.approx(ref, abs=1e-4)
    with pytest.raises(torch.OutOfMemoryError):  # one structure that does not fit: reported
        monkeypatch.setattr(mm, "evaluate", lambda *a, **k: (_ for _ in ()).throw(
            torch.OutOfMemoryError("simulated")))
        mm.evaluate_or_split(model, structures[:1], None, False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_memory_model_predicts_unseen_cells_and_a_screen_never_runs_out():
    model = load_model("7net-mf-0", device="cuda")
    memory = mm.fit_memory_model(model)
    for reps, a in (((7, 7, 7), 3.9), ((12, 12, 12), 3.61), ((16, 16, 16), 4.0)):
        cell = bulk("Cu", "fcc", a=a, cubic=True) * reps
        cell.rattle(0.02, seed=0)
        ((n, w),) = mm.structure_sizes([cell], model.config.cutoff)
        got = mm.peak_bytes(lambda: evaluate(model, [cell], "PBE", stress=False), torch.device("cuda"))
        assert memory.predict(n, w) == pytest.approx(got, rel=0.15)
    rng = np.random.default_rng(0)
    screen = [bulk("Cu", "fcc", a=3.61, cubic=True) * (k, k, k) for k in rng.integers(2, 12, 60)]
    stats = {}
    assert len(mm.evaluate_in_batches(model, screen, "PBE", stats=stats)) == len(screen)
    assert stats.get("oom_splits", 0) == 0
