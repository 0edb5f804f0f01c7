"""OmniNet: a multi-task E(3)-equivariant NequIP-type interatomic potential.

Per interaction: self-connection (element-dependent or linear) + linear ->
convolution -> linear, summed, then a gated non-linearity. A task one-hot
(functional / data domain) enters the configured linear layers as extra scalar
inputs, and every task has its own per-element energy shift and, optionally, its
own low-rank adapters on the interactions' linear layers (``ModelConfig.adapter_rank``). Energy is the sum
of per-atom energies; forces, stress and virials come from the gradient of the
energy with respect to the edge vectors.
"""

from __future__ import annotations

import functools

import torch
from e3nn import o3
from e3nn.o3 import Irreps
from torch import nn
from torch.utils.checkpoint import checkpoint

from .committee import (Committee, committees_of, find_committee, is_member, member_name,
                        public_tasks)
from .config import ModelConfig
from .convolution import Convolution, NeighborSlots
from .gate import Gate
from .graph import AtomGraph
from .linear import ElementLinear, EquivariantLinear, NodeGroups
from .radial import BesselBasis, PolynomialEnvelope, XPLOREnvelope


@functools.cache
def set_up_vector_math() -> None:
    """Make the process's first call to MKL's vector math (VML) a serial one.

    PyTorch's x86 CPU wheels compute sin, exp and other element-wise functions with
    MKL VML, which sets itself up on first use. When that first use is threaded, a
    worker thread can race the set-up and run an inaccurate kernel on its share of
    the tensor. On 2 threads, about 1 fresh process in 10 had radial-basis errors of
    1.5e-4 in the model's first call (a 38-atom slab's energy off by 1.5 meV, its
    forces by 5.5e-4 eV/A); later calls were accurate. One serial call settles the set-up:
    0 faults in 100 processes, against 11 without it.
    """
    torch.sin(torch.zeros(1))


class Interaction(nn.Module):
    def __init__(self, cfg: ModelConfig, t: int, irreps_sh: Irreps) -> None:
        super().__init__()
        irreps_x, irreps_out = Irreps(cfg.node_irreps[t]), Irreps(cfg.node_irreps[t + 1])
        last = t == cfg.num_interactions - 1
        self.gate = Gate(irreps_out, cfg.scalar_activation, cfg.gate_activation)
        gate_in = self.gate.irreps_in
        if cfg.self_connection[t] == "element":
            self.self_connection = ElementLinear(irreps_x, gate_in, cfg.num_species)
        else:
            self.self_connection = EquivariantLinear(irreps_x, gate_in)
        tasks = dict(num_tasks=cfg.num_tasks)
        self.linear_1 = EquivariantLinear(
            irreps_x, irreps_x, task_norm_width=cfg.task_width("self_interaction_1"), **tasks
        )
        keep = {str(ir) for _, ir in gate_in if ir.l <= irreps_out.lmax and not (last and ir.p == -1)}
        self.convolution = Convolution(
            irreps_x, irreps_sh, keep,
            [cfg.num_radial_basis] + list(cfg.radial_mlp_hidden), cfg.radial_activation,
            cfg.avg_num_neighbors[t],
        )
        self.linear_2 = EquivariantLinear(
            self.convolution.irreps_out, gate_in,
            task_norm_width=cfg.task_width("self_interaction_2"), **tasks,
        )
        if cfg.has_adapters(t):
            self.add_adapters(cfg.num_tasks, cfg.adapter_rank)

    def add_adapters(self, num_tasks: int, rank: int) -> None:
        self.linear_1.add_adapters(num_tasks, rank)
        self.linear_2.add_adapters(num_tasks, rank)

    def forward(self, x, sh, radial, slots, node_task, groups, task_groups=None):
        if isinstance(self.self_connection, ElementLinear):
            skip = self.self_connection(x, groups)
        else:
            skip = self.self_connection(x)
        h = self.linear_1(x, node_task, task_groups)
        h = self.convolution(h, sh, radial, slots)
        h = self.linear_2(h, node_task, task_groups)
        return self.gate({ir: h[ir] + skip[ir] for ir in h})


class OmniNet(nn.Module):
    # Graphs above this many atoms recompute each interaction block in the backward pass
    # instead of keeping its activations: ~3x less memory for ~1.3x the time, so that
    # 10^4-atom cells fit (see benchmarks/bench_memory.py). None: never.
    checkpoint_atoms: int | None = 4096

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        cfg = self.config = config
        self.radial_basis = BesselBasis(cfg.cutoff, cfg.num_radial_basis, cfg.trainable_radial_frequencies)
        if cfg.envelope == "xplor":
            self.envelope = XPLOREnvelope(cfg.cutoff, cfg.envelope_r_on)
        else:
            self.envelope = PolynomialEnvelope(cfg.cutoff, cfg.envelope_p)
        self.irreps_sh = Irreps.spherical_harmonics(cfg.lmax_edge, -1 if cfg.edge_parity else 1)
        tasks = dict(num_tasks=cfg.num_tasks)
        self.embedding = EquivariantLinear(
            f"{cfg.num_species}x0e", cfg.node_irreps[0],
            task_norm_width=cfg.task_width("node_embedding"), **tasks,
        )
        self.interactions = nn.ModuleList(
            Interaction(cfg, t, self.irreps_sh) for t in range(cfg.num_interactions)
        )
        self.readout_hidden = EquivariantLinear(
            cfg.node_irreps[-1], f"{cfg.readout_hidden}x0e",
            task_norm_width=cfg.task_width("readout"), **tasks,
        )
        self.readout_energy = EquivariantLinear(f"{cfg.readout_hidden}x0e", "1x0e")
        rows = max(cfg.num_tasks, 1)
        self.energy_shift = nn.Parameter(torch.zeros(rows, cfg.num_species))
        self.energy_scale = nn.Parameter(torch.ones(rows if cfg.per_task_scale else 1, cfg.num_species))

    # ----- tasks -------------------------------------------------------------
    def task_index(self, task: str | None) -> int:
        from .errors import UnknownTaskError

        tasks = self.config.tasks
        if not tasks:
            if task not in (None, "", "default"):
                raise UnknownTaskError(
                    f"model {self.config.name or ''} is single-task; do not pass task={task!r}"
                )
            return 0
        if task is None:
            raise UnknownTaskError(
                f"model {self.config.name} has several tasks {public_tasks(tasks)}: "
                "choose one with task=..."
            )
        if task not in tasks:
            raise UnknownTaskError(
                f"unknown task {task!r}; model {self.config.name} has tasks {public_tasks(tasks)}"
            )
        return tasks.index(task)

    def task_specific_parameters(self) -> dict[str, nn.Parameter]:
        """Named parameters that belong to one task each (rows indexed by task)."""
        if not self.config.tasks:
            return {}
        named = dict(self.named_parameters())
        out = {n: p for n, p in named.items() if n.endswith("task_weight") or ".adapter_" in n}
        out["energy_shift"] = self.energy_shift
        if self.config.per_task_scale:
            out["energy_scale"] = self.energy_scale
        return out

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``{"universal": [...], "task_specific": [...]}``: shared by all tasks, or per task."""
        task_ids = {id(p) for p in self.task_specific_parameters().values()}
        params = list(self.parameters())
        return {
            "universal": [p for p in params if id(p) not in task_ids],
            "task_specific": [p for p in params if id(p) in task_ids],
        }

    @torch.no_grad()
    def add_adapters(self, rank: int, layers: list[int] | None = None) -> None:
        """Give every task adapters of ``rank`` on the interactions ``layers`` (None: all),
        B = 0: every task predicts exactly what it predicted before. A model that already
        has these adapters is left as it is."""
        from .errors import CheckpointError

        cfg = self.config
        if cfg.adapter_rank:
            if (cfg.adapter_rank, cfg.adapter_layers) == (rank, layers):
                return
            raise CheckpointError(
                f"model {cfg.name} already has task adapters of rank {cfg.adapter_rank} on "
                f"layers {cfg.adapter_layers or 'all'}; adapters cannot be changed, only trained"
            )
        cfg.check_adapters(rank, layers)
        cfg.adapter_rank, cfg.adapter_layers = rank, layers
        for t, block in enumerate(self.interactions):
            if cfg.has_adapters(t):
                block.add_adapters(cfg.num_tasks, rank)

    @torch.no_grad()
    def append_task(self, name: str, copy_from: str | None = None) -> None:
        """Add a task. Copied from ``copy_from`` (zero difference: it predicts exactly
        what that task predicts; its adapters are copied too) or, with ``None``, zero task
        weights and shifts and fresh adapters (random A, zero B)."""
        from .errors import UnknownTaskError

        cfg = self.config
        if not cfg.tasks:
            raise UnknownTaskError("a single-task model has no task inputs; build a multi-task model")
        if name in cfg.tasks:
            raise UnknownTaskError(f"task {name!r} already exists in {cfg.tasks}")
        src = self.task_index(copy_from) if copy_from is not None else None
        for module in self.modules():
            if isinstance(module, EquivariantLinear) and module.task_weight is not None:
                module.task_weight = nn.Parameter(self._grow(module.task_weight, src))
            if isinstance(module, EquivariantLinear):
                for ir in list(module.adapter_up):
                    down, up = module.adapter_down[ir], module.adapter_up[ir]
                    if src is None:
                        fresh = torch.randn_like(down[:1]) / down.shape[-1] ** 0.5
                        module.adapter_down[ir] = nn.Parameter(torch.cat([down.detach(), fresh]))
                    else:
                        module.adapter_down[ir] = nn.Parameter(self._grow(down, src))
                    module.adapter_up[ir] = nn.Parameter(self._grow(up, src))
        self.energy_shift = nn.Parameter(self._grow(self.energy_shift, src))
        if cfg.per_task_scale:
            self.energy_scale = nn.Parameter(self._grow(self.energy_scale, src, fill=1.0))
        cfg.tasks.append(name)

    @torch.no_grad()
    def add_committee(self, task: str, size: int = 4) -> list[str]:
        """Append ``size`` members of ``task``'s committee (see :mod:`.committee`), copies of
        it: until trained (:mod:`.train.committee`) each predicts exactly what ``task`` does.
        Returns the members' task names."""
        from .errors import CheckpointError

        self.task_index(task)  # an unknown task fails here
        if is_member(task) or task in self.config.committees:
            raise CheckpointError(f"task {task!r} is a committee member or already has a committee")
        if not isinstance(size, int) or size < 2:
            raise CheckpointError(f"a committee needs at least 2 members, got {size!r}")
        members = [member_name(task, k) for k in range(1, size + 1)]
        for name in members:
            self.append_task(name, copy_from=task)
        self.config.committees[task] = {"members": members, "scale": 1.0}
        return members

    def set_committee_scale(self, task: str, scale: float) -> None:
        """Store the calibration factor of ``task``'s committee (``committee.fit_scale``)."""
        from .errors import CheckpointError

        self.committee(task)
        if not scale > 0:
            raise CheckpointError(f"a committee scale must be > 0, got {scale!r}")
        self.config.committees[task]["scale"] = float(scale)

    def record_task_elements(self, task: str, elements) -> None:
        """Add ``elements`` to those ``task`` was trained on (``config.task_elements``)."""
        from .errors import UnknownElementError

        self.task_index(task)
        unknown = sorted(set(elements) - set(self.config.species))
        if unknown:
            raise UnknownElementError(f"elements {unknown} are not known to this model")
        known = set(self.config.task_elements.get(task, ()))
        self.config.task_elements[task] = sorted(known | set(elements))

    def committee(self, task: str | None) -> Committee:
        """The committee of ``task``; raises :class:`UnknownTaskError` naming the tasks that
        have one."""
        return find_committee(committees_of(self.config.committees), task, self.config.name)

    @staticmethod
    def _grow(rows: torch.Tensor, src: int | None, fill: float = 0.0) -> torch.Tensor:
        new = rows[src : src + 1].clone() if src is not None else torch.full_like(rows[:1], fill)
        return torch.cat([rows.detach(), new])

    # ----- forward -----------------------------------------------------------
    def forward(
        self,
        graph: AtomGraph,
        compute_forces: bool = True,
        compute_stress: bool = False,
        compute_virials: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Energy (per graph), per-atom energies and, on request, forces, stress
        (per graph, 3x3, (1/V) dE/d(strain), eV/A^3) and per-atom virials (3x3)."""
        set_up_vector_math()
        need_grad = compute_forces or compute_stress or compute_virials
        vec = graph.edge_vectors()
        if need_grad:
            vec.requires_grad_(True)
        r = torch.linalg.norm(vec, dim=-1)
        radial = self.radial_basis(r) * self.envelope(r).unsqueeze(-1)
        sh = o3.spherical_harmonics(
            self.irreps_sh, vec, normalize=self.config.normalize_edge_sh, normalization="component"
        )

        species, batch = graph.species, graph.batch
        node_task = graph.task[batch]
        groups = NodeGroups(species)
        task_groups = NodeGroups(node_task) if self.config.adapter_rank else None
        onehot = nn.functional.one_hot(species, self.config.num_species).to(vec.dtype)
        x = self.embedding({"0e": onehot.unsqueeze(1)}, node_task)
        slots = NeighborSlots(graph.edge_index[0], graph.edge_index[1], graph.num_atoms_total)
        sh = slots.pad(sh)
        recompute = (need_grad and self.checkpoint_atoms is not None
                     and graph.num_atoms_total > self.checkpoint_atoms)
        for block in self.interactions:
            if recompute:
                x = checkpoint(block, x, sh, radial, slots, node_task, groups, task_groups,
                               use_reentrant=False)
            else:
                x = block(x, sh, radial, slots, node_task, groups, task_groups)
        h = self.readout_hidden(x, node_task)
        e = self.readout_energy(h)["0e"][:, 0, 0]
        scale_task = node_task if self.config.per_task_scale else torch.zeros_like(node_task)
        e = e * self.energy_scale[scale_task, species] + self.energy_shift[node_task, species]
        energy = e.new_zeros(graph.num_graphs).index_add_(0, batch, e)
        out = {"energy": energy, "energies": e}
        if not need_grad:
            return out

        (grad,) = torch.autograd.grad(energy.sum(), vec, create_graph=self.training)
        center, neighbor = graph.edge_index
        if compute_forces:
            forces = torch.zeros_like(graph.positions)
            forces.index_add_(0, center, grad).index_add_(0, neighbor, -grad)
            out["forces"] = forces
        if compute_stress or compute_virials:
            edge_virial = vec.unsqueeze(-1) * grad.unsqueeze(-2)  # r_a dE/dr_b
            if compute_stress:
                per_graph = edge_virial.new_zeros(graph.num_graphs, 3, 3)
                per_graph.index_add_(0, batch[center], edge_virial)
                per_graph = 0.5 * (per_graph + per_graph.transpose(1, 2))
                volume = graph.volume.clamp(min=1e-12).view(-1, 1, 1)
                out["stress"] = per_graph / volume
            if compute_virials:
                virials = edge_virial.new_zeros(graph.num_atoms_total, 3, 3)
                out["virials"] = -virials.index_add_(0, neighbor, edge_virial)
        return out
