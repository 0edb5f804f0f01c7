"""``omni-flows model list | info NAME``."""

import json

import typer
from rich.console import Console
from rich.table import Table

from omni_flows.output import print_table

app = typer.Typer(help="Pretrained and local MLIP models.", no_args_is_help=True)


@app.command("list")
def list_models() -> None:
    """Pretrained models installed on this machine (resolved offline)."""
    from omni_flows.model.pretrained import available_models

    table = Table()
    table.add_column("name", no_wrap=True)
    table.add_column("aliases", no_wrap=True)
    table.add_column("description", overflow="fold")
    for m in available_models():
        table.add_row(m.name, ",".join(m.aliases), m.description)
    print_table(Console(), table)


@app.command("info")
def info(
    name: str = typer.Argument(..., help="pretrained name or checkpoint path"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Architecture, tasks, elements, parameter counts and checkpoint hash of a model."""
    from omni_flows.model.checkpoint import read_metadata
    from omni_flows.model.committee import public_tasks
    from omni_flows.model.pretrained import available_models, load_model, model_card, resolve

    path = resolve(name)
    model = load_model(path)
    groups = model.parameter_groups()
    cfg = model.config
    pretrained = {m.name: m.name for m in available_models()}
    pretrained.update({a: m.name for m in available_models() for a in m.aliases})
    data = {
        # a packaged model by its registered name; a file by its config's name
        "name": pretrained.get(name, cfg.name or name),
        "architecture": cfg.name,
        "checkpoint": str(path),
        "checkpoint_hash": read_metadata(path)["content_hash"],
        "tasks": public_tasks(cfg.tasks),  # committee members are rows of their task
        "committees": cfg.committees,  # task -> members and calibration scale (docs/uncertainty.md)
        "task_elements": cfg.task_elements,  # task -> the elements of its training data
        "elements": cfg.species,
        "cutoff": cfg.cutoff,
        "num_interactions": cfg.num_interactions,
        "lmax_edge": cfg.lmax_edge,
        "parity": cfg.edge_parity,
        "node_irreps": cfg.node_irreps,
        "self_connection": cfg.self_connection,
        "parameters": {
            "universal": sum(p.numel() for p in groups["universal"]),
            "task_specific": sum(p.numel() for p in groups["task_specific"]),
        },
    }
    card = model_card(name)  # packaged models ship a model card (data, recipe, metrics, use)
    if card is not None:
        data["model_card"] = card
    if as_json:
        print(json.dumps(data))
        return
    table = Table(show_header=False)
    table.add_column("property", no_wrap=True)
    table.add_column("value", no_wrap=True)  # hashes and paths are copied: whole, or as records
    for key, value in data.items():
        if key == "model_card":
            continue
        if key == "elements":
            value = f"{len(value)}: {' '.join(value)}"
        table.add_row(key, str(value))
    print_table(Console(), table)
    if card is not None:
        from rich.markdown import Markdown

        Console().print(Markdown(card))
