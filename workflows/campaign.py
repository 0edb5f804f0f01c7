"""A surface screening campaign: several bulks x facets x adsorbates as ONE jobflow Flow.

The whole input is checked before the Flow exists (bulks, facets, adsorbates,
references, model and task), so a bad input stops before any relaxation and
leaves the store untouched. Gas-reference molecules are shared by all bulks.
"""

import re
from dataclasses import dataclass, field

from jobflow import Flow
from omni_flows.db_schemas import ReferenceScheme

from .errors import FacetError
from .placements import DEFAULT_RANDOM, DEFAULT_SEED
from .slabs import SlabSpec
from .surface_flow import MLIPSettings, SurfaceAdsorptionMaker, gas_reference_jobs


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
    """What to screen and how (the CLI's options, validated once here)."""

    bulks: list[str]
    facets: list[str] = field(default_factory=lambda: ["111"])
    adsorbates: list[str] = field(default_factory=lambda: ["O", "H"])
    mlip: MLIPSettings = field(default_factory=MLIPSettings)
    slab_spec: SlabSpec = field(default_factory=SlabSpec)
    n_random: int = DEFAULT_RANDOM
    max_placements: int | None = None
    seed: int = DEFAULT_SEED
    reference: ReferenceScheme = ReferenceScheme.GAS_MOLECULES

    def makers(self) -> list[SurfaceAdsorptionMaker]:
        millers = [parse_facet(f) for f in self.facets]
        return [
            SurfaceAdsorptionMaker(
                miller_indices=millers, adsorbates=list(self.adsorbates), mlip=self.mlip,
                slab_spec=self.slab_spec, n_random=self.n_random,
                max_placements=self.max_placements, seed=self.seed,
                reference=ReferenceScheme(self.reference),
            )
            for _ in self.bulks
        ]

    def make(self) -> Flow:
        """The campaign's Flow; every input is checked first (nothing runs here)."""
        makers = self.makers()
        checked = [maker.check(bulk) for maker, bulk in zip(makers, self.bulks)]
        formulas = sorted({a.formula for _, ads, _ in checked for a in ads})
        gas_jobs, gas_docs = gas_reference_jobs(formulas, ReferenceScheme(self.reference),
                                                self.mlip)
        flows = [maker.make(bulk, gas_docs) for maker, bulk in zip(makers, self.bulks)]
        outputs = [ref for f in flows for ref in f.output]
        facets, adsorbates = " ".join(self.facets), " ".join(self.adsorbates)
        name = f"screen {'+'.join(self.bulks)} ({facets}) {adsorbates}"
        return Flow(gas_jobs + flows, output=outputs, name=name)
