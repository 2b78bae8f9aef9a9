"""What an import tells the person who ran it: the counts, a table of rejected rows on the terminal,
and the same rows in a CSV report file (written as they come, so a long file's errors never pile up in
memory)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TextIO

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from connectors.importer.convert import RowError

__all__ = ["REPORT_COLUMNS", "SHOWN", "ImportCounts", "ReportFile", "default_report_path", "summary"]

REPORT_COLUMNS: Final = ("line", "column", "field", "reason")
#: Rejected rows shown on the terminal; the report file holds them all.
SHOWN: Final = 50


@dataclass
class ImportCounts:
    read: int = 0
    valid: int = 0
    published: int = 0
    rejected: int = 0


def default_report_path(source: Path) -> Path:
    """``<file>.report.csv``, next to the input."""
    return source.with_name(f"{source.name}.report.csv")


class ReportFile:
    """The CSV report of rejected rows; keeps the first :data:`SHOWN` for the terminal."""

    def __init__(self, path: Path, *, keep: int = SHOWN) -> None:
        self.path = path
        self.keep = keep
        self.shown: list[RowError] = []
        self._stream: TextIO | None = None
        self._writer: Any = None

    def __enter__(self) -> ReportFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = self.path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._stream)
        self._writer.writerow(REPORT_COLUMNS)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._stream is not None:
            self._stream.close()

    def add(self, error: RowError) -> None:
        assert self._writer is not None, "the report file is not open"
        self._writer.writerow(["" if value is None else value for value in error])
        if len(self.shown) < self.keep:
            self.shown.append(error)


def _rejected_table(shown: Sequence[RowError], rejected: int) -> Table:
    table = Table(title=f"Rejected rows ({rejected})", title_justify="left", expand=False)
    table.add_column("line", justify="right", no_wrap=True)
    table.add_column("column", overflow="fold")
    table.add_column("field", overflow="fold")
    table.add_column("reason", overflow="fold")
    for error in shown:
        table.add_row(str(error.line), error.column or "", error.field or "", error.reason)
    if rejected > len(shown):
        table.caption = f"{rejected - len(shown)} more in the report file"
    return table


def summary(
    counts: ImportCounts, shown: Sequence[RowError], *, report: Path, topic: str | None
) -> RenderableType:
    """The end of an import: rejected rows (if any), then the counts and where things went."""
    parts: list[RenderableType] = []
    if counts.rejected:
        parts.append(_rejected_table(shown, counts.rejected))
    line = Text()
    line.append(f"read {counts.read}, valid {counts.valid}, ")
    if topic is None:
        line.append("published 0 (dry run: validated only), ", style="yellow")
    else:
        line.append(f"published {counts.published} to {topic}, ")
    line.append(f"rejected {counts.rejected}", style="red" if counts.rejected else "green")
    parts.append(line)
    parts.append(Text(f"report: {report}"))
    return Group(*parts)
