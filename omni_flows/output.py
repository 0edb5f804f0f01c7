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

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

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
