"""The dashboard over HTTP, on the real broker: signing in, what each role may open, the audited case
thread, the ten languages, the agenda PDF with its fonts, dead letters and their re-drive, statistics
with withheld cells, and nothing loaded from anywhere but the hub itself."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
import zlib
from collections.abc import Iterator

import httpx
import pytest
from markupsafe import escape

from connectors.api.credentials import Role
from connectors.dashboard.i18n import LANGUAGES, catalog
from hub.kafka import producer
from hub.topics import nrm_events
from projections.stats.kafka import publish_document
from tests.apiserver import LiveApi, as_json, identified, live_api
from tests.test_stats_publication import sample_document

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    yield from live_api(kafka_bootstrap, tmp_path_factory.mktemp("dashboard"))


@contextlib.contextmanager
def signed_in(api: LiveApi, country: str, role: Role) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=60, follow_redirects=False) as client:
        answer = client.post("/ui/sign-in", data={"credential": api.token(country, role), "next": "/ui/"})
        assert answer.status_code == 303, answer.text
        assert "lintas_session" in client.cookies
        yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no csrf field on the page"
    return found.group(1)


def routed_case(api: LiveApi, source: str, destination: str) -> str:
    event = identified(source, destination)
    with api.client(source, Role.NATIONAL_SYSTEM) as system:
        answer = system.post("/v1/events", json=as_json(event), params={"wait": 30})
    assert answer.status_code == 200, answer.text
    case_id = event.envelope.case_id
    api.wait_for(lambda: api.running and api.running.store.case_state(case_id))
    return case_id


def test_sign_in_refuses_a_wrong_credential_and_sends_each_role_to_its_own_page(api: LiveApi) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as anonymous:
        assert (
            anonymous.get("/ui/inbox", follow_redirects=False)
            .headers["location"]
            .startswith("/ui/sign-in?next=/ui/inbox")
        )
        refused = anonymous.post("/ui/sign-in", data={"credential": "lintas_0000000000000000_" + "x" * 43})
        assert refused.status_code == 401
        assert "unknown credential" in refused.text
        assert "lintas_session" not in anonymous.cookies
    homes = {
        (Role.FOCAL_POINT, "TH"): "/ui/inbox",
        (Role.REGIONAL, "TH"): "/ui/regional",
        (Role.OPERATOR, "TH"): "/ui/operator",
        (Role.NATIONAL_SYSTEM, "KH"): "/ui/receipts",
    }
    for (role, country), home in homes.items():
        with signed_in(api, country, role) as client:
            assert client.get("/ui/", follow_redirects=False).headers["location"] == home
            assert client.get(home).status_code == 200


def test_each_role_sees_only_its_pages_and_a_country_only_its_cases(api: LiveApi) -> None:
    theirs = routed_case(api, "LA", "VN")
    ours = routed_case(api, "MM", "TH")
    with signed_in(api, "TH", Role.FOCAL_POINT) as thailand:
        assert thailand.get("/ui/regional").status_code == 403
        assert thailand.get("/ui/operator").status_code == 403
        refused = thailand.get(f"/ui/cases/{theirs}")
        unknown = thailand.get("/ui/cases/LA-NOSUCHCASE")
        assert refused.status_code == unknown.status_code == 404
        # The same page for another country's case as for none: nobody learns that it exists.
        assert refused.text.replace(theirs, "?") == unknown.text.replace("LA-NOSUCHCASE", "?")
        assert thailand.get("/ui/agendas/SG").status_code == 404  # no agreement joins them
        assert thailand.get(f"/ui/cases/{ours}").status_code == 200
    with signed_in(api, "TH", Role.REGIONAL) as regional:
        assert regional.get(f"/ui/cases/{ours}").status_code == 403
        assert regional.get("/ui/inbox").status_code == 403
        assert regional.get("/ui/data/backlog").status_code == 403


def test_a_case_thread_is_shown_only_after_a_purpose_and_the_read_is_audited(api: LiveApi) -> None:
    case_id = routed_case(api, "MM", "TH")
    with signed_in(api, "TH", Role.FOCAL_POINT) as thailand:
        first = thailand.get(f"/ui/cases/{case_id}")
        assert first.status_code == 200
        assert escape(catalog("en")["audit_warning"]) in first.text
        # The person's invented name is in the thread only, never before the warning is passed.
        assert "given_name" not in first.text
        token = csrf_of(first.text)
        assert thailand.post(f"/ui/cases/{case_id}", data={"purpose": "x"}).status_code == 403  # no csrf
        elsewhere = thailand.post(
            f"/ui/cases/{case_id}",
            data={"purpose": "x", "csrf": token},
            headers={"Origin": "https://attacker.example"},
        )
        assert elsewhere.status_code == 403
        missing = thailand.post(f"/ui/cases/{case_id}", data={"purpose": " ", "csrf": token})
        assert missing.status_code == 422
        opened = thailand.post(f"/ui/cases/{case_id}", data={"purpose": "preparing the CMM", "csrf": token})
        assert opened.status_code == 200
        assert "personal" in opened.text.lower() or "PersonalIdentity" in opened.text
        request_id = opened.headers["x-request-id"]
    with api.client("TH", Role.FOCAL_POINT) as reader:
        log = api.wait_for(lambda: reader.get(f"/v1/cases/{case_id}/access-log").json(), within=30)
    assert any(e["request_id"] == request_id and e["purpose"] == "preparing the CMM" for e in log)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_speaks_each_of_the_ten_languages(api: LiveApi, language: str) -> None:
    words = catalog(language)
    with signed_in(api, "TH", Role.FOCAL_POINT) as thailand:
        page = thailand.get("/ui/inbox", params={"lang": language})
        assert page.status_code == 200
        assert f'lang="{"zh-Hans" if language == "zh" else language}"' in page.text
        assert escape(words["nav_alerts"]) in page.text
        # The choice is kept for the next page.
        assert escape(words["alerts_intro"]) in thailand.get("/ui/alerts").text


def test_the_agenda_pdf_embeds_the_fonts_of_the_reader_s_script(api: LiveApi) -> None:
    routed_case(api, "MM", "TH")
    with signed_in(api, "TH", Role.FOCAL_POINT) as thailand:
        page = thailand.get("/ui/agendas/MM", params={"lang": "my"})
        assert page.status_code == 200
        pdf = thailand.get("/ui/agendas/MM/pdf", params={"lang": "my"})
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert "attachment" in pdf.headers["content-disposition"]
    assert pdf.content.startswith(b"%PDF")
    assert "Noto-Sans-Myanmar" in pdf_font_names(pdf.content)


def pdf_font_names(document: bytes) -> set[str]:
    """The base names of the fonts a PDF embeds (in its objects, compressed or not)."""
    parts = [document]
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", document, flags=re.DOTALL):
        with contextlib.suppress(zlib.error):
            parts.append(zlib.decompress(stream))
    names = set()
    for part in parts:
        for name in re.findall(rb"/BaseFont\s*/([A-Z]{6}\+)?([A-Za-z0-9-]+)", part):
            names.add(name[1].decode())
    return names


def test_statistics_show_withheld_cells_as_under_k_and_no_case(api: LiveApi, kafka_bootstrap: str) -> None:
    document = sample_document(published=f"2026-{uuid.uuid4().int % 9 + 1:02d}")
    asyncio.run(publish_document(kafka_bootstrap, document))
    k = document["rules"]["minimum_frequency"]
    with signed_in(api, "TH", Role.REGIONAL) as regional:
        page = api.wait_for(
            lambda: (
                (answer := regional.get("/ui/regional")).status_code == 200
                and document["id"] in answer.text
                and answer.text
            )
        )
    assert "<svg" in page
    assert f"&lt;{k}" in page
    assert "/ui/cases/" not in page


def test_a_dead_letter_is_listed_with_its_reason_and_can_be_sent_again(
    api: LiveApi, kafka_bootstrap: str
) -> None:
    key = f"TH-JUNK-{uuid.uuid4().hex[:8]}".encode()

    async def junk() -> None:
        sender = producer(kafka_bootstrap)
        await sender.start()
        try:
            await sender.send_and_wait(nrm_events("TH"), b"not an event", key=key)
        finally:
            await sender.stop()

    asyncio.run(junk())
    store = api.running.store if api.running else None
    assert store is not None
    letter = api.wait_for(lambda: next((d for d in store.dead_letters() if d.key == key.decode()), None))
    assert letter.reason == "undecodable"
    with signed_in(api, "TH", Role.OPERATOR) as operator:
        page = operator.get("/ui/operator")
        assert key.decode() not in page.text  # the operator sees why, not what
        assert "undecodable" in page.text
        assert operator.post(f"/ui/operator/dead-letters/{letter.seq}/redrive").status_code == 403
        sent = operator.post(
            f"/ui/operator/dead-letters/{letter.seq}/redrive", data={"csrf": csrf_of(page.text)}
        )
        assert sent.status_code == 303
    # Sent again, the same bytes are refused again, with a dead letter of their own.
    again = api.wait_for(
        lambda: [d for d in store.dead_letters() if d.key == key.decode() and d.seq != letter.seq]
    )
    assert dict(again[0].headers)["lintas_redriven_from"].decode().startswith("lintas.nrm.th.events/")


def test_pages_load_nothing_from_elsewhere(api: LiveApi) -> None:
    with signed_in(api, "TH", Role.FOCAL_POINT) as thailand:
        for path in ("/ui/inbox", "/ui/alerts", "/ui/agendas", "/ui/agendas/MM"):
            answer = thailand.get(path)
            assert "default-src 'self'" in answer.headers["content-security-policy"]
            assert not re.search(r'(src|href)="(https?:)?//', answer.text), path
        css = thailand.get("/ui/static/vendor/fonts.css")
        assert css.status_code == 200
        fonts = re.findall(r"url\(([^)]+)\)", css.text)
        assert fonts
        assert all(not f.startswith(("http", "//")) for f in fonts)
        assert thailand.get("/ui/static/" + "vendor/" + fonts[0]).status_code == 200
