"""A MOF screening campaign: the screen's Maker bound to its CIF files.

:class:`~.mof_flow.MOFAdsorptionMaker` takes all frameworks of a screen (every CIF,
guest, the D3 package and the model checked before the Flow exists; the isolated
guests relaxed once for all frameworks); this alias keeps the campaign's spelling
(``cifs``) for the command line and for code written against it.
"""

from dataclasses import dataclass, field
from pathlib import Path

from jobflow import Flow

from .mof_flow import MOFAdsorptionMaker


@dataclass
class MOFCampaign(MOFAdsorptionMaker):
    """A :class:`MOFAdsorptionMaker` bound to its CIF files: ``make()`` needs no argument."""

    cifs: list[str | Path] = field(default_factory=list)

    def maker(self) -> MOFAdsorptionMaker:
        """The Maker itself (kept for code written when the campaign held one)."""
        return self

    def make(self, frameworks=None, framework_id: str | None = None,
             gas_docs: dict | None = None) -> Flow:
        return super().make(list(self.cifs) if frameworks is None else frameworks,
                            framework_id, gas_docs)
