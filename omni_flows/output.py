"""What the commands write: tables readable at any width, and files in folders checked first.

Tables: numbers and ids are copied and compared, so they are never wrapped or cut
("-2.…" or a settings id over two lines cannot be read back); wide text folds
instead. Give a number or id column ``no_wrap=True`` and a text column
``overflow="fold"``, then print with :func:`print_table`. A table whose numbers
and ids alone are wider than the terminal prints one record per row instead
("column: value" lines), so that nothing is lost at 80 columns.

Output paths: an option that names where to write (``--out``, ``-o``) is checked
before any work: a screen that ran for an hour must not end in a traceback
because its folder cannot be written.
"""

import csv
import io
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from omni_flows.db_schemas.query import field_value
from omni_flows.errors import OutputPathError


def check_writable_dir(folder: str | Path, option: str) -> Path:
    """``folder``, created if missing, after writing a file in it; else OutputPathError."""
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # what os.access cannot tell (root, /proc)
            pass
    except OSError as exc:
        raise OutputPathError(
            f"{option} {folder}: cannot write there ({exc.strerror or exc}); "
            "give a folder you can write"
        ) from None
    return folder


def check_output_file(path: str | Path, option: str) -> Path:
    """``path``, if a file can be written there (its folder exists and is writable)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a folder: give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise OutputPathError(
            f"{option} {path}: the folder {folder} does not exist; create it or write elsewhere"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{option} {path}: the file cannot be written")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputPathError(
            f"{option} {path}: cannot write in {folder} ({exc.strerror or exc})"
        ) from None
    return path


# characters a folding text column keeps at least (rich would squeeze it to nothing)
FOLD_MIN_WIDTH = 10


def print_table(console: Console, table: Table) -> None:
    """``table`` at the console's width, its ``no_wrap`` columns whole (see the module).

    A table that does not fit so prints one record per row. (Folding the headers of
    narrow number columns instead left letter-per-line headers: worse to read.)
    """
    widest = [max((_width(console, cell) for cell in column.cells), default=0)
              for column in table.columns]
    for column, width in zip(table.columns, widest):
        if column.no_wrap:
            column.min_width = max(column.min_width or 0, width)
        else:
            column.min_width = max(column.min_width or 0, min(width, FOLD_MIN_WIDTH))
    if _rendered_width(console, table) <= console.width:
        console.print(table)
    else:
        print_records(console, table)


def print_properties(console: Console, properties: dict) -> None:
    """One "property  value" row per key; values (URIs, hashes, paths) are copied: whole."""
    table = Table(show_header=False)
    table.add_column("property", no_wrap=True)
    table.add_column("value", no_wrap=True)
    for key, value in properties.items():
        table.add_row(key, str(value))
    print_table(console, table)


def print_records(console: Console, table: Table) -> None:
    """``table`` as one block of "column: value" lines per row, for a narrow terminal."""
    if table.title:
        console.print(table.title, style="bold")
    headers = [_plain(console, column.header) for column in table.columns]
    pad = max((len(h) for h in headers), default=0)
    for row in zip(*(column.cells for column in table.columns)):
        console.print()
        for header, cell in zip(headers, row):
            line = Text(f"{header:>{pad}}: ")
            line.append_text(cell if isinstance(cell, Text) else Text(_plain(console, cell)))
            console.print(line, soft_wrap=True)  # a long value runs on; it is not cut
    if table.caption:
        console.print()
        console.print(table.caption)


def _width(console: Console, renderable) -> int:
    return console.measure(renderable).maximum


def _plain(console: Console, renderable) -> str:
    if isinstance(renderable, Text):
        return renderable.plain
    if isinstance(renderable, str):
        return Text.from_markup(renderable).plain
    return str(renderable)


def _rendered_width(console: Console, table: Table) -> int:
    """How wide ``table`` is when laid out for ``console`` (lines are not cropped here)."""
    segments = console.render(table, console.options)
    return max((Segment.get_line_length(line) for line in Segment.split_lines(segments)),
               default=0)


# --- stored documents as a table, CSV or JSON (``omni-flows query``) --------------------

# longest text that counts as an id or a name (kept whole) rather than prose (folded)
WHOLE_TEXT = 40


def cell(value: Any) -> str:
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


def _whole(value: Any) -> bool:
    """A number, or one word (an id, a formula, a name, a Miller index): shown whole."""
    text = cell(value)
    return len(text) <= WHOLE_TEXT and not any(c.isspace() for c in text)


def documents_table(docs: list[dict], columns: list[str], title: str) -> Table:
    """One row per document; numbers and ids never cut or split, prose folded."""
    table = Table(title=title)
    for column in columns:
        if all(_whole(field_value(doc, column)) for doc in docs):
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, overflow="fold")
    for doc in docs:
        table.add_row(*(cell(field_value(doc, c)) for c in columns))
    return table


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


def documents_csv(docs: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for doc in docs:
        writer.writerow([_csv_value(field_value(doc, c)) for c in columns])
    return buffer.getvalue()


def documents_json(docs: list[dict]) -> str:
    """MongoDB's relaxed extended JSON (dates and ObjectIds readable back)."""
    from bson import json_util

    return json_util.dumps(docs, json_options=json_util.RELAXED_JSON_OPTIONS, indent=2)
