"""Batch import, pure: the mapping file, the readers, rows into events, the report, ``--dry-run``.

The example file examples/import/htcds-th.csv holds 15 HTCDS rows of people identified in Thailand, three
of them deliberately wrong (lines 6, 10 and 12).
"""

from __future__ import annotations

import asyncio
import copy
import csv
import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
import typer
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from typer.testing import CliRunner

from connectors.importer import (
    ImportCounts,
    MappingError,
    RowError,
    SourceRow,
    convert_rows,
    event_id_for,
    import_rows,
    load_mapping,
    parse_mapping,
    read_rows,
)
from connectors.importer.cli import EXIT_REJECTED, EXIT_USAGE, import_command
from connectors.importer.readers import SourceError, read_csv, read_header, read_jsonl
from connectors.importer.report import REPORT_COLUMNS, ReportFile, default_report_path
from connectors.importer.run import check_columns
from hub.contract import AgeBand, DataCategory, ExploitationType, LabourSector, VictimIdentified
from hub.crypto.keystore import KeysDestroyed
from hub.crypto.signing import Signer
from hub.events import Event, event_to_record
from tests.workers import national_systems

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "config" / "mappings" / "htcds.yaml"
EXAMPLE = ROOT / "examples" / "import" / "htcds-th.csv"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
#: The example's deliberately wrong rows.
EXPECTED_ERRORS = [
    RowError(
        6,
        "Gender",
        "sex",
        "unknown code 'X'; expected one of 'Male', 'Female', 'TransgenderNonConforming' or 'Unknown'",
    ),
    RowError(10, "Needs", "needs", "must include ChildProtection when age_band is Child15To17"),
    RowError(
        12,
        "Date of Identification",
        "envelope.occurred_at",
        "'31/02/2026' is not a date (expected ISO 8601 or %d/%m/%Y or %d-%m-%Y)",
    ),
]
DATES = ("Date of Identification", "Reflection Period Start")
NUMBERS = ("Age", "Reflection Period Days")
LISTS = ("Language", "Type of Exploitation", "Methods of Control", "Needs", "Consent to Share")


@pytest.fixture(scope="module")
def mapping() -> Any:
    return load_mapping(MAPPING)


def _example_rows() -> list[dict[str, str]]:
    with EXAMPLE.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def _convert(path: Path, mapping: Any, country: str = "TH") -> list[Event | RowError]:
    return list(convert_rows(read_rows(path, sheet=mapping.sheet), mapping, country=country, now=NOW))


def _split(results: Iterable[Event | RowError]) -> tuple[list[Event], list[RowError]]:
    events = [r for r in results if not isinstance(r, RowError)]
    errors = [r for r in results if isinstance(r, RowError)]
    return events, errors


def _write_csv(path: Path, rows: Sequence[Mapping[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _native(column: str, text: str, *, dates_as_objects: bool) -> Any:
    """A cell as a spreadsheet or a JSON export holds it: numbers as numbers, dates as dates."""
    if not text:
        return None
    if column in NUMBERS and text.isdigit():
        return int(text)
    if column in DATES:
        try:
            moment = datetime.strptime(text, "%d/%m/%Y")
        except ValueError:
            return text  # the deliberately impossible date stays as it was typed
        return moment if dates_as_objects else moment.date().isoformat()
    return text


# -- the mapping file --------------------------------------------------------------------------------


def _mapping(**changes: Any) -> dict[str, Any]:
    raw = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if key.startswith("fields."):
            raw["fields"][key.removeprefix("fields.")] = value
        else:
            raw[key] = value
    return copy.deepcopy(raw)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fields.sexx": "Gender"}, "fields.sexx: not a field of VictimIdentified"),
        (
            {"fields.sex": {"column": "Gender", "values": {"M": "Mal"}}},
            "fields.sex.values.M: 'Mal' is not a code of Gender",
        ),
        (
            {"fields.sex": {"column": "Gender", "constant": "Male"}},
            "fields.sex: give exactly one of column and constant",
        ),
        ({"fields.sex": {"column": "Gender", "split": ";"}}, "fields.sex.split: sex holds one value"),
        ({"fields.sex": {"colum": "Gender"}}, "fields.sex.colum: not a key of a mapping"),
        ({"fields.personal": "First Name"}, "fields.personal: is a record"),
        ({"fields.envelope.event_id": "Record ID"}, "fields.envelope.event_id: cannot be mapped"),
        (
            {"fields.consent_scope": {"constant": ["CaseCore", "Everything"]}},
            "fields.consent_scope.constant: 'Everything' is not a code of DataCategory",
        ),
        (
            {"fields.age_band": {"column": "Age", "ranges": {0: "Child0To11", 18: "Adult"}}},
            "fields.age_band.ranges.18: 'Adult' is not a code of AgeBand",
        ),
        ({"fields.identified_on": {"column": "Age", "ranges": {0: "x"}}}, "fields.identified_on.ranges"),
        ({"timezone": "Asia/Atlantis"}, "timezone: 'Asia/Atlantis' is not an IANA time zone"),
        ({"event_type": "Victim"}, "event_type.constant: 'Victim' is not a code of EventType"),
        ({"row_key": []}, "row_key: "),
        ({"colums": ["Case ID"]}, "colums: not a key of a mapping"),
    ],
)
def test_a_wrong_mapping_is_refused_naming_its_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MappingError, match=r"^m\.yaml: ") as raised:
        parse_mapping(_mapping(**changes), "m.yaml")
    assert message in str(raised.value)


def test_a_mapping_without_a_field_every_event_needs_is_refused() -> None:
    raw = _mapping()
    del raw["fields"]["envelope.case_id"]
    with pytest.raises(MappingError, match=r"fields\.envelope\.case_id: required"):
        parse_mapping(raw, "m.yaml")


def test_an_unreadable_mapping_file_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("row_key: [a\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"broken\.yaml: not valid YAML"):
        load_mapping(broken)
    with pytest.raises(MappingError, match=r"missing\.yaml: cannot be read"):
        load_mapping(tmp_path / "missing.yaml")


def test_a_file_without_a_mapped_column_is_refused_naming_the_mapping_key(
    mapping: Any, tmp_path: Path
) -> None:
    rows = [{k: v for k, v in row.items() if k != "Gender"} for row in _example_rows()]
    path = _write_csv(tmp_path / "no-gender.csv", rows)
    with pytest.raises(MappingError, match=r"fields\.sex\.column: 'Gender' is not a column of .*no-gender"):
        check_columns(mapping, read_header(path), path)


# -- rows into events ----------------------------------------------------------------------------------


def test_the_example_gives_its_valid_rows_as_events_and_names_each_bad_rows_fault(mapping: Any) -> None:
    events, errors = _split(_convert(EXAMPLE, mapping))

    assert errors == EXPECTED_ERRORS
    assert len(events) == 12
    first = events[0]
    assert isinstance(first, VictimIdentified)
    assert first.envelope.case_id == "TH-2026-0101"
    assert first.envelope.event_id == event_id_for("TH", ["2026-0101", "V-01"])
    assert first.envelope.schema_version == 2
    # midnight in Bangkok, the mapping's time zone
    assert first.envelope.occurred_at == datetime(2026, 3, 13, 17, 0, tzinfo=UTC)
    assert first.envelope.recorded_at == first.envelope.occurred_at
    assert first.envelope.destination_country == "MM"
    assert first.labour_sectors == (LabourSector.Fishing,)
    assert first.exploitation_types == (ExploitationType.ForcedLabour,)
    assert first.age_band == AgeBand.Adult25To34
    assert first.reflection_period_days == 45
    assert first.personal is not None
    assert first.personal.given_names == "Synthetic A"
    unknown_age = next(e for e in events if e.envelope.case_id == "TH-2026-0152")
    assert isinstance(unknown_age, VictimIdentified)
    assert unknown_age.age_band == AgeBand.UncertainPresumedChild  # an empty Age: presumed a child
    no_answer = next(e for e in events if e.envelope.case_id == "TH-2026-0188")
    assert isinstance(no_answer, VictimIdentified)
    assert no_answer.consent_scope == (DataCategory.CaseCore,)  # no consent recorded: the default


def test_the_same_file_converted_twice_gives_the_same_ids_records_and_bytes(
    mapping: Any, tmp_path: Path
) -> None:
    first, _ = _split(_convert(EXAMPLE, mapping))
    again, _ = _split(
        convert_rows(read_rows(EXAMPLE), mapping, country="TH", now=datetime(2027, 6, 1, tzinfo=UTC))
    )

    assert [e.envelope.event_id for e in again] == [e.envelope.event_id for e in first]
    assert [event_to_record(e) for e in again] == [event_to_record(e) for e in first]
    # written by the country's national system, twice, with the same key store: the same bytes
    assert [national_systems(tmp_path).encode(e) for e in again] == [
        national_systems(tmp_path).encode(e) for e in first
    ]


def test_each_reader_gives_the_same_events_for_the_same_rows(mapping: Any, tmp_path: Path) -> None:
    rows = _example_rows()
    columns = list(rows[0])
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Victims"
    sheet.append(columns)
    for row in rows:
        sheet.append([_native(c, row[c], dates_as_objects=True) for c in columns])
    xlsx = tmp_path / "htcds-th.xlsx"
    workbook.save(xlsx)
    jsonl = tmp_path / "htcds-th.jsonl"
    with jsonl.open("w", encoding="utf-8") as stream:
        for row in rows:
            record = {c: _native(c, row[c], dates_as_objects=False) for c in columns}
            for column in LISTS:  # a JSON export holds lists as arrays
                record[column] = [item for item in row[column].split(";") if item] or None
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")

    from_csv, csv_errors = _split(_convert(EXAMPLE, mapping))
    from_xlsx, xlsx_errors = _split(_convert(xlsx, mapping))
    from_jsonl, jsonl_errors = _split(_convert(jsonl, mapping))

    assert from_xlsx == from_csv
    assert from_jsonl == from_csv
    assert xlsx_errors == csv_errors  # a sheet's row numbers are the CSV's lines: the header is 1
    assert jsonl_errors == [error._replace(line=error.line - 1) for error in csv_errors]  # no header
    assert list(read_rows(xlsx, sheet="Victims")) == list(read_rows(xlsx))
    with pytest.raises(SourceError, match="no worksheet 'Cases'; it has Victims"):
        list(read_rows(xlsx, sheet="Cases"))


def test_a_csv_row_is_numbered_by_the_physical_line_it_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text('a,b\n1,"two\nlines"\n\n3,x\n', encoding="utf-8")
    assert list(read_csv(path)) == [
        SourceRow(2, {"a": "1", "b": "two\nlines"}),
        SourceRow(5, {"a": "3", "b": "x"}),
    ]


def test_a_jsonl_line_that_is_no_object_is_a_row_error_and_the_others_still_read(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\nnot json\n[1, 2]\n\n{"a": 2}\n', encoding="utf-8")
    rows = list(read_jsonl(path))
    assert rows[0] == SourceRow(1, {"a": 1})
    assert isinstance(rows[1], RowError)
    assert (rows[1].line, rows[1].reason[:9]) == (2, "not JSON:")
    assert rows[2] == RowError(3, None, None, "a JSON list, not an object")
    assert rows[3] == SourceRow(5, {"a": 2})


def test_unknown_file_types_and_duplicate_headers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"unknown file type \.ods"):
        read_rows(tmp_path / "cases.ods")
    twice = tmp_path / "twice.csv"
    twice.write_text("a,b,a\n1,2,3\n", encoding="utf-8")
    with pytest.raises(SourceError, match="column 'a' appears twice"):
        list(read_csv(twice))


def _with(rows: list[dict[str, str]], line: int, **cells: str) -> list[dict[str, str]]:
    """The rows with cells of the row on ``line`` (the header is line 1) changed."""
    changed = [dict(row) for row in rows]
    changed[line - 2].update({column.replace("_", " "): value for column, value in cells.items()})
    return changed


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"Record_ID": ""}, ("Record ID", "envelope.event_id", "empty, and the row key makes the event id")),
        (
            {"Country_of_Identification": "Malaysia"},
            ("Country of Identification", "envelope.source_country", "is MY, and these rows are imported"),
        ),
        ({"Reflection_Period_Days": "45.5"}, ("Reflection Period Days", "reflection_period_days", "45.5")),
        ({"Reflection_Period_Days": "20"}, ("Reflection Period Days", "reflection_period_days", "20 is")),
        ({"Citizenship": "Atlantis"}, ("Citizenship", "envelope.destination_country", "'Atlantis'")),
        ({"Type_of_Exploitation": ""}, ("Type of Exploitation", "exploitation_types", "required")),
        ({"Age": "-3"}, ("Age", "age_band", "below the lowest range")),
        (
            {"Date_of_Identification": "01/01/2027"},
            ("Date of Identification", "envelope.occurred_at", "future"),
        ),
    ],
)
def test_a_bad_cell_is_reported_with_its_line_column_field_and_reason(
    mapping: Any, tmp_path: Path, cells: dict[str, str], expected: tuple[str, str, str]
) -> None:
    path = _write_csv(tmp_path / "one-bad.csv", _with(_example_rows(), 3, **cells))

    events, errors = _split(_convert(path, mapping))

    assert len(events) == 11, "the other valid rows still convert"
    bad = next(error for error in errors if error.line == 3)
    assert (bad.column, bad.field) == expected[:2]
    assert expected[2] in bad.reason


def test_a_repeated_row_key_is_rejected_rather_than_taken_for_a_resubmission(
    mapping: Any, tmp_path: Path
) -> None:
    rows = _example_rows()
    path = _write_csv(tmp_path / "repeated.csv", [*rows, {**rows[1], "Gender": "F"}])

    events, errors = _split(_convert(path, mapping))

    assert len(events) == 12
    assert errors[-1].line == len(rows) + 2
    assert errors[-1].column == "Case ID, Record ID"
    assert errors[-1].field == "envelope.event_id"
    assert "repeats line 3" in errors[-1].reason


def test_the_event_type_can_come_from_a_column_and_fields_apply_to_their_own_events(tmp_path: Path) -> None:
    raw = _mapping(
        event_type={
            "column": "Kind",
            "values": {"identified": "VictimIdentified", "refer": "ReferralRequested"},
        },
        **{
            "fields.purposes": {"column": "Purposes", "split": ";"},
            "fields.urgency": {"constant": "Routine"},
            "fields.respond_by": "Respond By",
        },
    )
    mapping = parse_mapping(raw, "mixed.yaml")
    rows = _example_rows()[:2]
    rows = [
        {**rows[0], "Kind": "identified", "Purposes": "", "Respond By": ""},
        {
            **rows[0],
            "Record ID": "R-01",
            "Kind": "refer",
            "Purposes": "VerifyNationalityIdentity;TraceFamily",
            "Respond By": "14/04/2026",
        },
        {**rows[1], "Kind": "close"},
    ]
    path = _write_csv(tmp_path / "mixed.csv", [{**row, "Purposes": row.get("Purposes", "")} for row in rows])

    events, errors = _split(_convert(path, mapping))

    assert [type(e).__name__ for e in events] == ["VictimIdentified", "ReferralRequested"]
    assert events[1].envelope.case_id == events[0].envelope.case_id
    assert errors == [
        RowError(
            4,
            "Kind",
            "envelope.event_type",
            "unknown event type 'close'; expected one of VictimIdentified, ReferralRequested",
        )
    ]


# -- the import with a sink, and the report --------------------------------------------------------------


class ListSink:
    """Batches kept in memory; refuses the cases in ``refused`` as a key store refuses a shredded case."""

    def __init__(self, batch_size: int, refused: Iterable[str] = ()) -> None:
        self.batch_size = batch_size
        self.refused = set(refused)
        self.pending: list[Event] = []
        self.batches: list[list[Event]] = []

    @property
    def full(self) -> bool:
        return len(self.pending) >= self.batch_size

    def add(self, event: Event) -> None:
        if event.envelope.case_id in self.refused:
            raise KeysDestroyed(event.envelope.case_id, NOW, "consent withdrawn")
        self.pending.append(event)

    async def flush(self) -> int:
        if self.pending:
            self.batches.append(self.pending)
        count, self.pending = len(self.pending), []
        return count


def test_valid_rows_are_published_in_bounded_batches_and_rejected_ones_reported(
    mapping: Any, tmp_path: Path
) -> None:
    sink = ListSink(batch_size=5, refused=["TH-2026-0144"])
    report_path = tmp_path / "out" / "report.csv"
    with ReportFile(report_path, keep=2) as report:
        counts = asyncio.run(
            import_rows(
                read_rows(EXAMPLE),
                mapping,
                country="TH",
                now=NOW,
                sink=sink,
                report=report,
                counts=ImportCounts(),
            )
        )

    assert counts == ImportCounts(read=15, valid=11, published=11, rejected=4)
    assert [len(batch) for batch in sink.batches] == [5, 5, 1]
    published = [e.envelope.case_id for batch in sink.batches for e in batch]
    assert "TH-2026-0144" not in published
    assert len(report.shown) == 2  # the terminal shows the first few; the file has them all
    with report_path.open(encoding="utf-8", newline="") as stream:
        lines = list(csv.reader(stream))
    assert tuple(lines[0]) == REPORT_COLUMNS
    assert [int(line[0]) for line in lines[1:]] == [6, 8, 10, 12]
    refused = lines[2]
    assert refused[1:3] == ["", ""]
    assert "keys were destroyed" in refused[3]


def test_the_default_report_sits_next_to_the_input() -> None:
    assert default_report_path(EXAMPLE) == EXAMPLE.with_name("htcds-th.csv.report.csv")


# -- hypothesis: any mix of good and bad rows ---------------------------------------------------------

BASE_ROW = _example_rows()[0]
#: How a row goes wrong: its cells, and the column and field named.
FAULTS = {
    "gender": ({"Gender": "X"}, "Gender", "sex"),
    "date": ({"Date of Identification": "31/02/2026"}, "Date of Identification", "envelope.occurred_at"),
    "country": (
        {"Country of Identification": "Malaysia"},
        "Country of Identification",
        "envelope.source_country",
    ),
    "child": ({"Age": "15", "Needs": "Shelter"}, "Needs", "needs"),
    "key": ({"Record ID": ""}, "Record ID", "envelope.event_id"),
}


def _rows_of(kinds: Sequence[str]) -> list[SourceRow]:
    rows = []
    for index, kind in enumerate(kinds):
        cells = {**BASE_ROW, "Case ID": f"2026-{index:05d}"}
        if kind != "ok":
            cells.update(FAULTS[kind][0])
        rows.append(SourceRow(index + 2, cells))
    return rows


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["ok", *FAULTS]), max_size=25), st.randoms(use_true_random=False))
def test_every_row_is_either_valid_or_rejected_and_valid_ids_are_stable(
    kinds: list[str], shuffler: random.Random
) -> None:
    mapping = load_mapping(MAPPING)
    rows = _rows_of(kinds)

    results = list(convert_rows(rows, mapping, country="TH", now=NOW))
    events, errors = _split(results)

    assert len(events) + len(errors) == len(rows)
    assert len(events) == kinds.count("ok")
    for row, kind, result in zip(rows, kinds, results, strict=True):
        if kind == "ok":
            assert not isinstance(result, RowError), result
            assert result.envelope.event_id == event_id_for("TH", [row.values["Case ID"], "V-01"])
        else:
            assert isinstance(result, RowError)
            assert (result.line, result.column, result.field) == (row.line, *FAULTS[kind][1:])
    # the same rows in another order, among others or alone, keep their ids
    shuffled = list(rows)
    shuffler.shuffle(shuffled)
    again = {
        e.envelope.case_id: e.envelope.event_id
        for e in convert_rows(shuffled, mapping, country="TH", now=NOW)
        if not isinstance(e, RowError)
    }
    assert again == {e.envelope.case_id: e.envelope.event_id for e in events}


# -- the command, without a broker: --dry-run ----------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def lintas() -> None:
        """As the lintas command: sub-commands by name."""

    app.command("import")(import_command)
    return app


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LINTAS_KEYS__STORE", str(tmp_path / "keys.sqlite"))
    monkeypatch.delenv("LINTAS_BOOTSTRAP_SERVERS", raising=False)
    yield tmp_path
    structlog.reset_defaults()  # the command configured logging to the runner's captured stream


def test_a_dry_run_validates_reports_and_exits_1_when_rows_are_rejected(cli_env: Path) -> None:
    report = cli_env / "report.csv"
    result = CliRunner().invoke(
        _app(),
        [
            "import",
            str(EXAMPLE),
            "--country",
            "TH",
            "--mapping",
            str(MAPPING),
            "--dry-run",
            "--report",
            str(report),
        ],
    )

    assert result.exit_code == EXIT_REJECTED, result.output
    assert "read 15, valid 12, published 0 (dry run" in result.output
    assert "rejected 3" in result.output
    assert "Rejected rows (3)" in result.output
    assert "ChildProtection" in result.output
    with report.open(encoding="utf-8", newline="") as stream:
        assert [
            RowError(int(r["line"]), r["column"], r["field"], r["reason"]) for r in csv.DictReader(stream)
        ] == (EXPECTED_ERRORS)
    assert not (cli_env / "keys.sqlite").exists(), "a dry run seals nothing"


def test_a_dry_run_of_a_clean_file_exits_0(cli_env: Path) -> None:
    rows = [row for line, row in enumerate(_example_rows(), start=2) if line not in (6, 10, 12)]
    clean = _write_csv(cli_env / "clean.csv", rows)
    result = CliRunner().invoke(
        _app(), ["import", str(clean), "--country", "th", "--mapping", str(MAPPING), "--dry-run"]
    )

    assert result.exit_code == 0, result.output
    assert "read 12, valid 12" in result.output
    assert default_report_path(clean).read_text(encoding="utf-8").strip() == ",".join(REPORT_COLUMNS)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--country", "XX"], "--country: 'XX' is not a country"),
        (["--country", "TH", "--mapping", "missing.yaml"], "missing.yaml: cannot be read"),
        (["--country", "TH", "--signing-key", "MM"], "signs as MM, and the rows are TH's"),
        (["--country", "TH", "--file", "cases.ods"], "unknown file type .ods"),
    ],
)
def test_usage_errors_exit_2_and_publish_nothing(cli_env: Path, arguments: list[str], message: str) -> None:
    Signer.generate("MM", "mm-test-1").save(cli_env / "mm.pem")
    file, mapping = str(EXAMPLE), str(MAPPING)
    options: list[str] = []
    for name, value in zip(arguments[::2], arguments[1::2], strict=True):
        if name == "--file":
            file = str(cli_env / value)
        elif name == "--mapping":
            mapping = str(cli_env / value)
        elif name == "--signing-key":
            options += [name, str(cli_env / "mm.pem")]
        else:
            options += [name, value]
    result = CliRunner().invoke(_app(), ["import", file, "--mapping", mapping, "--dry-run", *options])

    assert result.exit_code == EXIT_USAGE, result.output
    assert message in result.output
