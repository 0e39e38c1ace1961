"""Plain-text tables that fit the terminal: long cells are cut with an ellipsis, never wrapped."""

import os
import shutil
import sys
import textwrap
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Final

import polars as pl

ELLIPSIS: Final = "…"
GAP: Final = "  "
MIN_COLUMN_WIDTH: Final = 6
"""Columns shrink no narrower than this (or their natural width, if smaller)."""
EMPTY_MESSAGE: Final = "(nothing stored yet; run `make demo`)"


def cell_text(value: object) -> str:
    """Return how a table shows a value: '-' for None, 4 decimals for floats, minutes for times."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def fit(text: str, width: int) -> str:
    """Return `text` cut to `width` characters, its last one an ellipsis when cut."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + ELLIPSIS if width > 0 else ""


def column_widths(natural: Sequence[int], floors: Sequence[int], width: int) -> list[int]:
    """Return column widths whose total (with two-space gaps) fits `width` if possible.

    The widest column that is still above its floor gives up a character at a time until
    the table fits or every column is at its floor; a table that still does not fit is cut
    at the line's end by `format_table`.

    Args:
        natural: Each column's widest cell or header.
        floors: The narrowest each column may become.
        width: The characters a line may take.
    """
    widths = list(natural)
    excess = sum(widths) + len(GAP) * max(len(widths) - 1, 0) - width
    while excess > 0:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None,
    right_aligned: Sequence[bool] | None = None,
) -> list[str]:
    """Return a header line, a rule and one line per row, each at most `width` characters.

    Args:
        headers: Column names.
        rows: Cell texts, one sequence per row, as long as `headers`.
        width: The characters a line may take (the terminal's width); None: no limit.
        right_aligned: Per column, whether it holds numbers: right-aligned, and its cells are
            never cut (only its header); default all text.
    """
    aligned = list(right_aligned) if right_aligned is not None else [False] * len(headers)
    cells = [max([1, *(len(row[i]) for row in rows)]) for i in range(len(headers))]
    natural = [max(len(h), c) for h, c in zip(headers, cells, strict=True)]
    # Numbers are never cut (only their headers); text gives way down to MIN_COLUMN_WIDTH.
    floors = [
        max(c, min(n, MIN_COLUMN_WIDTH)) if right else min(n, MIN_COLUMN_WIDTH)
        for c, n, right in zip(cells, natural, aligned, strict=True)
    ]
    widths = natural if width is None else column_widths(natural, floors, width)
    limit = sum(widths) + len(GAP) * len(widths) if width is None else width

    def line(texts: Sequence[str]) -> str:
        parts = [
            fit(t, w).rjust(w) if right else fit(t, w).ljust(w)
            for t, w, right in zip(texts, widths, aligned, strict=True)
        ]
        return fit(GAP.join(parts).rstrip(), limit)

    return [line(headers), fit(GAP.join("-" * w for w in widths), limit), *map(line, rows)]


def terminal_width() -> int | None:
    """Return the width output must fit: COLUMNS if set, else the terminal's.

    None when stdout is not a terminal (a pipe, a file): nothing is cut for a reader that
    has no screen edge (scripts should prefer `--json`).
    """
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def print_table(
    frame: pl.DataFrame, width: int | None = None, right_aligned: Collection[str] = ()
) -> None:
    """Print a frame as a table that fits the terminal (numeric columns right-aligned).

    Args:
        frame: The rows to show; an empty frame prints a hint to run the demo instead.
        width: Line length to fit; default `terminal_width()`.
        right_aligned: Further columns to right-align (numbers already formatted as text).
    """
    if frame.is_empty():
        print(EMPTY_MESSAGE)
        return
    rows = [[cell_text(v) for v in row] for row in frame.iter_rows()]
    numeric = [dtype.is_numeric() or name in right_aligned for name, dtype in frame.schema.items()]
    for text in format_table(frame.columns, rows, width or terminal_width(), numeric):
        print(text)


def print_wrapped(text: str, width: int | None = None) -> None:
    """Print prose wrapped to `width` (default `terminal_width()`), continuations indented."""
    limit = width or terminal_width()
    print(text if limit is None else textwrap.fill(text, limit, subsequent_indent="  "))
