"""Anomaly detection on constructed relaxed states (OC20's kinds), no model needed.

References: geometries built by hand where the answer is known: an intact O in
an fcc hollow (no anomaly), a CO split into C and O 2.5 A apart, an O 8 A
above the surface, an H below the top layer, and a slab with a top atom pulled out.
"""

from ase import Atoms
from ase.build import add_adsorbate, fcc111
from omni_flows.db_schemas import AnomalyKind
from omni_flows.workflows.anomaly import detect_anomalies


def _slab():
    return fcc111("Pt", (2, 2, 4), vacuum=8.0)


def _with(adsorbate: Atoms, height: float, site: str = "fcc", offset=(0, 0)):
    slab = _slab()
    add_adsorbate(slab, adsorbate, height, site, offset=offset)
    n = len(slab) - len(adsorbate)
    return slab, list(range(n, len(slab)))


def _kinds(initial, final, ads):
    return {a.kind for a in detect_anomalies(initial, final, ads)}


def test_intact_adsorbate_in_a_hollow_has_no_anomaly():
    initial, ads = _with(Atoms("O"), 1.2)
    final = initial.copy()
    final.positions[ads[0], 2] -= 0.1
    assert _kinds(initial, final, ads) == set()


def test_split_co_is_dissociation():
    co = Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]])
    initial, ads = _with(co, 1.9, "ontop")
    final = initial.copy()
    c, o = ads
    final.positions[o] = final.positions[c] + [2.5, 0.0, 0.0]
    final.positions[o, 2] = final.positions[c, 2]
    assert AnomalyKind.DISSOCIATION in _kinds(initial, final, ads)
    assert AnomalyKind.DESORPTION not in _kinds(initial, final, ads)


def test_o_far_above_the_surface_is_desorbed():
    initial, ads = _with(Atoms("O"), 1.2)
    final = initial.copy()
    final.positions[ads[0], 2] += 8.0
    assert _kinds(initial, final, ads) == {AnomalyKind.DESORPTION}


def test_h_below_the_top_layer_is_intercalated():
    initial, ads = _with(Atoms("H"), 0.9)
    final = initial.copy()
    top_z = max(final.positions[: ads[0], 2])
    final.positions[ads[0], 2] = top_z - 1.1  # between the first and second layer
    assert AnomalyKind.INTERCALATION in _kinds(initial, final, ads)


def test_pulled_out_surface_atom_is_surface_change():
    initial, ads = _with(Atoms("O"), 1.2)
    final = initial.copy()
    top = max(range(ads[0]), key=lambda i: final.positions[i, 2])
    final.positions[top, 2] += 1.5
    assert AnomalyKind.SURFACE_CHANGE in _kinds(initial, final, ads)
