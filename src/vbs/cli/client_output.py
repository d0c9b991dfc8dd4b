"""How the client commands print: JSON for scripts, tables for people.

``--json`` prints one JSON document on stdout (the API's objects, unchanged).
Otherwise a list is a table and one object a two-column field/value table:
rich tables on a terminal, tab-separated lines (no header) when stdout is a
pipe, like ``vbs admin``. Errors never go to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["cell", "print_doc", "print_object", "print_table"]


def cell(value: Any) -> str:
    """A value as one table cell: ``-`` for null, JSON for lists and objects."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def print_doc(doc: Any) -> None:
    """One JSON document on stdout."""
    print(json.dumps(doc, indent=1, sort_keys=True))


def print_table(args: argparse.Namespace, doc: Any, columns: Sequence[str],
                rows: Sequence[Mapping[str, Any]], title: str | None = None) -> None:
    """``doc`` as JSON with ``--json``; otherwise ``columns`` of each row."""
    if args.json:
        print_doc(doc)
        return
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Column, Table

        table = Table(*(_column(Column, c, [r[i] for r in cells])
                        for i, c in enumerate(columns)), title=title)
        for r in cells:
            table.add_row(*r)
        Console().print(table)
    else:
        for r in cells:
            print("\t".join(r))


HEADERS = {"size": "size (GiB)"}
"""Sizes are the API's: whole GiB (2**30 bytes), as volumes and backups count them."""


def _column(column_type: Any, name: str, values: Sequence[str]) -> Any:
    """A rich column that never cuts a value with an ellipsis: an id column is
    as wide as its longest id (the other columns give way; the terminal wraps
    the line if even that does not fit), any other column wraps (``fold``)."""
    header = HEADERS.get(name, name)
    if name == "id" or name.endswith("_id"):
        width = max([len(header), *(len(v) for v in values)])
        return column_type(header, no_wrap=True, min_width=width, overflow="ignore")
    return column_type(header, overflow="fold")


def print_object(args: argparse.Namespace, doc: Any, obj: Mapping[str, Any],
                 title: str | None = None) -> None:
    """``doc`` as JSON with ``--json``; otherwise ``obj`` as field/value rows."""
    rows = [{"field": k, "value": v} for k, v in obj.items()]
    print_table(args, doc, ("field", "value"), rows, title=title)
