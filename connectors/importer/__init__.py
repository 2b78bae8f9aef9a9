"""Batch import for national systems that can only export files (CSV, JSONL, XLSX) with a mapping.

:mod:`~connectors.importer.mapping` reads the mapping file, :mod:`~connectors.importer.readers` the rows,
:mod:`~connectors.importer.convert` turns rows into checked events (pure), and
:mod:`~connectors.importer.run` publishes the valid ones; :mod:`~connectors.importer.cli` is
``lintas import``. See ``docs/importing.md``.
"""

from connectors.importer.convert import (
    IMPORT_NAMESPACE,
    Converter,
    RowError,
    SourceRow,
    convert_row,
    convert_rows,
    event_id_for,
)
from connectors.importer.mapping import ImportMapping, MappingError, load_mapping, parse_mapping
from connectors.importer.readers import SourceError, read_rows
from connectors.importer.report import ImportCounts
from connectors.importer.run import ImportResult, PublishFailed, import_rows, run_import

__all__ = [
    "IMPORT_NAMESPACE",
    "Converter",
    "ImportCounts",
    "ImportMapping",
    "ImportResult",
    "MappingError",
    "PublishFailed",
    "RowError",
    "SourceError",
    "SourceRow",
    "convert_row",
    "convert_rows",
    "event_id_for",
    "import_rows",
    "load_mapping",
    "parse_mapping",
    "read_rows",
    "run_import",
]
