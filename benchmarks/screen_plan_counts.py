"""What one surface screen builds, counted: SlabGenerator constructions, Placement objects
and Structure<->Atoms conversions, when the Flow is built, when it runs and when its table
is selected (issue 26: 5 SlabGenerators per facet, placements made twice, 4 conversions per
placement before the screen had one plan).

    OMP_NUM_THREADS=1 python benchmarks/screen_plan_counts.py

Runs the tiny screen Pt(111) 2x2x3, O and H, 2 placements each (fmax 0.2, in memory: no
database), about a minute on one CPU core.
"""

import collections
import warnings

import pymatgen.core.surface as surface
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Structure

import omni_flows.workflows.structures.anomaly as anomaly
import omni_flows.workflows.structures.placements as placements
import omni_flows.workflows.flows.relax_maker as relax_maker
import omni_flows.workflows.flows.surface_flow as surface_flow
from omni_flows.workflows import MLIPSettings, PlacementSettings, SlabSpec, SurfaceCampaign

counts: collections.Counter = collections.Counter()


def count_calls(owner, name: str, label: str, only: type | None = None) -> None:
    """Count calls of ``owner.name`` (those whose first argument is an ``only``)."""
    original = getattr(owner, name)

    def counted(first, *args, **kwargs):
        if only is None or isinstance(first, only):
            counts[label] += 1
        return original(first, *args, **kwargs)

    setattr(owner, name, counted)


def main() -> None:
    warnings.simplefilter("ignore")
    count_calls(surface.SlabGenerator, "__init__", "SlabGenerator")
    count_calls(placements.Placement, "__init__", "Placement made")
    for module in (surface_flow, relax_maker):
        count_calls(module, "to_atoms", "Structure->Atoms")
        count_calls(module, "to_pymatgen", "Atoms->Structure")
    count_calls(anomaly, "_atoms", "Structure->Atoms (anomaly checks)", only=Structure)
    campaign = SurfaceCampaign(
        bulks=["Pt"], facets=["111"], adsorbates=["O", "H"],
        mlip=MLIPSettings(device="cpu", fmax=0.2),
        slab_spec=SlabSpec(n_layers=3, n_fixed_layers=1, supercell=(2, 2)),
        placements=PlacementSettings(n_random=0, max_placements=2))
    plan = campaign.plan()
    flow = campaign.make(plan)
    print("building the Flow:", dict(counts))
    counts.clear()
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(flow, store=store, log=False, raise_immediately=True)
    print("running it (bulk, 2 gas molecules, slab, 4 placements):", dict(counts))
    counts.clear()
    plan.select([], campaign.settings_id)
    print("selecting its table:", dict(counts))


if __name__ == "__main__":
    main()
