"""A surface screening campaign: the screen's Maker bound to its bulks, facets as text.

:class:`~.surface_flow.SurfaceAdsorptionMaker` takes all bulks and plans the screen
once; this alias keeps the campaign's spelling (``bulks``, ``facets``) for the
command line and for code written against it.
"""

import re
from dataclasses import dataclass, field

from jobflow import Flow

from ..errors import FacetError
from .surface_flow import SurfaceAdsorptionMaker, SurfacePlan


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
class SurfaceCampaign(SurfaceAdsorptionMaker):
    """A :class:`SurfaceAdsorptionMaker` bound to its bulks, facets written as on the
    command line: ``make()`` and ``select(docs)`` need no argument. Nothing of its own
    but the bulks; the Maker decides and checks the rest.

    ``settings_id`` names the screen's settings (model, relaxation, slab, placements,
    reference): its documents carry it, its table is read back by it and its files are
    named after it.
    """

    bulks: list = field(default_factory=list)
    facets: list[str] | None = None  # '111', '1-10', '2,1,1'; None: ``miller_indices``

    def __post_init__(self) -> None:
        if self.facets is not None:
            self.miller_indices = [parse_facet(f) for f in self.facets]
        super().__post_init__()

    def plan(self, bulks=None) -> SurfacePlan:
        return super().plan(self.bulks if bulks is None else bulks)

    def make(self, bulks=None) -> Flow:
        return super().make(self.bulks if bulks is None else bulks)

    def systems(self) -> dict:
        """What the campaign's table holds (:meth:`SurfacePlan.systems`)."""
        return self.plan().systems()

    def select(self, docs: list[dict], plan: SurfacePlan | None = None) -> list[dict]:
        """The campaign's documents among ``docs`` (of its settings id)."""
        return (plan or self.plan()).select(docs, self.settings_id)
