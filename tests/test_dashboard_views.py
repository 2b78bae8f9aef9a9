"""The dashboard's pure views: a focal point's backlog, the statistics' tables and flows with their
withheld cells, and the operator's worker rows."""

from __future__ import annotations

import copy
import functools
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.dashboard.i18n import Words, negotiate
from connectors.dashboard.views import backlog, cross_table, flows, timeliness_over_time, worker_rows
from projections.cases.fold import fold
from tests.test_fold import stream
from tests.test_stats_publication import sample_document

WORDS = Words("en")


@functools.cache
def _sample() -> dict[str, Any]:
    return sample_document()


def _flows_document(cells: list[tuple[str, int | None, bool]]) -> dict[str, Any]:
    document = copy.deepcopy(_sample())
    document["tables"] = [
        {
            "name": "by_period",
            "title": "People identified by corridor and period",
            "rows": ["corridor"],
            "column": "period",
            "multi_counted": False,
            "cells": [
                {"key": {"corridor": corridor, "period": "*"}, "value": value, "suppressed": suppressed}
                for corridor, value, suppressed in cells
            ],
        }
    ]
    return document


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["TH-MM", "TH-LA", "TH-KH", "MY-ID", "VN-CN"]), st.integers(5, 500), st.booleans()
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda cell: cell[0],
    )
)
@settings(deadline=None)
def test_a_withheld_corridor_is_drawn_thin_and_the_others_in_proportion(
    cells: list[tuple[str, int, bool]],
) -> None:
    drawn = flows(_flows_document([(c, None if s else v, s) for c, v, s in cells]), WORDS)
    assert drawn is not None
    by_label = {band.label.split("(")[-1].rstrip(")"): band for band in drawn.bands}
    shown = [(c, v) for c, v, s in cells if not s]
    for corridor, _value, suppressed in cells:
        band = by_label[corridor]
        assert band.withheld == suppressed
        if suppressed:
            assert band.width == 3.0
            assert band.figure == "<5"
            assert not band.show_figure
    for (a, va), (b, vb) in itertools.pairwise(shown):
        assert abs(by_label[a].width / va - by_label[b].width / vb) < 1e-6


def test_a_cross_table_shows_withheld_cells_as_under_k_with_totals() -> None:
    document = sample_document()
    table = cross_table(document, "sex_by_age_band", WORDS)
    assert table is not None
    assert table.columns[-1] == "Total"
    assert table.rows[-1][0] == "Total"
    published = next(t for t in document["tables"] if t["name"] == "sex_by_age_band")
    withheld = sum(1 for cell in published["cells"] if cell["suppressed"])
    marks = sum(cell == "<5" for _, cells in table.rows for cell in cells)
    assert marks == withheld == len(table.withheld)


def test_timeliness_rows_follow_the_publications_in_order() -> None:
    first, second = sample_document(published="2026-10"), sample_document(extra=3, published="2026-11")
    rows = timeliness_over_time([first, second], WORDS)
    assert [row.publication for row in rows] == [first["id"], second["id"]]
    assert all(len(row.figures) == 5 for row in rows)


@given(st.integers(0, 2**16))
@settings(deadline=None, max_examples=30)
def test_the_backlog_counts_each_open_case_once_per_partner(seed: int) -> None:
    states = list(fold(stream(seed, cases=30)).values())
    for country in ("TH", "MM", "LA"):
        rows = backlog(states, country)
        expected: dict[str, int] = {}
        for state in states:
            parties = {state.host.value, *([state.home.value] if state.home else []), *state.transit}
            if state.stage.value == "closed" or country not in parties:
                continue
            for partner in sorted(parties - {country}) or ["--"]:
                expected[partner] = expected.get(partner, 0) + 1
        assert {row.partner: row.total for row in rows} == expected
        assert [row.total for row in rows] == sorted((row.total for row in rows), reverse=True)


def test_a_silent_worker_is_shown_as_silent_with_its_lag() -> None:
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    rows = worker_rows(
        [
            (
                "router-0",
                {
                    "state": "running",
                    "updated": now.isoformat(),
                    "lag": {"a/0": 3, "a/1": 4},
                    "partitions": [0, 1],
                },
            ),
            (
                "alerts-0",
                {"state": "running", "updated": (now - timedelta(minutes=5)).isoformat(), "lag": {}},
            ),
        ],
        now=now,
    )
    assert [(r.name, r.state, r.lag, r.live) for r in rows] == [
        ("alerts-0", "silent", 0, False),
        ("router-0", "running", 7, True),
    ]


def test_the_browser_s_language_is_taken_when_the_dashboard_speaks_it() -> None:
    assert negotiate("my-MM,my;q=0.9,en;q=0.5") == "my"
    assert negotiate("tl-PH") == "fil"
    assert negotiate("de-DE,fr;q=0.8") == "en"
    assert negotiate(None) == "en"
