"""MOF adsorption flow (ODAC-style).

References: ODAC23 "promising" MOF CIFs shipped by fairchem-data-odac and the
energy balance E_ads = E(MOF+guest) - E(MOF) - E(guest) of the document.
"""

import importlib.util
import zipfile
from pathlib import Path

import pytest
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from omni_flows.db_schemas import MOFAdsorptionDoc
from omni_flows.workflows import WorkflowInputError
from omni_flows.workflows.mof_flow import MOFAdsorptionMaker


def _odac_cif(name: str, tmp_path: Path) -> Path:
    spec = importlib.util.find_spec("fairchem.data.odac")
    if spec is None:
        pytest.skip("fairchem-data-odac is not installed")
    archive = (Path(spec.submodule_search_locations[0]) / "promising_mof"
               / "promising_mof_structures" / "pristine.zip")
    with zipfile.ZipFile(archive) as zf:
        member = next(m for m in zf.namelist() if m.endswith(f"{name}.cif"))
        path = tmp_path / f"{name}.cif"
        path.write_bytes(zf.read(member))
    return path


def test_d3_on_a_periodic_framework_fails_before_anything_runs():
    pytest.importorskip("tad_dftd3")
    fw = Structure(Lattice.cubic(10.0), ["Zn", "O", "C", "H"],
                   [[0, 0, 0], [0.2, 0, 0], [0.33, 0, 0], [0.43, 0, 0]])
    with pytest.raises(WorkflowInputError, match="periodic"):
        MOFAdsorptionMaker(dispersion=True).make(fw, "toy")


@pytest.mark.slow
def test_co2_in_esusoc01_end_to_end(tmp_path):
    cif = _odac_cif("ESUSOC01", tmp_path)
    flow = MOFAdsorptionMaker(guests=["CO2"], n_placements=1).make(cif)
    store = JobStore(MemoryStore())
    run_locally(flow, store=store, log=False, raise_immediately=True)
    (out,) = [d["output"] for d in store.query({"output.@class": "MOFAdsorptionDoc"})]
    doc = MOFAdsorptionDoc.model_validate(out)
    assert doc.framework_id == "ESUSOC01" and doc.guest == "CO2" and not doc.dispersion
    assert doc.adsorption_energy == pytest.approx(
        doc.complex_energy - doc.framework_energy - doc.guest_energy)
    assert -1.5 < doc.adsorption_energy < 0.0  # physisorbed; ODAC PBE-D3: -0.51 eV
