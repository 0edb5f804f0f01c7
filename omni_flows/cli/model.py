"""``omni-flows model list | info NAME``."""

import json

import typer
from rich.console import Console
from rich.table import Table

from omni_flows.output import print_properties, print_table

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
    from rich.markdown import Markdown

    from omni_flows.model.pretrained import model_info

    data = model_info(name)
    if as_json:
        print(json.dumps(data))
        return
    card = data.pop("model_card", None)
    elements = data["elements"]
    print_properties(Console(), {**data, "elements": f"{len(elements)}: {' '.join(elements)}"})
    if card is not None:
        Console().print(Markdown(card))
