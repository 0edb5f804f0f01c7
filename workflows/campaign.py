"""A surface screening campaign: several bulks x facets x adsorbates as ONE jobflow Flow.

The whole input is checked before the Flow exists (bulks, facets, adsorbates,
references, model and task), so a bad input stops before any relaxation and
leaves the store untouched. Gas-reference molecules are shared by all bulks, and the
placements of every (slab, adsorbate) of every bulk are batched together into
relaxation jobs of at most ``batch_atoms`` atoms (0: one job per slab and adsorbate).
"""

import re
from dataclasses import dataclass, field

from jobflow import Flow
from omni_flows.db_schemas import ReferenceScheme

from .adsorbates import get_adsorbate
from .errors import FacetError
from .placements import PlacementSettings
from .settings import MLIPSettings
from .slabs import SlabSpec, bulk_structure
from .surface_flow import (
    DEFAULT_BATCH_ATOMS,
    SurfaceAdsorptionMaker,
    bulk_name,
    gas_reference_jobs,
    slab_name,
)
from .thermochemistry import FreeEnergySettings


def parse_facet(text: str | tuple) -> tuple[int, int, int]:
    """'111', '1-10', '1,1,0' or (1, 1, 0) -> (h, k, l)."""
    if isinstance(text, tuple | list):
        digits = [int(i) for i in text]
    elif "," in text:
        digits = [int(i) for i in text.split(",")]
    else:
        digits = [int(i) for i in re.findall(r"-?\d", text)]
        if "".join(re.findall(r"-?\d", text)) != text.strip():
            digits = []
    if len(digits) != 3:
        raise FacetError(f"facet {text!r} is not a Miller index: write 111, 1-10 or 2,1,1")
    return tuple(digits)


@dataclass
class SurfaceCampaign:
    """What to screen and how (the CLI's options, validated once here).

    ``settings_id`` names the campaign's settings (model, relaxation, slab,
    placements, reference): its documents carry it, its table is read back by it
    and its files are named after it. ``batch_atoms`` (atoms of placements per
    relaxation job, across slabs and bulks; 0: one job per slab and adsorbate) is
    how it runs, not part of it: batched or not, the same documents.
    """

    bulks: list[str]
    facets: list[str] = field(default_factory=lambda: ["111"])
    adsorbates: list[str] = field(default_factory=lambda: ["O", "H"])
    mlip: MLIPSettings = field(default_factory=MLIPSettings)
    slab_spec: SlabSpec = field(default_factory=SlabSpec)
    placements: PlacementSettings = field(default_factory=PlacementSettings)
    reference: ReferenceScheme = ReferenceScheme.GAS_MOLECULES
    free_energy: FreeEnergySettings | None = None
    batch_atoms: int = DEFAULT_BATCH_ATOMS
    # every distinct termination of each facet, not only the first (pymatgen's order)
    all_terminations: bool = False

    def makers(self) -> list[SurfaceAdsorptionMaker]:
        millers = [parse_facet(f) for f in self.facets]
        return [
            SurfaceAdsorptionMaker(
                miller_indices=millers, adsorbates=list(self.adsorbates), mlip=self.mlip,
                slab_spec=self.slab_spec, placements=self.placements,
                reference=ReferenceScheme(self.reference), free_energy=self.free_energy,
                batch_atoms=self.batch_atoms, all_terminations=self.all_terminations,
            )
            for _ in self.bulks
        ]

    @property
    def settings_id(self) -> str:
        return SurfaceAdsorptionMaker(mlip=self.mlip, slab_spec=self.slab_spec,
                                      placements=self.placements, reference=self.reference,
                                      free_energy=self.free_energy).settings_id

    def make(self) -> Flow:
        """The campaign's Flow; every input is checked first (nothing runs here)."""
        makers = self.makers()
        checked = [maker.check(bulk) for maker, bulk in zip(makers, self.bulks)]
        adsorbates = list({a.adsorbate_id: a for _, ads, _ in checked for a in ads}.values())
        gas_jobs, gas_docs = gas_reference_jobs(adsorbates, ReferenceScheme(self.reference),
                                                self.mlip)
        jobs, pairs = list(gas_jobs), []
        for maker, bulk in zip(makers, self.bulks):
            slab_jobs, bulk_pairs = maker.slab_jobs(bulk, gas_docs)
            jobs += slab_jobs
            pairs += bulk_pairs
        # every bulk's pairs together (no bulk: no pairs)
        placement_jobs, outputs = makers[0].placement_jobs(pairs) if makers else ([], [])
        facets, adsorbates = " ".join(self.facets), " ".join(self.adsorbates)
        name = f"screen {'+'.join(self.bulks)} ({facets}) {adsorbates}"
        return Flow(jobs + placement_jobs, output=outputs, name=name)

    def systems(self) -> dict:
        """What the campaign's table holds: bulk ids, Miller indices, slab ids (the
        terminations screened), adsorbate ids."""
        slab_ids = set()
        for maker, bulk in zip(self.makers(), self.bulks):
            structure, _, shifts = maker.check(bulk)
            slab_ids |= {slab_name(bulk_name(structure), miller, shift, self.slab_spec)
                         for miller, found in shifts.items() for shift in found}
        return {
            "bulk_id": sorted({bulk_name(bulk_structure(b)) for b in self.bulks}),
            "miller_index": sorted({parse_facet(f) for f in self.facets}),
            "slab_id": sorted(slab_ids),
            "adsorbate_id": sorted({get_adsorbate(a).adsorbate_id for a in self.adsorbates}),
        }

    def select(self, docs: list[dict]) -> list[dict]:
        """The campaign's documents among ``docs`` (of its settings id)."""
        systems = self.systems()
        return [d for d in docs if d.get("settings_id") == self.settings_id
                and d.get("bulk_id") in systems["bulk_id"]
                and tuple(d.get("miller_index") or ()) in systems["miller_index"]
                and d.get("slab_id") in systems["slab_id"]
                and d.get("adsorbate_id") in systems["adsorbate_id"]]
