"""Publications of the regional statistics: the document and what reads it back, its files, the
topic that keeps them on the real broker, and `lintas stats` publishing month after month."""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner, Result

from hub import cli
from hub.agreements import config_root, default_agreements
from hub.codec import Codec
from hub.contract import AgeBand, AgencyType, CountryCode, ExploitationType, Gender
from hub.events import Event, parse_event
from hub.kafka import ensure_topics, producer, topic_config
from hub.topics import ACCEPTED_EVENTS, REGIONAL_STATS, all_topics
from projections.cases.fold import CaseState
from projections.stats.aggregate import (
    ALL,
    Measure,
    Period,
    Published,
    RegionalStatistics,
    patterns_of,
    regional_statistics,
    to_rows,
)
from projections.stats.kafka import publish_document, read_publications
from projections.stats.publication import (
    CSV_FIELDS,
    FORMAT,
    assert_publishable,
    from_document,
    next_period,
    publication_id,
    to_csv,
    to_document,
    to_xlsx,
)
from projections.stats.rules import DIMENSIONS, PeriodUnit, StatisticsRules, load_rules
from tests.test_codec import fisherman

AGREEMENTS = default_agreements()
RULES = load_rules(config_root() / "statistics.yaml")
JANUARY, FEBRUARY = date(2025, 1, 6), date(2025, 2, 4)


# -- cases -----------------------------------------------------------------------------------------


def person(
    number: int,
    identified_on: date,
    *,
    home: str | None = "MM",
    sex: Gender = Gender.Female,
    to_referral: int | None = None,
) -> CaseState:
    """One case identified in Thailand: an adult, in forced labour, found by the police."""
    at = datetime.combine(identified_on, time(9), tzinfo=UTC)
    referred = at + timedelta(days=to_referral) if to_referral is not None else None
    return CaseState(
        case_id=f"TH-QX{number:05d}Z",
        host=CountryCode.TH,
        home=CountryCode(home) if home else None,
        identified_at=at,
        identified_on=identified_on,
        sex=sex,
        age_band=AgeBand.Adult25To34,
        exploitation_types=(ExploitationType.ForcedLabour,),
        agency_type=AgencyType.LawEnforcement,
        referral_requested_at=referred,
        last_event_at=referred or at,
    )


def sample_states(extra: int = 0) -> list[CaseState]:
    """January: six to Myanmar, two to Laos (withheld); February: seven (and ``extra``) to Myanmar,
    referred after 2 to 8 days."""
    states = [person(n, JANUARY) for n in range(6)]
    states += [person(10 + n, JANUARY + timedelta(days=3), home="LA") for n in range(2)]
    states += [person(20 + n, FEBRUARY, to_referral=2 + n % 7) for n in range(7 + extra)]
    return states


def sample_stats(extra: int = 0, rules: StatisticsRules = RULES) -> RegionalStatistics:
    return regional_statistics(
        sample_states(extra), AGREEMENTS, rules=rules, period=Period("2025-01", "2025-02")
    )


def sample_document(extra: int = 0, published: str = "2025-03") -> dict[str, Any]:
    return to_document(sample_stats(extra), published=published)


def as_published(identifier: str, stats: RegionalStatistics) -> Published:
    """What a reader holds, taken from the flat rows rather than from the document."""
    assert stats.period is not None
    rows = to_rows(stats)
    people = {
        tuple(str(row[dim.value]) for dim in DIMENSIONS): row["value"]
        for row in rows
        if row["indicator"] == "people"
    }
    cases = {
        (str(row["indicator"]), str(row["corridor"])): row["cases"]
        for row in rows
        if row["table"] == "timeliness"
    }
    return Published(
        identifier,
        stats.period,
        stats.rules.rounding_base,
        patterns_of(stats.rules.tables),
        people,  # type: ignore[arg-type]
        cases,  # type: ignore[arg-type]
    )


# -- the document ----------------------------------------------------------------------------------


def test_a_document_reads_back_as_the_figures_it_shows() -> None:
    stats = sample_stats()
    document = to_document(stats, published="2025-03")
    read = from_document(json.loads(json.dumps(document)))
    assert read == as_published(document["id"], stats)
    assert read.period == Period("2025-01", "2025-02", PeriodUnit.MONTH)
    assert any(value is None for value in read.people.values()), "Laos's two people are withheld"


def test_a_document_describes_itself_and_keeps_the_operators_figures_back() -> None:
    document = sample_document()
    assert document["format"] == FORMAT
    assert document["version"] == 1
    assert document["published"] == "2025-03"
    assert document["period"] == {"first": "2025-01", "last": "2025-02", "unit": "month"}
    assert StatisticsRules.model_validate(document["rules"]) == RULES
    assert document["dimensions"] == [dimension.value for dimension in DIMENSIONS]
    assert document["linked"] == []
    assert set(document["notes"]) >= {"suppressed", "rounding"}
    assert "check" not in document
    assert not {"primary", "secondary", "withheld", "narrowest"} & set(json.dumps(document).split('"'))
    everyone = {dim.value: ALL for dim in DIMENSIONS}
    total = next(cell for cell in document["tables"][0]["cells"] if cell["key"] == everyone)
    assert total == {"key": everyone, "value": 15, "suppressed": False}
    assert [entry["corridor"] for entry in document["timeliness"]] == ["TH-LA", "TH-MM", ALL]


def test_the_id_is_a_digest_of_the_content() -> None:
    document = sample_document()
    assert document["id"] == sample_document()["id"] == publication_id(document)
    assert re.fullmatch(r"RS-[0-9a-f]{16}", document["id"])
    assert sample_document(extra=1)["id"] != document["id"], "one more person in February"
    assert sample_document(published="2025-04")["id"] != document["id"]
    changed = copy.deepcopy(document)
    changed["tables"][0]["cells"][-1]["value"] += 1
    with pytest.raises(ValueError, match=r"^id: "):
        from_document(changed)


@pytest.mark.parametrize(
    ("path", "text", "named"),
    [
        (("tables", 0, "title"), "People identified up to 2025-01-31", r"tables\[0\]\.title"),
        (("notes", "rounding"), "see case TH-QX00001Z", r"notes\.rounding"),
        (
            ("tables", 1, "cells", 0, "key", "corridor"),
            "TH-QX00001Z",
            r"tables\[1\]\.cells\[0\]\.key\.corridor",
        ),
        (("timeliness", 0, "corridor"), "MM-2025/7", r"timeliness\[0\]\.corridor"),
        (("reference_month",), "2025-02-28", "reference_month"),
    ],
)
def test_a_day_date_or_a_case_id_is_refused_by_its_path(path: tuple[Any, ...], text: str, named: str) -> None:
    document = sample_document()
    assert_publishable(document)  # corridor ids such as TH-MM are not case ids
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = text
    with pytest.raises(ValueError, match=named):
        assert_publishable(document)


def test_a_document_that_would_hold_a_day_date_is_not_made() -> None:
    tables = [table.model_dump() for table in RULES.tables]
    tables[0]["title"] = "People identified until 2025-02-28"
    rules = StatisticsRules.model_validate({**RULES.model_dump(), "tables": tables})
    with pytest.raises(ValueError, match=r"rules\.tables\[0\]\.title"):
        to_document(sample_stats(rules=rules), published="2025-03")
    with pytest.raises(ValueError, match="published"):
        to_document(sample_stats(), published="2025-03-01")


def _break(document: dict[str, Any], change: str) -> None:
    if change == "format":
        document["format"] = "lintas.rows"
    elif change == "version":
        document["version"] = 2
    elif change == "period":
        del document["period"]
    elif change == "value":
        document["tables"][2]["cells"][0]["value"] = "7"
    elif change == "rules":
        document["rules"]["minimum_frequency"] = 1
    document["id"] = publication_id(document)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("format", "^format: "),
        ("version", "^version: "),
        ("period", "^period: required"),
        ("value", r"^tables\[2\]\.cells\[0\]\.value: "),
        ("rules", r"^rules\.minimum_frequency: "),
    ],
)
def test_a_document_not_of_this_format_is_refused_naming_the_field(change: str, named: str) -> None:
    document = sample_document()
    _break(document, change)
    with pytest.raises(ValueError, match=named):
        from_document(document)


def test_the_next_period_starts_after_the_last_month_published() -> None:
    days = [JANUARY, FEBRUARY]
    assert next_period(days, [], through="2025-02") == Period("2025-01", "2025-02")
    january = as_published(
        "RS-1", regional_statistics(sample_states(), AGREEMENTS, period=Period("2025-01", "2025-01"))
    )
    assert next_period(days, [january], through="2025-03") == Period("2025-02", "2025-03")
    assert next_period(days, [january], through="2025-03", first="2025-01") == Period("2025-01", "2025-03")
    assert next_period([], [], through=None) is None
    with pytest.raises(ValueError, match="nothing new to publish"):
        next_period(days, [january], through="2025-01")
    with pytest.raises(ValueError, match=r"^--from: '2025-1'"):
        next_period(days, [], through="2025-02", first="2025-1")
    with pytest.raises(ValueError, match=r"^--to: "):
        next_period(days, [], through="2025-02", last="February")


# -- files -----------------------------------------------------------------------------------------


def test_the_csv_has_one_row_per_count_and_per_indicator() -> None:
    document = sample_document()
    stream = io.StringIO()
    to_csv(document, stream)
    rows = list(csv.reader(io.StringIO(stream.getvalue())))
    assert tuple(rows[0]) == CSV_FIELDS
    assert (
        "publication",
        "table",
        *DIMENSIONS,
        "indicator",
        "value",
        "cases",
        "observations",
        "suppressed",
    ) == CSV_FIELDS
    counts = sum(len(table["cells"]) for table in document["tables"])
    assert len(rows) - 1 == counts + len(document["timeliness"]) * len(Measure)
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert {record["publication"] for record in records} == {document["id"]}
    withheld = [record for record in records if record["corridor"] == "TH-LA" and record["table"] == "by_sex"]
    assert withheld
    assert all(r["value"] == "" and r["suppressed"] == "true" for r in withheld)


def test_the_workbook_has_a_cross_table_per_table_with_suppressed_cells_marked(tmp_path: Path) -> None:
    document = sample_document()
    path = tmp_path / "stats.xlsx"
    to_xlsx(document, path, lang="th")
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["About", *(table["name"] for table in document["tables"]), "Timeliness"]
    about = [row for row in workbook["About"].iter_rows(values_only=True)]
    assert ("Publication", document["id"]) in about
    assert ("Published", "2025-03") in about
    assert ("minimum_frequency", 5) in about
    assert any(row[0] == "x" and "withheld" in str(row[1]) for row in about)
    by_sex = list(workbook["by_sex"].iter_rows(values_only=True))
    assert by_sex[0][0] == document["tables"][3]["title"]
    laos = next(row for row in by_sex if "(TH-LA)" in str(row[0]))
    myanmar = next(row for row in by_sex if "(TH-MM)" in str(row[0]))
    assert laos[1:] == ("x", "x")
    assert myanmar[1:] == ("x", "x")  # withheld too, else Laos would be the total less Myanmar
    assert by_sex[-1][1:] == (15, 15)
    timeliness = list(workbook["Timeliness"].iter_rows(values_only=True))
    assert len(timeliness) == 1 + len(document["timeliness"])


# -- the topic -------------------------------------------------------------------------------------


def test_the_topic_keeps_publications_forever() -> None:
    assert topic_config(REGIONAL_STATS)["retention.ms"] == "-1"


@pytest.mark.kafka
def test_publications_are_read_back_in_order_without_the_malformed(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    first, second = sample_document(), sample_document(extra=2)

    async def run() -> list[dict[str, Any]]:
        await ensure_topics(kafka_bootstrap, [unique_topic], partitions=3)
        assert await asyncio.wait_for(read_publications(kafka_bootstrap, topic=unique_topic), 30) == []
        await publish_document(kafka_bootstrap, first, topic=unique_topic)
        kafka_producer = producer(kafka_bootstrap)
        await kafka_producer.start()
        try:
            for value in (b"not json", b'{"table": "by_sex", "value": 3}'):
                await kafka_producer.send_and_wait(unique_topic, value, partition=1)
        finally:
            await kafka_producer.stop()
        await publish_document(kafka_bootstrap, second, topic=unique_topic)
        await publish_document(kafka_bootstrap, first, topic=unique_topic)  # the same one again
        return await asyncio.wait_for(read_publications(kafka_bootstrap, topic=unique_topic), 30)

    assert asyncio.run(run()) == [first, second]


# -- `lintas stats` --------------------------------------------------------------------------------


def identified(number: int, identified_on: date, *, recorded: datetime | None = None) -> Event:
    """A Myanmar fisherman identified in Thailand on ``identified_on``, reported then or later."""
    at = recorded or datetime.combine(identified_on, time(10), tzinfo=UTC)
    day = identified_on.isoformat()
    return parse_event(
        fisherman(
            envelope__event_id=str(uuid.uuid4()),
            envelope__case_id=f"TH-ST{number:05d}",
            envelope__occurred_at=at,
            envelope__recorded_at=at + timedelta(hours=1),
            identified_on=day,
            reflection_period_start=day,
        ),
        now=datetime.now(UTC),
    )


def log_events(bootstrap: str, events: Sequence[Event]) -> None:
    """Write events to the hub's log of accepted events, as the router does."""

    async def run() -> None:
        await ensure_topics(bootstrap, all_topics(["TH", "MM"]), partitions=2)
        kafka_producer = producer(bootstrap)
        await kafka_producer.start()
        try:
            for event in events:
                await kafka_producer.send(
                    ACCEPTED_EVENTS, Codec().encode(event), key=event.envelope.case_id.encode()
                )
            await kafka_producer.flush()
        finally:
            await kafka_producer.stop()

    asyncio.run(asyncio.wait_for(run(), 60))


def lintas_stats(bootstrap: str, *options: str) -> Result:
    return CliRunner().invoke(cli.app, ["stats", "-b", bootstrap, *options])


def publications(bootstrap: str) -> list[dict[str, Any]]:
    return asyncio.run(asyncio.wait_for(read_publications(bootstrap), 30))


@pytest.mark.kafka
def test_each_publication_starts_the_month_after_the_last(own_broker: str, tmp_path: Path) -> None:
    log_events(
        own_broker,
        [identified(n, JANUARY) for n in range(6)] + [identified(10 + n, FEBRUARY) for n in range(7)],
    )
    files = {name: tmp_path / f"january.{name}" for name in ("json", "csv", "xlsx")}
    options = [arg for name, path in files.items() for arg in (f"--{name}", str(path))]

    january = lintas_stats(own_broker, "--as-of", "2025-01-31", "--publish", *options)
    assert january.exit_code == 0, january.output
    assert "People identified: 6." in january.stdout
    assert "check: " in january.stderr
    assert "withheld" in january.stderr
    written = json.loads(files["json"].read_text(encoding="utf-8"))
    assert f"published {written['id']} (2025-01..2025-01) to {REGIONAL_STATS}" in january.stdout
    assert files["csv"].read_text(encoding="utf-8").startswith(",".join(CSV_FIELDS))
    assert "by_sex" in load_workbook(files["xlsx"]).sheetnames

    february = lintas_stats(own_broker, "--as-of", "2025-02-28", "--publish")
    assert february.exit_code == 0, february.output
    assert "(2025-02..2025-02) to lintas.regional.stats" in february.stdout

    published = publications(own_broker)
    assert published[0] == written
    assert [(d["period"]["first"], d["period"]["last"]) for d in published] == [
        ("2025-01", "2025-01"),
        ("2025-02", "2025-02"),
    ]
    again = lintas_stats(own_broker, "--as-of", "2025-02-28", "--publish")
    assert again.exit_code == 1
    assert "not published: " in again.stderr
    assert "nothing new to publish" in again.stderr
    assert len(publications(own_broker)) == 2


@pytest.mark.kafka
def test_an_overlapping_publication_whose_months_changed_is_refused(own_broker: str, tmp_path: Path) -> None:
    log_events(own_broker, [identified(n, JANUARY) for n in range(6)])
    first = lintas_stats(own_broker, "--as-of", "2025-01-31", "--publish")
    assert first.exit_code == 0, first.output
    (january,) = publications(own_broker)
    # A January case reported in February: January's published counts are no longer true.
    log_events(
        own_broker, [identified(99, JANUARY + timedelta(days=14), recorded=datetime(2025, 2, 10, tzinfo=UTC))]
    )

    target = tmp_path / "both.json"
    refused = lintas_stats(
        own_broker,
        "--from",
        "2025-01",
        "--to",
        "2025-02",
        "--as-of",
        "2025-02-28",
        "--publish",
        "--json",
        str(target),
    )
    assert refused.exit_code == 1, refused.output
    assert "not published: " in refused.stderr
    assert january["id"] in refused.stderr
    assert not target.exists()
    assert publications(own_broker) == [january]

    bad = lintas_stats(own_broker, "--from", "2025-13", "--publish")
    assert bad.exit_code == 1
    assert "not published: --from: '2025-13'" in bad.stderr
