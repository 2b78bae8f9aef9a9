"""Anonymised regional statistics of the cases, with disclosure control over the whole publication."""

from projections.stats.aggregate import (
    ALL,
    Check,
    Count,
    Indicator,
    Measure,
    Period,
    Published,
    RegionalStatistics,
    Table,
    Timeliness,
    regional_statistics,
    to_rows,
    to_table,
)
from projections.stats.protection import InconsistentPublication, ProtectionFailed
from projections.stats.rules import DEFAULT_RULES, Dimension, StatisticsRules, load_rules

__all__ = [
    "ALL",
    "DEFAULT_RULES",
    "Check",
    "Count",
    "Dimension",
    "InconsistentPublication",
    "Indicator",
    "Measure",
    "Period",
    "ProtectionFailed",
    "Published",
    "RegionalStatistics",
    "StatisticsRules",
    "Table",
    "Timeliness",
    "load_rules",
    "regional_statistics",
    "to_rows",
    "to_table",
]
