"""Optimisers (Adam, AdamW) and learning-rate schedules (OneCycle, cosine with warm-up)."""

from __future__ import annotations

import math

import torch

from .config import OptimConfig


def build_optimizer(groups: dict[str, list], cfg: OptimConfig) -> torch.optim.Optimizer:
    """``groups``: the model's ``parameter_groups()``. The universal parameters learn at
    ``lr * universal_lr_ratio``: a fine-tune that moves them less moves the pretrained
    tasks, which share them, less."""
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    lr = {"universal": cfg.lr * cfg.universal_lr_ratio, "task_specific": cfg.lr}
    param_groups = [
        {"params": [p for p in params if p.requires_grad], "lr": lr[name]}
        for name, params in groups.items()
    ]
    return kind([g for g in param_groups if g["params"]], weight_decay=cfg.weight_decay)


def build_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int):
    total_steps = max(total_steps, 1)
    if cfg.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=[g["lr"] for g in opt.param_groups],
            total_steps=total_steps,
            pct_start=max(cfg.warmup_fraction, 1e-3),
            final_div_factor=1.0 / max(cfg.min_lr_ratio, 1e-12) / 25.0,
        )
    if cfg.scheduler == "cosine":
        warm = max(1, int(cfg.warmup_fraction * total_steps))

        def factor(step: int) -> float:  # linear warm-up, then cosine down to min_lr_ratio
            if step < warm:
                return (step + 1) / warm
            x = min(1.0, (step - warm) / max(1, total_steps - warm))
            return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * x))

        return torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return None
