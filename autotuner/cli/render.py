"""Rows to text: a fixed-width table for people, JSON or CSV for programs.

Returns strings (the CLI prints them). Tables round numbers for reading; JSON and CSV keep
every value raw and unrounded. Nested values (parameters, shapes) become compact JSON in
tables and CSV cells.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

FORMATS = ("table", "json", "csv")
_MAX_CELL = 48


def as_dict(row: Any) -> dict[str, Any]:
    if is_dataclass(row) and not isinstance(row, type):
        return asdict(row)
    return dict(row)


def _cell(value: Any) -> str:
    """A table cell: short, rounded, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, separators=(",", ":"), default=str)
    text = str(value).replace("\n", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def _raw(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return "" if value is None else value


def table(rows: Sequence[Any], columns: Sequence[str] | None = None) -> str:
    dicts = [as_dict(r) for r in rows]
    if not dicts:
        return "(none)"
    cols = list(columns or dicts[0].keys())
    cells = [[_cell(d.get(c)) for c in cols] for d in dicts]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()

    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def to_json(data: Any) -> str:
    if isinstance(data, (list, tuple)):
        data = [as_dict(r) if not isinstance(r, (str, int, float)) else r for r in data]
    elif is_dataclass(data) and not isinstance(data, type):
        data = asdict(data)
    return json.dumps(data, indent=2, default=str)


def to_csv(rows: Sequence[Any], columns: Sequence[str] | None = None) -> str:
    dicts = [as_dict(r) for r in rows]
    out = io.StringIO()
    cols = list(columns or (dicts[0].keys() if dicts else []))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(cols)
    for d in dicts:
        writer.writerow([_raw(d.get(c)) for c in cols])
    return out.getvalue().rstrip("\n")


def render(rows: Sequence[Any], fmt: str = "table", columns: Sequence[str] | None = None) -> str:
    """Rows in ``fmt`` ("table", "json" or "csv"); ``columns`` picks and orders table/CSV columns."""
    if fmt == "json":
        return to_json(list(rows))
    if fmt == "csv":
        return to_csv(rows, columns)
    return table(rows, columns)


def key_values(data: dict[str, Any]) -> str:
    """A mapping as aligned ``key: value`` lines (nested mappings indented)."""
    width = max((len(k) for k in data), default=0)
    lines = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {_cell(v)}" for k, v in value.items())
        else:
            lines.append(f"{key.ljust(width)}  {_cell(value)}")
    return "\n".join(lines)
