"""The HTTP API on a real server on loopback, with the router on the real broker: a national system
goes from a credential to a routed event with a receipt; a focal point reads its inbox, case threads
(audited first), alerts (live) and agendas; every refusal is a problem document and loses nothing."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from connectors.api.audit import AuditLog
from connectors.api.cli import OPENAPI_FILE, openapi_text
from connectors.api.credentials import Role
from connectors.readstore.projector import Projector
from connectors.readstore.store import ReadStore
from hub import cli
from hub.codec import Codec
from hub.contract import Alert, AlertLevel, CountryCode, ObligationKind
from hub.kafka import producer, read_all
from hub.topics import AUDIT, alerts, nrm_events
from projections.stats.kafka import publish_document
from tests.apiserver import COUNTRIES, LiveApi, as_json, identified, live_api
from tests.test_stats_publication import sample_document

pytestmark = pytest.mark.kafka
PROBLEM = "application/problem+json"
PURPOSE = {"X-Lintas-Purpose": "preparing the repatriation"}


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    yield from live_api(kafka_bootstrap, tmp_path_factory.mktemp("api"))


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["detail"]
    return body


def _published(bootstrap: str, country: str, case_ids: set[str]) -> list[Any]:
    records = asyncio.run(read_all(bootstrap, [nrm_events(country)]))
    return [r for r in records if r.key is not None and r.key.decode() in case_ids]


def test_a_national_system_goes_from_a_credential_to_a_routed_event_with_a_receipt(api: LiveApi) -> None:
    event = identified("TH", "MM")
    with api.client("TH", Role.NATIONAL_SYSTEM, "TH-DSDW") as thai:
        answer = thai.post("/v1/events", params={"wait": 20}, json=as_json(event))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["event_id"] == str(event.envelope.event_id)
        assert body["status"] == "Accepted"
        assert body["receipt"]["routed_to"] == ["MM"]
        assert answer.headers["location"] == f"/v1/receipts/{event.envelope.event_id}"
        receipt = thai.get(body["receipt_url"])
        assert receipt.status_code == 200
        assert receipt.json()["status"] == "Accepted"
        # Sent again: harmless, a duplicate, routed once.
        again = thai.post("/v1/events", params={"wait": 20}, json=as_json(event))
        assert again.status_code == 200
        assert again.json()["status"] == "Duplicate"
    # Another country's system cannot see that receipt.
    with api.client("MM", Role.NATIONAL_SYSTEM) as other:
        _problem(other.get(f"/v1/receipts/{event.envelope.event_id}"), 404)
    with api.client("MM", Role.FOCAL_POINT) as myanmar:
        items = api.wait_for(
            lambda: myanmar.get("/v1/inbox", params={"case_id": event.envelope.case_id}).json()["items"]
        )
        assert [item["event_id"] for item in items] == [str(event.envelope.event_id)]


def test_without_wait_the_answer_is_202_with_the_receipt_url(api: LiveApi) -> None:
    event = identified("TH", "KH")
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        answer = thai.post("/v1/events", json=as_json(event))
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "pending"
        receipt = api.wait_for(lambda: thai.get(answer.json()["receipt_url"]).status_code == 200 or None)
        assert receipt


def test_a_rejected_event_is_answered_with_its_receipt_and_reason(api: LiveApi) -> None:
    # Lao PDR and the Philippines have no agreement: the router refuses to route it.
    event = identified("LA", "PH")
    with api.client("LA", Role.NATIONAL_SYSTEM) as lao:
        answer = lao.post("/v1/events", params={"wait": 20}, json=as_json(event))
    assert answer.status_code == 422, answer.text
    assert answer.json()["status"] == "Rejected"
    assert answer.json()["receipt"]["reason_code"] == "no_agreement"


def test_a_batch_is_published_whole_and_answered_per_event(api: LiveApi) -> None:
    events = [identified("TH", "MM"), identified("TH", "LA"), identified("TH", "KH")]
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        answer = thai.post("/v1/events", params={"wait": 20}, json={"events": [as_json(e) for e in events]})
    assert answer.status_code == 200, answer.text
    assert [item["status"] for item in answer.json()["events"]] == ["Accepted"] * 3


def test_a_batch_with_one_bad_event_publishes_nothing_and_names_its_index(
    api: LiveApi, kafka_bootstrap: str
) -> None:
    good, bad = identified("TH", "MM"), as_json(identified("TH", "MM"))
    bad["age_band"] = "Elderly"
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        body = _problem(thai.post("/v1/events", json={"events": [as_json(good), bad]}), 422)
    assert body["errors"] == [
        {"path": "age_band", "reason": body["errors"][0]["reason"], "index": 1},
    ]
    assert "unknown code 'Elderly'" in body["errors"][0]["reason"]
    cases = {good.envelope.case_id, bad["envelope"]["case_id"]}
    assert _published(kafka_bootstrap, "TH", cases) == []


def test_every_field_at_fault_is_named(api: LiveApi) -> None:
    event = as_json(identified("TH", "MM"))
    event["sex"] = "X"
    event["reflection_period_days"] = "forty-five"
    event["favourite_colour"] = "blue"
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        body = _problem(thai.post("/v1/events", json=event), 422)
    paths = {error["path"]: error["reason"] for error in body["errors"]}
    assert set(paths) == {"sex", "reflection_period_days", "favourite_colour"}
    assert "unknown code 'X'" in paths["sex"]
    assert paths["favourite_colour"] == "field is not part of the contract"


def test_the_rules_beyond_the_schema_are_the_routers(api: LiveApi) -> None:
    event = as_json(identified("TH", "MM"))
    event["envelope"]["occurred_at"] = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        body = _problem(thai.post("/v1/events", json=event), 422)
    assert body["errors"][0]["path"] == "envelope.occurred_at"
    assert "in the future" in body["errors"][0]["reason"]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[]", "application/json", 422),
        (b'"an event"', "application/json", 422),
        (b'{"events": []}', "application/json", 422),
        (b'{"envelope": {"event_type": "VictimFound"}}', "application/json", 422),
        (b"<event/>", "application/xml", 415),
        (b"{}", "", 415),
        (b"x" * (5 * 1024 * 1024), "application/json", 413),
    ],
)
def test_bad_bodies_are_refused_with_a_problem(
    api: LiveApi, content: bytes, content_type: str, status: int
) -> None:
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        headers = {"Content-Type": content_type} if content_type else {}
        _problem(thai.post("/v1/events", content=content, headers=headers), status)


def test_a_batch_over_the_limit_is_refused(api: LiveApi) -> None:
    assert api.running is not None
    limit = api.running.services.max_batch_events
    many = [as_json(identified("TH", "MM"))] * (limit + 1)
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        body = _problem(thai.post("/v1/events", json={"events": many}), 413)
    assert f"limit of {limit}" in body["detail"]


def test_credentials_missing_garbage_expired_or_revoked_are_refused(api: LiveApi) -> None:
    event = as_json(identified("TH", "MM"))
    expired = api.credentials.issue(
        "TH", Role.NATIONAL_SYSTEM, validity=timedelta(seconds=1), now=datetime.now(UTC) - timedelta(hours=1)
    )
    revoked = api.credentials.issue("TH", Role.NATIONAL_SYSTEM)
    assert api.credentials.revoke(revoked.principal.credential_id)
    forged = revoked.token[:-4] + "AAAA"
    with api.anonymous() as anyone:
        missing = _problem(anyone.post("/v1/events", json=event), 401)
        assert "bearer credential is required" in missing["detail"]
        for token, reason in [
            ("not-a-token", "not a Lintas token"),
            (expired.token, "expired"),
            (revoked.token, "revoked"),
            (forged, "unknown credential"),
        ]:
            answer = anyone.post("/v1/events", json=event, headers={"Authorization": f"Bearer {token}"})
            assert reason in _problem(answer, 401)["detail"]
            assert answer.headers["www-authenticate"].startswith("Bearer")


def test_no_principal_reaches_beyond_its_role_and_country(api: LiveApi, kafka_bootstrap: str) -> None:
    thai_event = identified("TH", "MM")
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        assert thai.post("/v1/events", params={"wait": 20}, json=as_json(thai_event)).status_code == 200
    case_id = thai_event.envelope.case_id
    with api.client("MM", Role.NATIONAL_SYSTEM) as myanmar_system:
        body = _problem(myanmar_system.post("/v1/events", json=as_json(identified("TH", "MM"))), 403)
        assert "source_country" in body["detail"]
        _problem(myanmar_system.get("/v1/inbox"), 403)
    with api.client("TH", Role.NATIONAL_SYSTEM, "TH-DLPW") as labour:
        body = _problem(labour.post("/v1/events", json=as_json(identified("TH", "MM"))), 403)
        assert "source_agency" in body["detail"]
    with api.client("MM", Role.FOCAL_POINT) as myanmar:
        _problem(myanmar.post("/v1/events", json=as_json(identified("MM", "TH"))), 403)
    with api.client("VN", Role.FOCAL_POINT) as vietnam:
        _problem(vietnam.get(f"/v1/cases/{case_id}", headers=PURPOSE), 404)
        _problem(vietnam.get(f"/v1/cases/{case_id}/access-log"), 404)
        assert vietnam.get("/v1/inbox", params={"case_id": case_id}).json()["items"] == []
        _problem(vietnam.get("/v1/agendas/SG"), 404)  # no agreement joins VN and SG
        _problem(vietnam.get(f"/v1/receipts/{thai_event.envelope.event_id}"), 403)
    with api.client("PH", Role.REGIONAL) as regional:
        _problem(regional.get(f"/v1/cases/{case_id}", headers=PURPOSE), 403)
        _problem(regional.get("/v1/inbox"), 403)
        _problem(regional.get("/v1/alerts"), 403)
    with api.client("TH", Role.OPERATOR) as operator:
        _problem(operator.get(f"/v1/cases/{case_id}", headers=PURPOSE), 403)
        _problem(operator.get("/v1/stats"), 403)
    assert _published(kafka_bootstrap, "MM", {case_id}) == []


def test_the_regional_body_reads_the_statistics_as_published(api: LiveApi, kafka_bootstrap: str) -> None:
    # A few more people each run: a document of its own, published after any other.
    document = sample_document(extra=uuid.uuid4().int % 50)
    asyncio.run(asyncio.wait_for(publish_document(kafka_bootstrap, document), 30))
    path = f"/v1/stats/{document['id']}"
    with api.client("PH", Role.REGIONAL) as regional:
        api.wait_for(lambda: regional.get(path).status_code == 200, 60)
        assert regional.get(path).json() == document
        latest = regional.get("/v1/stats")
        assert latest.status_code == 200, latest.text
        assert latest.json() == document
        assert not re.search(r"TH-QX\d{5}Z|\d{4}-\d{2}-\d{2}", latest.text), "no case id, no day"
        assert "check" not in latest.json()
        _problem(regional.get("/v1/stats/RS-0000000000000000"), 404)
    with api.client("TH", Role.OPERATOR) as operator:
        _problem(operator.get("/v1/stats"), 403)
        _problem(operator.get(path), 403)
    with api.client("MM", Role.FOCAL_POINT) as myanmar:
        _problem(myanmar.get(path), 403)


def test_a_case_thread_is_audited_before_it_is_answered(api: LiveApi, kafka_bootstrap: str) -> None:
    event = identified("TH", "MM", personal__family_name="Kyaw")
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        assert thai.post("/v1/events", params={"wait": 20}, json=as_json(event)).status_code == 200
    case_id = event.envelope.case_id
    with api.client("MM", Role.FOCAL_POINT) as myanmar:
        api.wait_for(lambda: myanmar.get("/v1/inbox", params={"case_id": case_id}).json()["items"])
        _problem(myanmar.get(f"/v1/cases/{case_id}"), 400)  # no purpose given
        answer = myanmar.get(f"/v1/cases/{case_id}", headers={**PURPOSE, "X-Request-ID": "req-" + case_id})
        assert answer.status_code == 200, answer.text
        # The audit record is on the log by the time the answer arrives.
        logged = [
            json.loads(record.value)
            for record in asyncio.run(read_all(kafka_bootstrap, [AUDIT]))
            if json.loads(record.value)["request_id"] == "req-" + case_id
        ]
        thread = answer.json()
        assert thread["stage"] == "identified"
        assert thread["home"] == "MM"
        [shown] = thread["events"]
        assert shown["event"]["personal"]["family_name"] == "Kyaw"
        assert "PersonalIdentity" in shown["sections_read"]
        assert "Legal" in shown["sections_withheld"]
        assert [entry["cases"] for entry in logged] == [[case_id]]
        assert "PersonalIdentity" in logged[0]["sections"]
        assert logged[0]["purpose"] == PURPOSE["X-Lintas-Purpose"]
        assert logged[0]["country"] == "MM"
        access = api.wait_for(lambda: myanmar.get(f"/v1/cases/{case_id}/access-log").json())
        assert [entry["request_id"] for entry in access] == ["req-" + case_id]
    with api.client("TH", Role.FOCAL_POINT) as thailand:
        own = thailand.get(f"/v1/cases/{case_id}", headers=PURPOSE).json()
        assert own["events"][0]["sent_by_reader"] is True
        assert "Legal" in own["events"][0]["sections_read"]  # the sender sees all it sent


class _Unwritable:
    async def write(self, key: bytes, value: bytes) -> None:
        raise ConnectionError("the audit topic is not reachable")


def test_a_read_that_cannot_be_audited_is_refused(api: LiveApi) -> None:
    event = identified("TH", "MM")
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        assert thai.post("/v1/events", params={"wait": 20}, json=as_json(event)).status_code == 200
    assert api.running is not None
    services = api.running.services
    working = services.audit
    services.audit = AuditLog(_Unwritable(), timeout=1)
    try:
        with api.client("MM", Role.FOCAL_POINT) as myanmar:
            case_id = event.envelope.case_id
            api.wait_for(lambda: myanmar.get("/v1/inbox", params={"case_id": case_id}).json()["items"])
            answer = myanmar.get(f"/v1/cases/{case_id}", headers=PURPOSE)
            body = _problem(answer, 503)
            assert "audit" in body["detail"]
            assert "Aung" not in answer.text
    finally:
        services.audit = working


def test_the_inbox_pages_by_cursor_and_filters(api: LiveApi) -> None:
    events = [identified("KH", "TH") for _ in range(5)]
    with api.client("KH", Role.NATIONAL_SYSTEM) as cambodia:
        answer = cambodia.post(
            "/v1/events", params={"wait": 20}, json={"events": [as_json(e) for e in events]}
        )
        assert answer.status_code == 200, answer.text
    ours = {e.envelope.case_id for e in events}
    with api.client("TH", Role.FOCAL_POINT) as thailand:
        api.wait_for(
            lambda: (
                len(
                    [
                        i
                        for i in thailand.get("/v1/inbox", params={"limit": 200}).json()["items"]
                        if i["case_id"] in ours
                    ]
                )
                == 5
            )
        )
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = thailand.get(
                "/v1/inbox", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
            ).json()
            seen += [item["case_id"] for item in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert ours <= set(seen)
        assert len(seen) == len(set(seen)), "a page repeated an item"
        assert pages >= 3
        one = thailand.get("/v1/inbox", params={"case_id": events[0].envelope.case_id}).json()["items"]
        assert [item["case_id"] for item in one] == [events[0].envelope.case_id]
        typed = thailand.get("/v1/inbox", params={"event_type": "ReturnNoticeIssued"}).json()["items"]
        assert not {item["case_id"] for item in typed} & ours
        later = thailand.get("/v1/inbox", params={"since": datetime.now(UTC).isoformat()}).json()["items"]
        assert not {item["case_id"] for item in later} & ours
        _problem(thailand.get("/v1/inbox", params={"cursor": "abc"}), 400)


def _alert(case_id: str, level: AlertLevel, owner: str = "LA", waiting: str = "TH") -> Alert:
    now = datetime.now(UTC)
    return Alert(
        alert_id=f"{case_id}/AnswerReferral/{level.value}",
        obligation_id=f"{case_id}/AnswerReferral",
        kind=ObligationKind.AnswerReferral,
        level=level,
        case_id=case_id,
        due=now + timedelta(days=2),
        owner=CountryCode(owner),
        waiting=CountryCode(waiting),
        raised_at=now,
    )


async def _publish_alerts(bootstrap: str, country: str, records: list[Alert]) -> None:
    codec = Codec()
    sender = producer(bootstrap)
    await sender.start()
    try:
        for record in records:
            await sender.send_and_wait(alerts(country), codec.encode(record), key=record.case_id.encode())
    finally:
        await sender.stop()


def _events(stream: Any, count: int) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in stream.iter_lines():
        if not line:
            if current:
                found.append(current)
                current = {}
                if len(found) == count:
                    return found
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        current[name] = value.strip()
    return found


def test_alerts_stream_live_and_resume_after_the_last_event_id(api: LiveApi, kafka_bootstrap: str) -> None:
    case_id = f"TH-{uuid.uuid4().hex[:10].upper()}"
    with api.client("LA", Role.FOCAL_POINT) as lao:
        start = lao.get("/v1/alerts", params={"limit": 500}).json()
        after = start["items"][-1]["id"] if start["items"] else "0"
        first, second = _alert(case_id, AlertLevel.DueSoon), _alert(case_id, AlertLevel.Overdue)
        with lao.stream("GET", "/v1/alerts/stream", headers={"Last-Event-ID": after}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            asyncio.run(_publish_alerts(kafka_bootstrap, "LA", [first, second]))
            received = _events(stream, 2)
        assert [json.loads(e["data"])["alert_id"] for e in received] == [first.alert_id, second.alert_id]
        assert all(e["event"] == "alert" for e in received)
        with lao.stream("GET", "/v1/alerts/stream", headers={"Last-Event-ID": received[0]["id"]}) as again:
            [resumed] = _events(again, 1)
        assert resumed["id"] == received[1]["id"]
        listed = lao.get("/v1/alerts", params={"cursor": after}).json()["items"]
        assert [item["alert"]["alert_id"] for item in listed][:2] == [first.alert_id, second.alert_id]
    with api.client("TH", Role.FOCAL_POINT) as thailand:
        # Thailand's feed is its own: Lao PDR's alerts are not in it.
        mine = thailand.get("/v1/alerts", params={"limit": 500}).json()["items"]
        assert case_id not in json.dumps(mine)


def test_agendas_in_json_html_and_pdf_in_the_readers_language(api: LiveApi) -> None:
    event = identified("TH", "MM")
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        assert thai.post("/v1/events", params={"wait": 20}, json=as_json(event)).status_code == 200
    with api.client("MM", Role.FOCAL_POINT) as myanmar:
        agenda = api.wait_for(
            lambda: (
                (a := myanmar.get("/v1/agendas/TH").json())
                and event.envelope.case_id in json.dumps(a["new_cases"])
                and a
            )
        )
        assert agenda["corridor_id"] == "TH-MM"
        html = myanmar.get("/v1/agendas/TH", params={"format": "html", "lang": "my"})
        assert html.headers["content-type"].startswith("text/html")
        assert 'lang="my"' in html.text
        pdf = myanmar.get("/v1/agendas/TH", params={"format": "pdf", "lang": "th"})
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        past = myanmar.get("/v1/agendas/TH", params={"as_of": "2020-01-01T00:00:00Z"}).json()
        assert event.envelope.case_id not in json.dumps(past)
        _problem(myanmar.get("/v1/agendas/JP"), 404)
        _problem(myanmar.get("/v1/agendas/TH", params={"format": "docx"}), 422)


def test_the_committed_openapi_is_the_one_served(api: LiveApi) -> None:
    with api.anonymous() as anyone:
        served = anyone.get("/v1/openapi.json").json()
    assert served == json.loads(OPENAPI_FILE.read_text(encoding="utf-8")), (
        "docs/api/openapi.json is out of date: run `lintas openapi --write`"
    )
    assert json.loads(openapi_text()) == served


def test_the_read_store_resumes_and_a_replay_rebuilds_the_same_content(
    api: LiveApi, kafka_bootstrap: str, tmp_path: Path
) -> None:
    assert api.running is not None
    live = api.running.store
    event = identified("TH", "LA")
    with api.client("TH", Role.NATIONAL_SYSTEM) as thai:
        assert thai.post("/v1/events", params={"wait": 20}, json=as_json(event)).status_code == 200
    ends = _end_offsets(kafka_bootstrap)
    api.wait_for(lambda: all(live.positions().get(tp, 0) >= end for tp, end in ends.items() if end), 60)

    # A second projector on the same store resumes from its positions: nothing to apply.
    async def resume() -> int:
        projector = Projector(kafka_bootstrap, live, Codec(), COUNTRIES)
        stop, caught_up = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(projector.run(stop, caught_up))
        await asyncio.wait_for(caught_up.wait(), 60)
        stop.set()
        await task
        return projector.applied

    assert asyncio.run(resume()) == 0
    target = tmp_path / "rebuilt.sqlite"
    replayed = CliRunner().invoke(cli.app, ["replay", "--into", str(target), "-b", kafka_bootstrap])
    assert replayed.exit_code == 0, replayed.output
    assert "rebuilt" in replayed.output
    assert ReadStore(target).content() == live.content()


def _end_offsets(bootstrap: str) -> dict[tuple[str, int], int]:
    from confluent_kafka import Consumer, TopicPartition

    from connectors.readstore.projector import projected_topics

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "ends", "isolation.level": "read_committed"}
    )
    try:
        found = {}
        for topic in projected_topics(COUNTRIES):
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
            for partition in metadata.partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                found[(topic, partition)] = high
        return found
    finally:
        consumer.close()
