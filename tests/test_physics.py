"""Independent checks of the physics: finite differences and symmetries (float64)."""

import numpy as np
import pytest
import torch

from omni_flows.model import load_model
from omni_flows.model.inference import evaluate

from structures import co_on_pt111, cu_bulk, random_rotation, water


@pytest.fixture(scope="module")
def model64():
    return load_model("7net-mf-0", dtype=torch.float64)


def energy(model, atoms, task="PBE"):
    return evaluate(model, [atoms], task, stress=False)[0]["energy"]


def test_forces_are_minus_finite_difference_gradient(model64):
    atoms = co_on_pt111()
    forces = evaluate(model64, [atoms], "PBE")[0]["forces"]
    h = 1e-4
    for i in (0, 17, 36, 37):  # a bottom Pt, a surface Pt, C and O
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, a] += h
            minus.positions[i, a] -= h
            fd = -(energy(model64, plus) - energy(model64, minus)) / (2 * h)
            assert abs(fd - forces[i, a]) < 1e-5, (i, a, fd, forces[i, a])


def test_stress_matches_finite_strain(model64):
    atoms = cu_bulk()
    stress = evaluate(model64, [atoms], "PBE")[0]["stress"]  # Voigt xx yy zz yz xz xy
    h, vol = 1e-5, atoms.get_volume()
    voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    for k, (a, b) in enumerate(voigt):
        es = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] = eps[b, a] = sign * h / (1 if a == b else 2)
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            es.append(energy(model64, strained))
        fd = (es[0] - es[1]) / (2 * h) / vol
        assert abs(fd - stress[k]) < 1e-7, (k, fd, stress[k])


def test_energy_invariant_and_forces_equivariant(model64):
    atoms = co_on_pt111()
    ref = evaluate(model64, [atoms], "PBE")[0]
    rot = random_rotation(3)
    moved = atoms.copy()
    moved.set_cell(atoms.cell.array @ rot.T)
    moved.positions = atoms.positions @ rot.T + np.array([1.3, -0.7, 2.1])
    got = evaluate(model64, [moved], "PBE")[0]
    assert abs(got["energy"] - ref["energy"]) < 1e-7
    np.testing.assert_allclose(got["forces"], ref["forces"] @ rot.T, atol=1e-7)
    # stress transforms as a rank-2 tensor
    def full(v):
        return np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])
    np.testing.assert_allclose(full(got["stress"]), rot @ full(ref["stress"]) @ rot.T, atol=1e-9)


def test_permutation_permutes_forces(model64):
    atoms = water()
    perm = [2, 0, 1]
    ref = evaluate(model64, [atoms], "PBE")[0]
    got = evaluate(model64, [atoms[perm]], "PBE")[0]
    assert abs(got["energy"] - ref["energy"]) < 1e-10
    np.testing.assert_allclose(got["forces"], ref["forces"][perm], atol=1e-10)
    np.testing.assert_allclose(got["energies"], ref["energies"][perm], atol=1e-10)


def test_per_atom_energies_and_virials_sum_to_totals(model64):
    atoms = cu_bulk()
    r = evaluate(model64, [atoms], "PBE", virials=True)[0]
    assert abs(r["energies"].sum() - r["energy"]) < 1e-9
    np.testing.assert_allclose(r["stresses"].sum(axis=0), r["stress"], atol=1e-10)
    np.testing.assert_allclose(r["forces"].sum(axis=0), 0.0, atol=1e-9)  # Newton's third law
