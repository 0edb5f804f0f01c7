"""``omni-flows query COLLECTION [TERMS...]``: stored results as a table, CSV or JSON."""

import json
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console

from omni_flows.results import QUERY_LIMIT


class OutputFormat(str, Enum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def query(
    collection: str = typer.Argument(..., help="e.g. adsorption_best, slabs, calculations"),
    terms: list[str] = typer.Argument(
        None, help="FIELD OP VALUE, OP one of = != < <= > >= ~ (regex); e.g. 'adsorption_energy<0'"
    ),
    filter_json: str = typer.Option(None, "--filter", "-f", help="a MongoDB filter as JSON"),
    fields: str = typer.Option(None, "--fields", help="comma-separated columns (dotted paths)"),
    sort: str = typer.Option(None, "--sort", help="field to sort by; '-field' for descending"),
    limit: int = typer.Option(None, "--limit", "-n",
                              help=f"at most this many (default: {QUERY_LIMIT}); 0 for all"),
    fmt: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", help="table, csv or json"),
    output: Path = typer.Option(None, "--output", "-o", help="write to this file"),
) -> None:
    """Query stored results (terms and --filter combine with AND)."""
    from omni_flows import output as out
    from omni_flows.results import find_documents

    if output is not None:
        out.check_output_file(output, "--output")
    found = find_documents(collection, terms, filter_json, fields, sort, limit)
    docs, columns = found.docs, found.columns
    if fmt is OutputFormat.TABLE:
        table = out.documents_table(docs, columns, f"{collection}: {len(docs)} documents")
        if output is None:
            out.print_table(Console(), table)
        else:
            with output.open("w") as f:
                out.print_table(Console(file=f, width=200), table)
    else:
        as_json = fmt is OutputFormat.JSON
        text = out.documents_json(docs) if as_json else out.documents_csv(docs, columns)
        if output is None:
            print(text)
        else:
            output.write_text(text if text.endswith("\n") else text + "\n")
    if not docs:
        criteria = json.dumps(found.criteria)
        Console(stderr=True).print(f"no documents in {collection} match {criteria}")
    elif len(docs) == found.limit:
        Console(stderr=True).print(f"the first {found.limit} documents; --limit 0 for all")
