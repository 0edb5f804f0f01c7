"""Terminations of one facet are told apart by their top layer, in tables, CSVs and plots.

Reference: the L1_2 crystal of Pt3Ni (examples/Pt3Ni.cif). Its (100) planes alternate
between pure Pt and 1:1 Ni-Pt layers, so `--terminations all` gives one slab of each top;
every (111) plane holds the bulk's 3:1 ratio, so (111) has one termination of bulk
composition (issue 28: both (100) slabs were labelled 'NiPt3(100)').
"""

from pathlib import Path

from omni_flows.report import ranked_rows
from omni_flows.workflows.structures.slabs import SlabSpec, bulk_structure, facet_slabs, termination_label

PT3NI = Path(__file__).parents[1] / "examples" / "Pt3Ni.cif"


def best_doc(formula: str, hkl: tuple, termination: str | None, energy: float) -> dict:
    """A stored adsorption_best document, as far as the table reads it."""
    doc = {"bulk_formula": formula, "miller_index": list(hkl), "adsorbate": "O",
           "adsorption_energy": energy, "n_valid": 1, "n_placements": 1,
           "slab_id": f"{formula}/{hkl}/{energy}", "settings_id": "s",
           "provenance": {"energy_reference": {"scheme": "gas_molecules"}}}
    if termination is not None:  # documents stored before terminations were named lack it
        doc["termination"] = termination
    return doc


def test_the_terminations_of_pt3ni_100_are_named_by_their_top_layer():
    bulk = bulk_structure(str(PT3NI))
    tops = [termination_label(slab) for slab, _ in facet_slabs(bulk, (1, 0, 0), SlabSpec())
            .values()]
    assert sorted(tops) == ["NiPt", "Pt"]
    (only,) = facet_slabs(bulk, (1, 1, 1), SlabSpec()).values()
    assert termination_label(only[0]) == "NiPt3"


def test_the_table_labels_each_termination_and_keeps_elemental_labels_short():
    rows = ranked_rows([
        best_doc("NiPt3", (1, 0, 0), "Pt", -4.0),
        best_doc("NiPt3", (1, 0, 0), "NiPt", -4.5),
        best_doc("NiPt3", (1, 1, 1), "NiPt3", -4.2),
        best_doc("Pt", (1, 1, 1), "Pt", -4.4),
        best_doc("Cu", (1, 0, 0), None, -4.1),
    ])
    assert [r["surface"] for r in rows] == [
        "NiPt3(100)-NiPt", "Pt(111)", "NiPt3(111)", "Cu(100)", "NiPt3(100)-Pt"]
