"""Reading a national system's export row by row, never the whole file at once.

Every reader yields :class:`~connectors.importer.convert.SourceRow` (the line as a person sees it: a
CSV's physical line with the header on line 1, a JSONL file's line, a worksheet's row number) or, for a
line that is no row at all, a :class:`~connectors.importer.convert.RowError`. Blank rows are skipped.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from connectors.importer.convert import RowError, SourceRow
from hub.errors import LintasError

__all__ = [
    "FORMATS",
    "SourceError",
    "estimate_rows",
    "read_csv",
    "read_header",
    "read_jsonl",
    "read_rows",
    "read_xlsx",
]

Rows = Iterator[SourceRow | RowError]


class SourceError(LintasError):
    """A file that cannot be read as rows at all: names the file and the reason."""


def _text_file(path: Path) -> Any:
    try:
        # utf-8-sig: spreadsheet programs start their CSV exports with a byte order mark.
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read: {exc.strerror}") from exc


def _header(path: Path, cells: list[Any] | tuple[Any, ...] | None) -> list[str]:
    if not cells:
        raise SourceError(f"{path}: no header row (line 1 names the columns)")
    names = ["" if cell is None else str(cell).strip() for cell in cells]
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise SourceError(f"{path}: header: column {name!r} appears twice")
        seen.add(name)
    return names


def _row(names: list[str], cells: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    return {name: cell for name, cell in zip(names, cells, strict=False) if name}


def _blank(cells: list[Any] | tuple[Any, ...]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


def read_csv(path: Path) -> Rows:
    with _text_file(path) as stream:
        reader = csv.reader(stream)
        try:
            names = _header(path, next(reader, None))
            ended = reader.line_num
            for cells in reader:
                # A quoted cell may span lines: the row starts on the line after the previous row ended.
                line, ended = ended + 1, reader.line_num
                if not _blank(cells):
                    yield SourceRow(line, _row(names, cells))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SourceError(f"{path}: line {reader.line_num}: not readable as UTF-8 CSV: {exc}") from exc


def read_jsonl(path: Path) -> Rows:
    with _text_file(path) as stream:
        try:
            for line, text in enumerate(stream, start=1):
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    yield RowError(line, None, None, f"not JSON: {exc}")
                    continue
                if not isinstance(value, dict):
                    yield RowError(line, None, None, f"a JSON {type(value).__name__}, not an object")
                    continue
                yield SourceRow(line, value)
        except UnicodeDecodeError as exc:
            raise SourceError(f"{path}: not readable as UTF-8: {exc}") from exc


def _workbook(path: Path) -> Any:
    from openpyxl import load_workbook  # only XLSX imports pay for it

    try:
        # read_only streams the sheet's XML instead of building every cell; data_only reads formulas'
        # last computed values.
        return load_workbook(path, read_only=True, data_only=True)
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read: {exc.strerror}") from exc
    except Exception as exc:  # openpyxl reports a corrupt or non-XLSX file with many exception types
        raise SourceError(f"{path}: not an XLSX workbook: {exc}") from exc


def _sheet(path: Path, workbook: Any, name: str | None) -> Any:
    if name is None:
        return workbook.worksheets[0]
    if name not in workbook.sheetnames:
        raise SourceError(f"{path}: no worksheet {name!r}; it has {', '.join(workbook.sheetnames)}")
    return workbook[name]


def read_xlsx(path: Path, sheet: str | None = None) -> Rows:
    workbook = _workbook(path)
    try:
        rows = _sheet(path, workbook, sheet).iter_rows(min_row=1, values_only=True)
        names = _header(path, next(rows, None))
        # In read-only mode the rows come in order with gaps filled, so counting gives the row number.
        for line, cells in enumerate(rows, start=2):
            if not _blank(cells):
                yield SourceRow(line, _row(names, cells))
    finally:
        workbook.close()


#: Readers by file suffix.
FORMATS: Final = (".csv", ".jsonl", ".xlsx")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SourceError(f"{path}: unknown file type {suffix or '(none)'}; expected {', '.join(FORMATS)}")
    return suffix


def read_rows(path: Path, *, sheet: str | None = None) -> Rows:
    """The rows of a CSV, JSONL or XLSX file, by its suffix."""
    match _suffix(path):
        case ".csv":
            return read_csv(path)
        case ".jsonl":
            return read_jsonl(path)
        case _:
            return read_xlsx(path, sheet)


def read_header(path: Path, *, sheet: str | None = None) -> tuple[str, ...] | None:
    """The column names of a CSV or XLSX file; ``None`` for JSONL, whose rows name their own."""
    suffix = _suffix(path)
    if suffix == ".jsonl":
        if not path.is_file():
            raise SourceError(f"{path}: cannot be read: no such file")
        return None
    if suffix == ".csv":
        with _text_file(path) as stream:
            try:
                return tuple(_header(path, next(csv.reader(stream), None)))
            except (csv.Error, UnicodeDecodeError) as exc:
                raise SourceError(f"{path}: line 1: not readable as UTF-8 CSV: {exc}") from exc
    workbook = _workbook(path)
    try:
        first = next(_sheet(path, workbook, sheet).iter_rows(min_row=1, max_row=1, values_only=True), None)
        return tuple(_header(path, first))
    finally:
        workbook.close()


def estimate_rows(path: Path, *, sheet: str | None = None) -> int | None:
    """About how many rows the file has, for a progress bar (quoted line breaks count extra)."""
    try:
        if path.suffix.lower() == ".xlsx":
            workbook = _workbook(path)
            try:
                last = _sheet(path, workbook, sheet).max_row
            finally:
                workbook.close()
            return None if last is None else max(0, last - 1)
        lines = 0
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                lines += chunk.count(b"\n")
        return max(0, lines - 1) if path.suffix.lower() == ".csv" else lines
    except (OSError, SourceError):
        return None
