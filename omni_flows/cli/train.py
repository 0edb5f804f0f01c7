"""``omni-flows train config.yaml``: multi-domain training or fine-tuning from a YAML file.

Reads and checks the configuration (``omni_flows.training``, docs/training.md), exports the data
sets that come from the MongoDB store (``omni_flows.training_data``), trains with a
progress bar, and leaves in ``output_dir``: ``state.pt`` (exact resume),
``model.safetensors`` (EMA weights, loadable with ``load_model``), ``log.csv``
(per-epoch, per-task metrics), ``steps.csv`` and ``loss_curve.png``.
For several processes: ``torchrun --nproc_per_node N -m omni_flows.cli.train config.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def train(
    config: Path = typer.Argument(..., help="YAML training configuration (see docs/training.md)"),
    resume: Path | None = typer.Option(None, help="state.pt of an earlier run to continue exactly"),
    max_steps: int | None = typer.Option(None, help="stop after this many optimisation steps"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Train or fine-tune a multi-task model from a YAML configuration."""
    from omni_flows.model.train import Trainer
    from omni_flows.model.train import distributed as dist
    from omni_flows.training import plot_loss_curve, prepare

    cfg = prepare(config, resume, max_steps)
    bar = None
    if progress and cfg.progress:
        from tqdm import tqdm

        def bar(total):
            return tqdm(total=total, desc="training", unit="step", dynamic_ncols=True)

    row = Trainer(cfg).fit(progress=bar)
    if dist.rank() == 0:
        plot = plot_loss_curve(Path(cfg.output_dir))
        console = Console()
        for key, value in row.items():
            if key.startswith(("valid_", "train_")):
                console.print(f"{key:>45s}  {value:.4g}")
        console.print(f"model: {Path(cfg.output_dir) / 'model.safetensors'}  plot: {plot}")


if __name__ == "__main__":  # torchrun -m omni_flows.cli.train config.yaml
    from omni_flows.cli import run

    run(lambda: typer.run(train), model_command=True)
