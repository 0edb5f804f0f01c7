"""``omni-flows query COLLECTION [TERMS...]``: stored results as a table, CSV or JSON."""

import csv
import io
import json
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


class OutputFormat(str, Enum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def _get(doc: Any, path: str) -> Any:
    """The value at a dotted path; through a list, the values of its elements."""
    for part in path.split("."):
        if isinstance(doc, list):
            doc = [item.get(part) for item in doc if isinstance(item, dict)]
        elif isinstance(doc, dict):
            doc = doc.get(part)
        else:
            return None
    return doc


def _cell(value: Any) -> str:
    """A value as one table cell: floats to 4 decimals, lists joined, dicts as JSON."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list)) for v in value):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


# longest text that counts as an id or a name (kept whole) rather than prose (folded)
WHOLE_TEXT = 40


def _whole(value: Any) -> bool:
    """A number, or one word (an id, a formula, a name, a Miller index): shown whole."""
    text = _cell(value)
    return len(text) <= WHOLE_TEXT and not any(c.isspace() for c in text)


def _csv_value(value: Any) -> Any:
    """Numbers and strings as they are (full precision), dates in ISO 8601, anything else
    as JSON."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return json.dumps(value, default=str)


def query(
    collection: str = typer.Argument(..., help="e.g. adsorption_best, slabs, calculations"),
    terms: list[str] = typer.Argument(
        None, help="FIELD OP VALUE, OP one of = != < <= > >= ~ (regex); e.g. 'adsorption_energy<0'"
    ),
    filter_json: str = typer.Option(None, "--filter", "-f", help="a MongoDB filter as JSON"),
    fields: str = typer.Option(None, "--fields", help="comma-separated columns (dotted paths)"),
    sort: str = typer.Option(None, "--sort", help="field to sort by; '-field' for descending"),
    limit: int = typer.Option(50, "--limit", "-n", help="at most this many; 0 for all"),
    fmt: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", help="table, csv or json"),
    output: Path = typer.Option(None, "--output", "-o", help="write to this file"),
) -> None:
    """Query stored results (terms and --filter combine with AND)."""
    from bson import json_util
    from pymongo.errors import OperationFailure

    from omni_flows.output import check_output_file, print_table
    from omni_flows.db_schemas.indexes import collection_spec
    from omni_flows.db_schemas.query import QueryError, build_filter
    from omni_flows.results import query as query_results
    from omni_flows.stores import connect_database

    if limit < 0:
        raise QueryError(f"--limit must be 0 (all documents) or more, not {limit}")
    if output is not None:
        check_output_file(output, "--output")
    criteria = build_filter(terms or [], filter_json)
    spec = collection_spec(collection)
    columns = [f.strip() for f in fields.split(",")] if fields else None
    try:
        docs = query_results(connect_database(), collection, criteria, columns, sort, limit)
    except OperationFailure as exc:
        if exc.code in (13, 18):  # no or wrong credential: the database's own message
            raise
        reason = (exc.details or {}).get("errmsg") or str(exc)
        raise QueryError(
            f"the database cannot run the filter {json.dumps(criteria)}: {reason}"
        ) from None
    if columns is None:
        summary = spec.document.summary_fields if spec and spec.document else ()
        columns = list(summary) or list(dict.fromkeys(k for d in docs for k in d))

    if fmt is OutputFormat.JSON:
        text = json_util.dumps(docs, json_options=json_util.RELAXED_JSON_OPTIONS, indent=2)
    elif fmt is OutputFormat.CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for doc in docs:
            writer.writerow([_csv_value(_get(doc, c)) for c in columns])
        text = buffer.getvalue()
    else:
        table = Table(title=f"{collection}: {len(docs)} documents")
        for column in columns:
            values = [_get(doc, column) for doc in docs]
            if all(_whole(v) for v in values):  # numbers and ids: never cut or split
                table.add_column(column, no_wrap=True)
            else:
                table.add_column(column, overflow="fold")
        for doc in docs:
            table.add_row(*(_cell(_get(doc, c)) for c in columns))
        text = None

    console = Console()
    if text is None:
        if output is not None:
            with output.open("w") as f:
                print_table(Console(file=f, width=200), table)
        else:
            print_table(console, table)
    elif output is not None:
        output.write_text(text if text.endswith("\n") else text + "\n")
    else:
        print(text)
    if not docs:
        Console(stderr=True).print(f"no documents in {collection} match {json.dumps(criteria)}")
    elif len(docs) == limit:
        Console(stderr=True).print(f"the first {limit} documents; --limit 0 for all")
