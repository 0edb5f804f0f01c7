"""The training loop: one optimisation step, evaluation, logging, exact checkpoints.

A global batch is drawn by the sampler on every rank identically; rank r takes
items r, r + world, ... of it. Loss terms are divided by the all-rank label
counts and multiplied by the world size, so DDP's gradient average equals the
single-process gradient of the whole batch. The regularization term is the same
on every rank and added once.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from ase.data import chemical_symbols
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint import read_metadata, save_checkpoint
from ..config import ModelConfig
from ..inference import keep_freed_memory, resolve_device
from ..network import OmniNet
from ..pretrained import resolve
from . import distributed as dist
from .batch import Item, collate, species_lookup
from .config import TrainConfig, TrainingConfigError
from .ema import EMA
from .graph_cache import GraphStore, open_dataset
from .loss import TaskMetrics, data_loss, differences, label_counts
from .model_setup import build_model, new_model_config, use_statistics
from .optim import build_optimizer, build_scheduler
from .regularization import regularized_parameters, selective_l2
from .sampler import MixedSampler
from .statistics import compute_statistics, residual_shifts

STATE_FILE, MODEL_FILE, EPOCH_LOG, STEP_LOG = (
    "state.pt",
    "model.safetensors",
    "log.csv",
    "steps.csv",
)


def _base_model_config(cfg: TrainConfig) -> ModelConfig:
    """Cut-off and tasks are needed before the model exists (graphs, statistics)."""
    if cfg.model.config is not None:
        base = new_model_config(cfg.model.config)
    else:
        base = ModelConfig.from_dict(
            json.loads(read_metadata(resolve(cfg.model.checkpoint))["config"])
        )
    base.tasks = list(base.tasks) + [e["name"] for e in cfg.model.append_tasks if "name" in e]
    return base


SINGLE_TASK = "default"  # the task name data sets use with a single-task model


def model_tasks(cfg: TrainConfig) -> list[str]:
    """The tasks data sets may name: the model's (appended ones included), read from the
    checkpoint's metadata or the new model's config, before any data is read."""
    return _base_model_config(cfg).tasks or [SINGLE_TASK]


class Trainer:
    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
        dist.init_from_env(self.device)
        if self.device.type == "cpu":
            # per-step tensors of several MB: without this every step pays page faults on
            # fresh mmaps (measured 4.6x slower steps on 2 cores, benchmarks/bench_train.py)
            keep_freed_memory()
            if cfg.threads:
                torch.set_num_threads(cfg.threads)
        self.rank, self.world = dist.rank(), dist.world_size()
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.out = Path(cfg.output_dir)
        base = _base_model_config(cfg)
        self.tasks = base.tasks or [SINGLE_TASK]
        self.lookup = species_lookup(base.species)
        self.sources = self._open(cfg.data.train + cfg.data.dbs + cfg.data.valid, base.cutoff)
        n_train, n_dbs = len(cfg.data.train), len(cfg.data.dbs)
        items = [
            [Item(s, k) for k in range(len(self.sources[s][0]))] for s in range(len(self.sources))
        ]
        train = [i for s in range(n_train) for i in items[s]]
        dbs = [i for s in range(n_train, n_train + n_dbs) for i in items[s]]
        self.valid = [i for s in range(n_train + n_dbs, len(items)) for i in items[s]]
        group = None
        if cfg.data.group_energy_only:

            def group(item: Item) -> int:  # 0: energy-only data set, 1: with forces
                return int(self.sources[item.source][0].spec.force_weight != 0)

        self.sampler = MixedSampler(
            train, dbs, cfg.data.dbs_fraction, cfg.data.batch_size, cfg.seed, group
        )

        state = (
            torch.load(cfg.resume, map_location="cpu", weights_only=True) if cfg.resume else None
        )
        if state is None:
            self.model, self.statistics = build_model(cfg.model, self.dtype, self._statistics)
            if cfg.model.checkpoint is not None and use_statistics(cfg.model):
                self.model.to(self.device)
                self._refit_new_task_shifts([e["name"] for e in cfg.model.append_tasks])
            self._record_task_elements(n_train)
        else:  # the saved architecture (statistics included) is the one to continue
            self.model = OmniNet(ModelConfig.from_dict(json.loads(state["model_config"]))).to(
                self.dtype
            )
            self.model.load_state_dict(state["model"])
            if cfg.model.freeze_universal:
                for p in self.model.parameter_groups()["universal"]:
                    p.requires_grad_(False)
            self.statistics = None
        self.model.to(self.device).train()
        self.ddp = DistributedDataParallel(self.model) if self.world > 1 else self.model
        self.reg_params = (
            regularized_parameters(self.model, cfg.regularization.groups)
            if cfg.regularization.weight
            else {}
        )
        names = cfg.regularization.tasks
        unknown = sorted(set(names or []) - set(self.model.config.tasks or []))
        if unknown:
            raise TrainingConfigError(
                f"regularization.tasks {unknown} are not tasks of the model: "
                f"{self.model.config.tasks}"
            )
        self.reg_rows = [self.model.task_index(n) for n in names] if names is not None else None
        self.optimizer = build_optimizer(self.model.parameter_groups(), cfg.optim)
        total = cfg.epochs * self.sampler.batches_per_epoch
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, self.total_steps)
        self.ema = EMA(self.model, cfg.optim.ema_decay) if cfg.optim.ema_decay else None
        self.step = 0
        self.train_metrics = TaskMetrics(self.tasks)
        if state is not None:
            self._load_state(state)

    # ----- data --------------------------------------------------------------
    def _open(self, specs, cutoff) -> list[tuple[GraphStore, int]]:
        for spec in specs:
            if spec.source != "file":
                raise TrainingConfigError(
                    f"data set of MongoDB collection {spec.collection!r} was not exported: "
                    "run omni_flows.training_data.export_mongodb_datasets on the config first "
                    "(`omni-flows train` does)"
                )
            if spec.task not in self.tasks:
                raise TrainingConfigError(
                    f"data set {spec.path}: task {spec.task!r} is not one of {self.tasks}"
                )
        cache = self.cfg.data.cache_dir
        if self.rank == 0:  # rank 0 builds missing caches; the others then only open them
            stores = [open_dataset(s, cutoff, cache) for s in specs]
        dist.barrier()
        if self.rank != 0:
            stores = [open_dataset(s, cutoff, cache, build=False) for s in specs]
        return [(store, self.tasks.index(spec.task)) for store, spec in zip(stores, specs)]

    def _record_task_elements(self, n_train: int) -> None:
        """Each task's training elements go into the checkpoint (``config.task_elements``),
        so that a screen can say when a result lies outside them (``out_of_domain``)."""
        for store, task in self.sources[:n_train]:
            numbers = np.unique(store.arrays["numbers"])
            self.model.record_task_elements(self.tasks[task], [chemical_symbols[z] for z in numbers])

    def _statistics(self, config: ModelConfig):
        n_train = len(self.cfg.data.train)
        stores, tasks = zip(*self.sources[:n_train])
        return compute_statistics(
            list(stores), list(tasks), len(self.tasks), self.lookup, config.num_species
        )

    @torch.no_grad()
    def _refit_new_task_shifts(self, tasks: list[str]) -> None:
        """Shifts of appended tasks += least squares of the residual E_ref - E_model per element,
        so that fine-tuning starts without a constant energy offset between functionals."""
        for name in tasks:
            t = self.model.task_index(name)
            items = [i for i in self.sampler.train if self.sources[i.source][1] == t][
                self.rank :: self.world
            ]
            rows = []
            for start in range(0, len(items), self.cfg.data.batch_size):
                graph, labels = self.make_batch(items[start : start + self.cfg.data.batch_size])
                with torch.enable_grad():
                    energy = self.model.eval()(graph, compute_forces=False)["energy"]
                counts = torch.zeros(
                    graph.num_graphs, self.model.config.num_species, dtype=torch.float64
                )
                counts.index_put_(
                    (graph.batch.cpu(), graph.species.cpu()),
                    torch.ones(len(graph.batch), dtype=torch.float64),
                    accumulate=True,
                )
                for g in range(graph.num_graphs):
                    if labels.energy_mask[g]:
                        rows.append((counts[g].numpy(), float(labels.energy[g]), float(energy[g])))
            delta = residual_shifts(rows, self.model.config.num_species)
            self.model.energy_shift[t] += delta.to(self.model.energy_shift)
        self.model.train()

    def make_batch(self, items: list[Item]):
        frames, tasks, weights = [], [], []
        for it in items:
            store, task = self.sources[it.source]
            frames.append(store[it.index])
            tasks.append(task)
            s = store.spec
            weights.append((s.energy_weight, s.force_weight, s.stress_weight))
        graph, labels = collate(
            frames, tasks, weights, self.lookup, self.cfg.data.free_atoms_only, self.dtype
        )
        return graph.to(self.device), labels.to(self.device)

    # ----- one step ----------------------------------------------------------
    def regularization(self) -> torch.Tensor | None:
        return selective_l2(self.reg_params, self.cfg.regularization.weight, self.reg_rows)

    def loss_and_backward(self, items: list[Item]) -> dict[str, float]:
        """Gradients of the loss of the global batch ``items`` (this rank's share of it)."""
        graph, labels = self.make_batch(items[self.rank :: self.world])
        counts = dist.all_sum(label_counts(labels).to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        # a batch without force or stress labels needs no second-order backward pass
        forces = bool(counts[1] > 0 or counts[2] > 0)
        out = self.ddp(graph, compute_forces=forces, compute_stress=bool(counts[2] > 0))
        diffs = differences(out, graph, labels, self.cfg.loss.energy_per_atom)
        data, terms = data_loss(diffs, counts, self.cfg.loss)
        reg = self.regularization()
        loss = data * self.world + (reg if reg is not None else 0.0)
        loss.backward()
        self.train_metrics.add(diffs)
        names = ["energy", "force", "stress"]
        parts = dist.all_sum(
            torch.stack(
                [data.detach().double()]
                + [terms.get(n, torch.zeros((), device=data.device)).double() for n in names]
            )
        )
        info = {
            "data_loss": float(parts[0]),
            **{f"{n}_loss": float(v) for n, v in zip(names, parts[1:])},
        }
        info["reg"] = float(reg.detach()) if reg is not None else 0.0
        info["loss"] = info["data_loss"] + info["reg"]
        return info

    def train_step(self, items: list[Item]) -> dict[str, float]:
        info = self.loss_and_backward(items)
        if self.cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], self.cfg.optim.grad_clip
            )
        info["lr"] = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        return info

    def next_step(self) -> dict[str, float] | None:
        """Draw the next batch and train on it; None at the end of an epoch."""
        items = self.sampler.next_batch()
        if items is None or len(items) < self.world:  # too few for every rank: the epoch is over
            return None
        return self.train_step(items)

    # ----- evaluation --------------------------------------------------------
    def evaluate(self, items: list[Item] | None = None, batch_size: int | None = None) -> dict:
        """Per-task metrics of the EMA weights on ``items`` (default: the validation sets)."""
        items = self.valid if items is None else items
        metrics = TaskMetrics(self.tasks)
        bs = (batch_size or self.cfg.data.batch_size) * self.world
        context = self.ema.applied() if self.ema is not None else nullcontext(self.model)
        with context as model:
            model.eval()
            for start in range(0, len(items), bs):
                local = items[start : start + bs][self.rank :: self.world]
                if not local:
                    continue
                graph, labels = self.make_batch(local)
                stress = bool(labels.stress_mask.any())
                out = model(
                    graph, compute_forces=bool(labels.force_mask.any()) or stress,
                    compute_stress=stress,
                )
                metrics.add(differences({k: v.detach() for k, v in out.items()}, graph, labels))
            model.train()
        dist.all_sum(metrics.sums)
        return metrics.summary()

    # ----- the loop ----------------------------------------------------------
    def fit(self, progress: Callable[[int], object] | None = None) -> dict:
        """Train to ``epochs`` (or ``max_steps``); returns the last epoch's row of the log."""
        bar = progress(self.total_steps) if (progress and self.rank == 0) else None
        if bar is not None:
            bar.update(self.step)
        row = {}
        while self.sampler.epoch < self.cfg.epochs and not self._done():
            info = self.next_step()
            if info is not None:
                self._log_step(info)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{info['loss']:.4g}", lr=f"{info['lr']:.2e}")
                if not self._done():
                    continue
            row = self._end_epoch()
        if bar is not None:
            bar.close()
        return row

    def _done(self) -> bool:
        return self.cfg.max_steps is not None and self.step >= self.cfg.max_steps

    def _end_epoch(self) -> dict:
        dist.all_sum(self.train_metrics.sums)
        row = {
            "epoch": self.sampler.epoch + 1,
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        for prefix, summary in (
            ("train", self.train_metrics.summary()),
            ("valid", self.evaluate()),
        ):
            for task, values in summary.items():
                row.update({f"{prefix}_{task}_{k}": v for k, v in values.items()})
        self.train_metrics = TaskMetrics(self.tasks)
        self.sampler.new_epoch()
        if self.rank == 0:
            _append_csv(self.out / EPOCH_LOG, row)
            if (
                self.sampler.epoch % self.cfg.checkpoint_every == 0
                or self._done()
                or self.sampler.epoch >= self.cfg.epochs
            ):
                self.save()
        return row

    def _log_step(self, info: dict) -> None:
        if self.rank == 0:
            _append_csv(
                self.out / STEP_LOG, {"step": self.step, "epoch": self.sampler.epoch + 1, **info}
            )

    # ----- checkpoints -------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model_config": self.model.config.to_json(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "sampler": self.sampler.state_dict(),
            "step": self.step,
            "train_metrics": self.train_metrics.sums,
            "torch_rng": torch.get_rng_state(),
            "python_rng": list(random.getstate()[1]),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def _load_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        self.sampler.load_state_dict(state["sampler"])
        self.step = state["step"]
        self.train_metrics.sums = state["train_metrics"].clone()
        torch.set_rng_state(state["torch_rng"])
        random.setstate((3, tuple(state["python_rng"]), None))
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def save(self, folder: str | Path | None = None) -> Path:
        """Write ``state.pt`` (everything needed to resume exactly) and ``model.safetensors``
        (the EMA weights as a native checkpoint, loadable with ``load_model``)."""
        folder = Path(folder or self.out)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{STATE_FILE}.partial"
        torch.save(self.state_dict(), tmp)
        tmp.replace(folder / STATE_FILE)
        context = self.ema.applied() if self.ema is not None else nullcontext(self.model)
        with context as model:
            save_checkpoint(
                model,
                folder / MODEL_FILE,
                extra={"step": self.step, "epoch": self.sampler.epoch, "ema": self.ema is not None},
            )
        return folder / STATE_FILE


def _append_csv(path: Path, row: dict) -> None:
    """Append a row; the header is the first row's keys (later extra keys are dropped)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    if new:
        fields = list(row)
    else:
        with open(path, newline="") as f:
            fields = next(csv.reader(f))
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore", restval="")
        if new:
            w.writeheader()
        w.writerow(row)
