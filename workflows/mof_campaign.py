"""A MOF screening campaign: several frameworks x guests as ONE jobflow Flow.

Every CIF, guest, the D3 package and the model are checked before the Flow
exists, so a bad input stops before any relaxation and leaves the store
untouched. The isolated guests are relaxed once for all frameworks.
"""

from dataclasses import dataclass, field
from pathlib import Path

from jobflow import Flow

from .errors import FrameworkError
from .mof_flow import MOFAdsorptionMaker
from .settings import MLIPSettings


@dataclass
class MOFCampaign:
    """What to screen and how (the CLI's options, validated once here)."""

    cifs: list[str | Path]
    guests: list[str] = field(default_factory=lambda: ["CO2", "H2O"])
    mlip: MLIPSettings = field(default_factory=MLIPSettings)
    n_placements: int = 3
    dispersion: bool = False
    seed: int = 0

    def maker(self) -> MOFAdsorptionMaker:
        return MOFAdsorptionMaker(guests=list(self.guests), n_placements=self.n_placements,
                                  dispersion=self.dispersion, seed=self.seed, mlip=self.mlip)

    def make(self) -> Flow:
        """The campaign's Flow; every input is checked first (nothing runs here)."""
        maker = self.maker()
        checked = [maker.check(cif) for cif in self.cifs]
        names = [name for name, _, _ in checked]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise FrameworkError(f"several CIF files are named {', '.join(twice)}: rename them, "
                                 "the file name is the framework's id")
        gas = maker.gas_jobs()
        gas_docs = {guest: j.output for guest, j in gas.items()}
        flows = [maker.make(structure, name, gas_docs) for name, structure, _ in checked]
        outputs = [ref for f in flows for ref in f.output]
        return Flow([*gas.values(), *flows], output=outputs,
                    name=f"screen {'+'.join(names)} {' '.join(self.guests)}",
                    metadata={"settings_id": maker.settings_id})
