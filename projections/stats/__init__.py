"""Anonymised regional statistics of the cases, with disclosure control."""

from projections.stats.aggregate import (
    ALL,
    Count,
    Indicator,
    Measure,
    RegionalStatistics,
    Table,
    Timeliness,
    regional_statistics,
    to_rows,
    to_table,
)

__all__ = [
    "ALL",
    "Count",
    "Indicator",
    "Measure",
    "RegionalStatistics",
    "Table",
    "Timeliness",
    "regional_statistics",
    "to_rows",
    "to_table",
]
