"""The OC20 adsorbate library read from fairchem-data-oc's adsorbates.pkl."""

import pytest
from pymatgen.core import Composition

from omni_flows.workflows.errors import UnknownAdsorbateError

oc = pytest.importorskip("fairchem.data.oc.databases.pkls",
                         reason="fairchem-data-oc (the OC20 adsorbate pickle) not installed")

from omni_flows.workflows.structures.adsorbates import get_adsorbate  # noqa: E402
from omni_flows.workflows.structures.oc20_adsorbates import (  # noqa: E402
    N_OC20,
    oc20_adsorbate,
    oc20_adsorbates,
)


def test_82_oc20_adsorbates_and_the_later_additions():
    """OC20 (Chanussot et al. 2021) has 82 adsorbates; the package adds *COOH, *OOH, ..."""
    table = oc20_adsorbates()
    assert sum(a.oc20 for a in table.values()) == N_OC20 == 82
    assert {n for n, a in table.items() if not a.oc20} == {"CO*COH", "*OCHO", "*COOH", "*OOH"}
    assert len(table) == 86


def test_oh_binds_through_oxygen():
    oh = oc20_adsorbates()["*OH"]
    assert oh.atoms[oh.binding_indices[0]].symbol == "O"
    adsorbate = get_adsorbate("*OH")
    assert adsorbate.name == "*OH"
    assert adsorbate.symbols[adsorbate.binding_index] == "O"


@pytest.mark.parametrize("name, binders", [
    ("*N*NH", ("N", "N")), ("*CHO*CHO", ("C", "C")), ("*CH2*O", ("C", "O")), ("*C*C", ("C", "C")),
])
def test_bidentate_adsorbates_keep_both_binding_atoms(name, binders):
    entry = oc20_adsorbates()[name]
    assert entry.multidentate
    assert tuple(entry.atoms[i].symbol for i in entry.binding_indices) == binders
    # one '*' per binding atom in OC20's names
    assert name.count("*") == len(entry.binding_indices)
    # the screen's Adsorbate keeps them all and names them in its identity
    adsorbate = get_adsorbate(name)
    assert adsorbate.binders == entry.binding_indices and adsorbate.multidentate
    assert adsorbate.adsorbate_id == f"{name}:{','.join(map(str, entry.binding_indices))}"


def test_formulas_match_the_names():
    """The atoms of every entry have the composition its OC20 name spells (the name's
    groups with '*' removed), e.g. *COOH -> CHO2, *NH2N(CH3)2 -> C2H8N2."""
    for name, entry in oc20_adsorbates().items():
        assert Composition(entry.atoms.get_chemical_formula()) == \
            Composition(name.replace("*", "")), name
    assert oc20_adsorbates()["*COOH"].formula == "CHO2"


def test_single_binding_atom_for_every_monodentate_name():
    for name, entry in oc20_adsorbates().items():
        if name.count("*") == 1:
            assert len(entry.binding_indices) == 1, name


def test_unknown_name_suggests_the_oc20_spelling():
    with pytest.raises(UnknownAdsorbateError, match=r"\*OH"):
        oc20_adsorbate("OH")


def test_screens_take_oc20_names_and_reference_them_by_formula():
    """``--adsorbates '*OOH'``: the OC20 entry, its E_ads referenced as OOH = 2 H2O - 3/2 H2."""
    from omni_flows.db_schemas import ReferenceScheme
    from omni_flows.workflows.thermo.references import adsorbate_references

    ooh = get_adsorbate("*OOH")
    assert ooh.name == "*OOH" and ooh.formula == "OOH"
    assert ooh.symbols[ooh.binding_index] == "O"
    assert adsorbate_references(ooh, ReferenceScheme.GAS_MOLECULES) == {"H2O": 2.0, "H2": -1.5}
