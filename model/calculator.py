"""ASE calculator for OmniNet models."""

from __future__ import annotations

import torch
from ase.calculators.calculator import Calculator, all_changes

from .checkpoint import model_hash
from .committee import committee_energies
from .inference import evaluate, resolve_device
from .network import OmniNet
from .pretrained import load_model


class OmniCalculator(Calculator):
    """``OmniCalculator(model="7net-mf-0", task="PBE", device="auto")``.

    ``model`` is a pretrained name, a checkpoint path or an :class:`OmniNet`;
    ``backend`` picks the kernels (``"e3nn"``, ``"compile"``, ``"cueq"``; see ``backends``).
    A multi-task model needs a task (there is no silent default). Stress is
    given for structures with a cell of non-zero volume. ``committee=True`` adds
    ``results["committee_energies"]``, the energies of the task's committee members (eV).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "stresses"]

    def __init__(
        self,
        model: str | OmniNet = "7net-mf-0",
        task: str | None = None,
        device: str = "auto",
        dtype: torch.dtype = torch.float32,
        backend: str = "e3nn",
        committee: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.device = resolve_device(device)
        if isinstance(model, OmniNet):
            model = model.to(device=self.device, dtype=dtype).eval()
        self.model = load_model(model, device=self.device, dtype=dtype, backend=backend)
        self.model.task_index(task)  # unknown or missing task fails here, not mid-run
        self.task = task
        self.committee = committee
        if committee:  # K more energies per call, from one energy-only pass
            self.model.committee(task)  # no committee: fails here
            self.implemented_properties = [*self.implemented_properties, "committee_energies"]
        self.checkpoint_hash = getattr(self.model, "checkpoint_hash", None) or model_hash(self.model)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_virials = "stresses" in properties
        (r,) = evaluate(self.model, [self.atoms], self.task, stress=True, virials=want_virials)
        self.results = {"energy": r["energy"], "free_energy": r["energy"],
                        "energies": r["energies"], "forces": r["forces"]}
        for key in ("stress", "stresses"):
            if key in r:
                self.results[key] = r[key]
        if self.committee:
            self.results["committee_energies"] = committee_energies(
                self.model, [self.atoms], self.task)[0]
