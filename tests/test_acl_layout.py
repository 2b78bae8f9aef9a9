"""The principals and their ACLs, without Kafka: each principal can do its job and nothing else, no
country reaches another's topics or groups, and applying the layout is idempotent and leaves others'
ACLs alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.readstore.projector import projected_topics
from connectors.webhooks import DELIVERIES
from hub import topics
from hub.security.principals import (
    OPERATOR,
    Binding,
    Operation,
    PatternType,
    ResourceType,
    Role,
    SecurityError,
    diff,
    is_managed,
    layout,
    managed_principals,
    normalise_countries,
    permits,
    principal,
    principals,
    render_table,
)
from hub.settings import DEFAULT_COUNTRIES
from hub.worker import GROUP_ID as ROUTER_GROUP
from projections.alerts.worker import GROUP_ID as ALERTS_GROUP

T, G, X = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID
LIT, PRE = PatternType.LITERAL, PatternType.PREFIXED
R, W, D, DC = Operation.READ, Operation.WRITE, Operation.DESCRIBE, Operation.DESCRIBE_CONFIGS
EVERY_OPERATION = tuple(Operation)

COUNTRY = st.sampled_from([*DEFAULT_COUNTRIES, "FR", "AU"])
COUNTRIES = st.lists(COUNTRY, min_size=1, max_size=6, unique=True)
DOCUMENTED = ("TH", "MM")
# The properties take a few ms an example, far more on a loaded machine: no deadline (as test_codec.py).


def of(bindings: list[Binding], who: str) -> set[Binding]:
    return {binding for binding in bindings if binding.principal == who}


def country_resources(country: str) -> list[tuple[ResourceType, str]]:
    cc = country.lower()
    return [
        *((T, name) for name in topics.country_topics(country)),
        (G, f"lintas.nrm.{cc}.receipts-reader"),
        (G, f"lintas.fp.{cc}.inbox-reader"),
    ]


# -- given two countries, each national system and focal point has exactly its job --------------------


def test_a_national_system_publishes_its_events_and_reads_its_receipts_in_its_own_groups() -> None:
    assert of(layout(["TH", "MM"]), "nrm-th") == {
        Binding("nrm-th", T, "lintas.nrm.th.events", LIT, W),
        Binding("nrm-th", T, "lintas.nrm.th.events", LIT, D),
        Binding("nrm-th", T, "lintas.nrm.th.receipts", LIT, R),
        Binding("nrm-th", T, "lintas.nrm.th.receipts", LIT, D),
        Binding("nrm-th", G, "lintas.nrm.th.", PRE, R),
    }


def test_a_focal_point_reads_only_its_inbox_and_alerts_in_its_own_groups() -> None:
    assert of(layout(["TH", "MM"]), "fp-mm") == {
        Binding("fp-mm", T, "lintas.focal.mm.inbox", LIT, R),
        Binding("fp-mm", T, "lintas.focal.mm.inbox", LIT, D),
        Binding("fp-mm", T, "lintas.alerts.mm", LIT, R),
        Binding("fp-mm", T, "lintas.alerts.mm", LIT, D),
        Binding("fp-mm", G, "lintas.fp.mm.", PRE, R),
    }


def test_the_operator_is_listed_and_needs_no_acl() -> None:
    listed = principals(["TH"])
    assert listed[0].name == OPERATOR
    assert listed[0].role is Role.OPERATOR
    assert of(layout(["TH"]), OPERATOR) == set()
    assert not is_managed(OPERATOR)


def test_principals_are_the_hub_workers_then_two_per_country() -> None:
    names = [p.name for p in principals(["mm", "TH", "TH"])]
    assert names == [
        "operator",
        "router",
        "alerts",
        "projector",
        "api",
        "webhooks",
        "stats",
        "nrm-mm",
        "fp-mm",
        "nrm-th",
        "fp-th",
    ]
    assert principal("fp-th", ["TH"]).country == "TH"
    with pytest.raises(SecurityError, match="'fp-la': not a principal"):
        principal("fp-la", ["TH"])


# -- what the workers' code does, each allowed -----------------------------------------------------------


def test_the_router_can_do_what_hub_worker_and_the_processor_do() -> None:
    bindings = layout(DOCUMENTED)
    instance = "a"
    for country in DOCUMENTED:
        # Subscribed by pattern: it sees (Describe) and consumes (Read) each national topic.
        assert re.match(topics.NRM_EVENTS_PATTERN, topics.nrm_events(country))
        for op in (R, D):
            assert permits(bindings, "router", T, topics.nrm_events(country), op)
        for output in (topics.nrm_receipts(country), topics.focal_inbox(country)):
            for op in (W, D, DC):  # DescribeConfigs: the topic's max.message.bytes
                assert permits(bindings, "router", T, output, op)
    for output in (topics.DEADLETTER, topics.ACCEPTED_EVENTS):
        assert permits(bindings, "router", T, output, W)
        assert permits(bindings, "router", T, output, DC)
    for own in (topics.ROUTER_STATE, topics.ROUTER_IDS):
        assert all(permits(bindings, "router", T, own, op) for op in (R, W, D))
    assert permits(bindings, "router", G, ROUTER_GROUP, R)
    assert permits(bindings, "router", X, f"{ROUTER_GROUP}-{instance}", W)
    for assigned in ("lintas-ids-4242", "lintas-restore-4242"):  # coordinator look-up only
        assert permits(bindings, "router", G, assigned, D)
        assert not permits(bindings, "router", G, assigned, R)
    # Nothing it only has to write may it read.
    assert not permits(bindings, "router", T, topics.focal_inbox("TH"), R)
    assert not permits(bindings, "router", T, topics.AUDIT, D)


def test_the_alert_worker_can_do_what_projections_alerts_worker_does() -> None:
    bindings = layout(DOCUMENTED)
    assert permits(bindings, "alerts", T, topics.ACCEPTED_EVENTS, R)
    assert all(permits(bindings, "alerts", T, topics.PROJECTION_STATE, op) for op in (R, W, D))
    assert all(permits(bindings, "alerts", T, topics.alerts(c), W) for c in DOCUMENTED)
    assert permits(bindings, "alerts", G, ALERTS_GROUP, R)
    assert permits(bindings, "alerts", X, f"{ALERTS_GROUP}-0", W)
    assert permits(bindings, "alerts", G, "lintas-restore-1", D)
    assert not permits(bindings, "alerts", X, f"{ROUTER_GROUP}-0", W)
    assert not permits(bindings, "alerts", T, topics.focal_inbox("TH"), R)


def test_the_projector_reads_what_the_read_store_projects_and_writes_nothing() -> None:
    bindings = layout(DOCUMENTED)
    for name in projected_topics(DOCUMENTED):
        assert permits(bindings, "projector", T, name, R)
    assert {b.operation for b in of(bindings, "projector")} == {R, D}
    assert {b.resource_type for b in of(bindings, "projector")} == {T}  # assigned, no group


def test_the_api_publishes_for_every_national_system_audits_and_projects() -> None:
    bindings = layout(DOCUMENTED)
    for country in DOCUMENTED:
        assert permits(bindings, "api", T, topics.nrm_events(country), W)
        assert not permits(bindings, "api", T, topics.nrm_events(country), R)
    assert permits(bindings, "api", T, topics.AUDIT, W)
    assert permits(bindings, "api", X, "lintas-api-0123456789ab", W)
    for name in projected_topics(DOCUMENTED):  # the projector runs in the API process
        assert permits(bindings, "api", T, name, R)
    assert not permits(bindings, "api", T, topics.focal_inbox("TH"), W)


def test_the_webhook_worker_reads_alerts_and_inboxes_and_logs_its_deliveries() -> None:
    bindings = layout(DOCUMENTED)
    for country in DOCUMENTED:
        assert permits(bindings, "webhooks", T, topics.alerts(country), R)
        assert permits(bindings, "webhooks", T, topics.focal_inbox(country), R)
    assert permits(bindings, "webhooks", T, DELIVERIES, W)
    assert not permits(bindings, "webhooks", T, topics.ACCEPTED_EVENTS, R)


def test_the_statistics_publisher_reads_the_accepted_log_and_publishes() -> None:
    bindings = layout(DOCUMENTED)
    assert permits(bindings, "stats", T, topics.ACCEPTED_EVENTS, R)
    assert permits(bindings, "stats", T, topics.REGIONAL_STATS, R)
    assert permits(bindings, "stats", T, topics.REGIONAL_STATS, W)
    assert not permits(bindings, "stats", T, topics.focal_inbox("TH"), R)


# -- properties over any set of countries ------------------------------------------------------------


@settings(deadline=None)
@given(COUNTRIES)
def test_no_country_reaches_another_countrys_topics_or_groups(countries: list[str]) -> None:
    bindings = layout(countries)
    for country in countries:
        for other in countries:
            if other == country:
                continue
            for who in (f"nrm-{country.lower()}", f"fp-{country.lower()}"):
                own = of(bindings, who)
                for kind, name in country_resources(other):
                    assert not any(permits(own, who, kind, name, op) for op in EVERY_OPERATION), (who, name)


@settings(deadline=None)
@given(COUNTRIES)
def test_focal_points_never_write_and_national_systems_write_only_their_events(countries: list[str]) -> None:
    bindings = layout(countries)
    for binding in bindings:
        if binding.principal.startswith("fp-"):
            assert binding.operation in (R, D)
        if binding.principal.startswith("nrm-") and binding.operation is W:
            assert binding.resource_name == topics.nrm_events(binding.principal.removeprefix("nrm-").upper())


@settings(deadline=None)
@given(COUNTRIES)
def test_every_acl_allows_a_hub_topic_or_a_family_only_where_one_is_needed(countries: list[str]) -> None:
    bindings = layout(countries)
    known = set(topics.all_topics(countries))
    for binding in bindings:
        assert binding.permission == "ALLOW"
        assert binding.host == "*"
        assert binding.resource_type is not ResourceType.CLUSTER  # Write on a topic implies IdempotentWrite
        if binding.resource_type is T:
            assert binding.pattern_type is LIT
            assert binding.resource_name in known
        if binding.pattern_type is PRE:
            assert binding.resource_name.endswith(("-", "."))
    # Every hub topic is somebody's to write, and (but the operators' own) somebody's to read.
    names = {b.principal for b in bindings}
    for name in known - {topics.DEADLETTER, DELIVERIES}:
        assert any(permits(bindings, who, T, name, R) for who in names), name
    for name in known:
        assert any(permits(bindings, who, T, name, W) for who in names), name


@settings(deadline=None)
@given(COUNTRIES, st.randoms(use_true_random=False))
def test_the_layout_is_sorted_unique_and_the_same_whatever_the_order_and_case(
    countries: list[str], rng: object
) -> None:
    shuffled = list(countries)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    bindings = layout(countries)
    assert bindings == sorted(set(bindings))
    assert layout([c.lower() for c in shuffled] + shuffled) == bindings


@settings(deadline=None)
@given(COUNTRIES, COUNTRIES)
def test_adding_countries_only_adds_acls(first: list[str], more: list[str]) -> None:
    assert set(layout(first)) <= set(layout(first + more))


def test_a_country_code_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="'THA'"):
        normalise_countries(["THA"])


# -- permits: Kafka's own rules --------------------------------------------------------------------------


def test_permits_follows_the_authorizer_implications_prefixes_and_denials() -> None:
    read = Binding("x", T, "lintas.a", LIT, R)
    prefixed = Binding("x", G, "lintas.fp.th.", PRE, R)
    assert permits([read], "x", T, "lintas.a", D)  # Read implies Describe
    assert not permits([read], "x", T, "lintas.a", W)
    assert not permits([read], "y", T, "lintas.a", R)
    assert not permits([read], "x", T, "lintas.ab", R)  # literal: exactly
    assert permits([prefixed], "x", G, "lintas.fp.th.inbox", R)
    assert not permits([prefixed], "x", G, "lintas.fp.tha", R)
    assert not permits([prefixed], "x", T, "lintas.fp.th.inbox", R)  # another resource type
    assert permits([Binding("x", T, "t", LIT, Operation.ALL)], "x", T, "t", W)
    assert not permits([read, Binding("x", T, "lintas.", PRE, R, "DENY")], "x", T, "lintas.a", R)


# -- diff: what apply does ---------------------------------------------------------------------------------

NAMES = st.sampled_from(["router", "alerts", "nrm-th", "fp-mm", "fp-la", "someone-else", "User:x"])
BINDINGS = st.builds(
    Binding,
    principal=NAMES,
    resource_type=st.sampled_from(ResourceType),
    resource_name=st.sampled_from(["lintas.nrm.th.events", "lintas.focal.mm.inbox", "lintas-", "other"]),
    pattern_type=st.sampled_from(PatternType),
    operation=st.sampled_from(Operation),
    permission=st.sampled_from(["ALLOW", "DENY"]),
    host=st.sampled_from(["*", "10.0.0.1"]),
)


@settings(deadline=None)
@given(st.sets(BINDINGS, max_size=30), COUNTRIES)
def test_applying_the_diff_gives_the_layout_keeps_others_acls_and_is_idempotent(
    current: set[Binding], countries: list[str]
) -> None:
    wanted = set(layout(countries))
    managed = managed_principals(countries, current)
    to_create, to_delete = diff(current, wanted, managed)
    after = (current - to_delete) | to_create

    assert to_create.isdisjoint(current)
    assert to_delete <= current
    assert to_delete.isdisjoint(wanted)
    assert {b for b in after if b.principal in managed} == {b for b in wanted if b.principal in managed}
    assert {b for b in after if b.principal not in managed} == {
        b for b in current | wanted if b.principal not in managed
    }
    assert diff(after, wanted, managed_principals(countries, after)) == (set(), set())


def test_a_country_no_longer_configured_loses_its_acls_and_others_keep_theirs() -> None:
    current = set(layout(["TH", "LA"])) | {Binding("auditor", T, "lintas.audit", LIT, R)}
    to_create, to_delete = diff(current, set(layout(["TH"])), managed_principals(["TH"], current))
    assert to_create == set()
    assert {b.principal for b in to_delete} == {
        "nrm-la",
        "fp-la",
        "router",
        "alerts",
        "api",
        "projector",
        "webhooks",
    }
    assert all("la" in b.resource_name.split(".") for b in to_delete)


# -- the table and the documentation ------------------------------------------------------------------------


def test_the_table_has_one_row_per_principal_and_resource_pattern() -> None:
    bindings = layout(["TH"])
    table = render_table(bindings)
    rows = table.splitlines()[2:]
    patterns = {(b.principal, b.resource_type, b.resource_name, b.pattern_type) for b in bindings}
    assert len(rows) == len(patterns)
    assert "| nrm-th | GROUP | `lintas.nrm.th.*` | PREFIXED | ALLOW | READ |" in rows
    assert "| nrm-th | TOPIC | `lintas.nrm.th.events` | LITERAL | ALLOW | WRITE, DESCRIBE |" in rows


def test_the_documented_table_is_the_layout() -> None:
    text = (Path(__file__).parent.parent / "docs" / "security.md").read_text(encoding="utf-8")
    begin, end = "<!-- acl-table: begin -->\n", "<!-- acl-table: end -->"
    documented = text.split(begin, 1)[1].split(end, 1)[0]
    assert documented.strip() == render_table(layout(DOCUMENTED)).strip(), (
        "docs/security.md: regenerate the table with `lintas acl show --countries TH,MM --markdown`"
    )
