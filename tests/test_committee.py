"""Committees (model/committee.py): K task parts over omni-ads-0's universal weights.

References: the task itself (an appended copy must predict exactly what it predicts, and
training members must leave it bit for bit), the arithmetic of per-element shifts (a shift
of a slab element cancels in a member's own adsorption energy, one of the adsorbate's does
not against fixed references), the normal distribution's quantile for the calibration
scale, and the invariance of scalar features under rotation for the latent distance.
"""

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.db import connect
from scipy.stats import norm

from omni_flows.model import (OmniCalculator, load_checkpoint, load_model, out_of_domain, predict,
                               save_checkpoint)
from omni_flows.model.committee import calibration, committee_energies, fit_scale, spread
from omni_flows.model.errors import UnknownTaskError
from omni_flows.model.header import checkpoint_header
from omni_flows.model.latent_distance import LatentDistance
from omni_flows.model.train.committee import train_committee

from structures import co_on_pt111, random_rotation

TASK = "gpaw_rpbe"


@pytest.fixture(scope="module")
def model():
    """omni-ads-0 with an untrained committee of 4 on gpaw_rpbe."""
    m = load_model("omni-ads-0")
    m.add_committee(TASK, 4)
    return m


@pytest.fixture(scope="module")
def pt_co():
    """CO on Pt(111), its slab and the CO molecule (for E_ads = E(CO/Pt) - E(Pt) - E(CO))."""
    ads = co_on_pt111()
    return [ads, ads[:36], ads[36:]]


def test_untrained_members_predict_the_task_bit_for_bit(model, pt_co):
    plain = predict(pt_co, model, task=TASK)
    with_committee = predict(pt_co, model, task=TASK, committee=True)
    for a, b in zip(plain, with_committee):
        assert b["energy"] == a["energy"]  # the model's number, whatever committee says
        np.testing.assert_array_equal(b["forces"], a["forces"])
        assert b["committee_energies"] == [a["energy"]] * 4
    assert "committee_energies" not in plain[0]


def test_no_committee_raises_naming_the_tasks_that_have_one(model, pt_co):
    with pytest.raises(UnknownTaskError, match=r"no committee for task 'PBE'.*gpaw_rpbe"):
        predict(pt_co, model, task="PBE", committee=True)
    with pytest.raises(UnknownTaskError, match=r"committee: none"):
        predict(pt_co, "omni-ads-0", task=TASK, committee=True)
    with pytest.raises(UnknownTaskError, match="no committee"):
        OmniCalculator(model, task="PBE", committee=True)
    with pytest.raises(UnknownTaskError) as info:  # members are not offered as tasks
        model.task_index("nope")
    assert "~" not in str(info.value)


def test_calculator_gives_the_committee_energies_of_predict(model, pt_co):
    atoms = pt_co[0].copy()
    atoms.calc = OmniCalculator(model, task=TASK, committee=True)
    energy = atoms.get_potential_energy()
    expected = predict([atoms], model, task=TASK, committee=True)[0]
    assert energy == expected["energy"]
    np.testing.assert_array_equal(atoms.calc.results["committee_energies"],
                                  expected["committee_energies"])


def test_a_shift_of_a_slab_element_cancels_in_a_members_adsorption_energy(pt_co):
    """Member 1 differs from the task only by +0.3 eV on every Pt atom: its E(slab+CO) and
    E(slab) move by 36 x 0.3 eV, its E_ads not at all (to float32 rounding of ~-230 eV
    totals). Member 2 differs by +0.3 eV on O: against fixed references its E_ads moves by
    0.3 eV, so the cancellation above is not a test that cannot fail."""
    m = load_model("omni-ads-0")
    m.add_committee(TASK, 4)
    species = m.config.species
    with torch.no_grad():
        m.energy_shift[m.task_index(f"{TASK}~1"), species.index("Pt")] += 0.3
        m.energy_shift[m.task_index(f"{TASK}~2"), species.index("O")] += 0.3
    e = committee_energies(m, pt_co, TASK)  # (3 structures, 4 members)
    task = np.array([r["energy"] for r in predict(pt_co, m, task=TASK)])
    np.testing.assert_allclose(e[:2, 0] - task[:2], 36 * 0.3, atol=2e-4)
    e_ads = e[0] - e[1] - e[2]  # each member's own difference
    e_ads_task = task[0] - task[1] - task[2]
    assert abs(e_ads[0] - e_ads_task) < 2e-4
    e_ads_fixed_refs = e[0] - e[1] - task[2]
    assert e_ads_fixed_refs[1] - e_ads_task == pytest.approx(0.3, abs=2e-4)
    assert spread(e_ads[[0, 2, 3]]) < 2e-4  # spread of an E_ads over members 1, 3, 4


def test_training_moves_only_the_members(tmp_path):
    """Two steps on bootstrap resamples of real GPAW RPBE rows (CHEAT Pt and Pd slabs with
    an adsorbate)."""
    from omni_flows.accuracy.results import DEFAULT_DATA_ROOT

    db = connect(DEFAULT_DATA_ROOT / "hea_gpaw_rpbe" / "pure_metals.db")
    rows = [next(db.select(element=metal)).toatoms() for metal in ("Pt", "Pd")]
    m = load_model("omni-ads-0")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    plain = predict(rows, m, task=TASK)
    # seed 2 draws four different resamples (in order: Pt Pd, Pd Pd, Pt Pt, Pd Pt)
    log = train_committee(m, TASK, rows, size=4, steps=2, batch_size=1, lr=2e-3, seed=2)
    members = [m.task_index(n) for n in log["members"]]
    for name, old in before.items():
        new = m.state_dict()[name]
        assert torch.equal(new[: old.shape[0]], old), name  # every old row, universal included
    shift = m.energy_shift.detach()
    source = m.task_index(TASK)
    for a in members:
        assert not torch.equal(shift[a], shift[source])
        assert all(not torch.equal(shift[a], shift[b]) for b in members if b != a)
    after = predict(rows, m, task=TASK, committee=True)
    for p, q in zip(plain, after):
        assert q["energy"] == p["energy"]
        assert len(set(q["committee_energies"])) == 4
    elements = sorted({s for r in rows for s in r.get_chemical_symbols()})
    assert "Pt" in elements and "Pd" in elements and m.config.task_elements[TASK] == elements

    # the record travels in the checkpoint and its header (read without torch)
    m.set_committee_scale(TASK, 1.7)
    path = tmp_path / "committee.safetensors"
    save_checkpoint(m, path)
    header = checkpoint_header(str(path))
    assert header.tasks == ("R2SCAN", "PBE", "gpaw_rpbe", "oc20")
    assert header.committee(TASK).members == tuple(log["members"])
    assert header.committee(TASK).scale == 1.7
    assert out_of_domain(elements + ["Au"], str(path), TASK) == ["Au"]
    assert out_of_domain(["Pt"], str(path), "PBE") is None  # not recorded: unknown, not in domain
    again = predict(rows, load_checkpoint(path), task=TASK, committee=True)
    assert [r["committee_energies"] for r in again] == [r["committee_energies"] for r in after]


def test_fit_scale_against_the_normal_quantile():
    """Errors 1.7 sigma z, z ~ N(0, 1): 95 % of |z| lie within norm.ppf(0.975) = 1.960, so the
    scale that puts 95 % within 2 s sigma is 1.7 x 1.960 / 2."""
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.05, 0.5, 40000)
    errors = 1.7 * sigma * rng.standard_normal(sigma.size)
    s = fit_scale(errors, sigma)
    assert s == pytest.approx(1.7 * norm.ppf(0.975) / 2, rel=0.02)
    stats = calibration(errors, s * sigma)
    assert stats["share_within"] == pytest.approx(0.95, abs=1e-3)
    assert stats["spearman"] > 0.3  # |error| grows with sigma
    assert calibration(errors, 0.3 * sigma)["share_within"] < 0.5  # over-confident sigma


def test_latent_distance_is_zero_on_training_atoms_and_rotation_invariant(model, pt_co):
    latent = LatentDistance(model, TASK, pt_co[:2])
    turned = pt_co[0].copy()
    turned.positions = turned.positions @ random_rotation(4).T
    turned.cell = turned.cell.array @ random_rotation(4).T
    seen, rotated, new = latent.score([pt_co[0], turned, molecule("H2O")])
    assert seen < 1e-3 and rotated < 1e-2  # scalar features do not see a rotation
    assert new > 1.0
