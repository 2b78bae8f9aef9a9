"""The dashboard in a real browser (Debian's Chromium driven by Playwright), on the real broker with
the router, the read-store projector and the alert feed running: signing in by keyboard, an alert
appearing live, Burmese glyphs rather than boxes, the agenda PDF, a refused page, a phone-sized screen,
and an axe-core scan of every page. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

from connectors.api.credentials import Role
from connectors.dashboard.vendor import VENDOR
from hub.agreements import load_agreements
from hub.codec import Codec
from projections.alerts.worker import AlertWorker
from projections.stats.kafka import publish_document
from tests.apiserver import LiveApi, as_json, identified, live_api
from tests.test_dashboard import pdf_font_names
from tests.test_stats_publication import sample_document

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.kafka

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google on a closed network.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
#: The rules of WCAG 2.1 levels A and AA.
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: Alerts are judged this far ahead, so that a case identified now is already late.
AHEAD = timedelta(days=60)


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    yield from live_api(kafka_bootstrap, tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def alert_feed(kafka_bootstrap: str, api: LiveApi) -> Iterator[AlertWorker]:
    """The alert feed as it runs in the hub, in a thread, with its clock ahead."""
    worker = AlertWorker(
        kafka_bootstrap,
        Codec(),
        load_agreements(),
        clock=lambda: datetime.now(UTC) + AHEAD,
        group_id=f"test-ui-alerts-{uuid.uuid4().hex[:8]}",
        instance="ui",
    )
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=worker.run_blocking, args=(stop,), kwargs={"tick_every": 1.0, "ready": ready}, daemon=True
    )
    thread.start()
    assert ready.wait(90), "the alert feed did not start"
    yield worker
    stop.set()
    thread.join(60)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Any, api: LiveApi, country: str, role: Role) -> None:
    """By keyboard alone: Tab to the credential field, type it, Enter."""
    page.goto(f"{api.url}/ui/sign-in")
    for _ in range(30):
        if page.evaluate("document.activeElement && document.activeElement.id") == "credential":
            break
        page.keyboard.press("Tab")
    else:
        pytest.fail("the credential field cannot be reached with Tab")
    page.keyboard.type(api.token(country, role))
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/ui/sign-in" not in url)


def shot(page: Any, name: str, **options: Any) -> bytes:
    data: bytes = page.screenshot(path=str(ARTIFACTS / f"{name}.png"), **options)
    return data


def case_of(api: LiveApi, source: str, destination: str) -> str:
    event = identified(source, destination)
    with api.client(source, Role.NATIONAL_SYSTEM) as system:
        answer = system.post("/v1/events", json=as_json(event), params={"wait": 30})
    assert answer.status_code == 200, answer.text
    case_id = event.envelope.case_id
    api.wait_for(lambda: api.running and api.running.store.case_state(case_id))
    return case_id


def test_sign_in_by_keyboard_lands_on_the_focal_point_s_inbox(page: Any, api: LiveApi) -> None:
    case_of(api, "MM", "TH")
    sign_in(page, api, "TH", Role.FOCAL_POINT)
    assert page.url.endswith("/ui/inbox")
    assert page.locator("h1").inner_text().startswith("Inbox of")
    assert page.locator("#inbox tbody tr").count() >= 1
    shot(page, "inbox-th-en", full_page=True)


def test_an_alert_appears_live_after_an_event_is_published(
    page: Any, api: LiveApi, alert_feed: AlertWorker
) -> None:
    sign_in(page, api, "TH", Role.FOCAL_POINT)
    page.goto(f"{api.url}/ui/alerts")
    page.wait_for_selector('#live[data-state="connected"]', timeout=30_000)
    assert page.locator("#live").inner_text() == "Live"
    case_id = case_of(api, "TH", "MM")  # Thailand identified a person from Myanmar: a referral is owed
    row = page.locator("#alerts tbody tr", has_text=case_id).first
    row.wait_for(timeout=90_000)  # without reloading the page
    assert "fresh" in (row.get_attribute("class") or "")
    shot(page, "alerts-live")


def test_the_backlog_moves_without_reloading_the_page(page: Any, api: LiveApi) -> None:
    sign_in(page, api, "TH", Role.FOCAL_POINT)
    page.goto(f"{api.url}/ui/inbox")
    page.evaluate("window.lintasMarker = 'still the same page'")
    row = page.locator('#backlog tr[data-partner="LA"] td.total')
    before = int(row.inner_text()) if row.count() else 0
    case_of(api, "LA", "TH")  # Lao PDR identified a Thai national
    # Polled from here: the page's policy forbids evaluating strings, which wait_for_function does.
    deadline = time.monotonic() + 30
    while not (row.count() and int(row.inner_text()) > before):
        assert time.monotonic() < deadline, "the backlog did not move"
        page.wait_for_timeout(250)
    assert page.evaluate("window.lintasMarker") == "still the same page"


def test_burmese_renders_in_its_own_glyphs_not_boxes(page: Any, api: LiveApi) -> None:
    sign_in(page, api, "TH", Role.FOCAL_POINT)
    page.goto(f"{api.url}/ui/inbox")
    page.select_option("#lang-switch", "my")  # the switch submits itself on change
    page.wait_for_url("**lang=my**")
    assert page.evaluate("document.documentElement.lang") == "my"
    page.evaluate("document.fonts.ready.then(() => true)")
    heading = page.locator("h1")
    text = heading.inner_text()
    assert any("\u1000" <= ch <= "\u109f" for ch in text), text
    assert page.evaluate("(t) => document.fonts.check('20px \"Noto Sans Myanmar\"', t)", text)
    burmese = heading.screenshot(path=str(ARTIFACTS / "heading-my.png"))
    # The same words without the served font: this machine has no Burmese font, so boxes.
    heading.evaluate("(h) => { h.style.fontFamily = 'sans-serif'; }")
    boxes = heading.screenshot(path=str(ARTIFACTS / "heading-my-without-font.png"))
    assert _differs(burmese, boxes) > 0.02
    # And Latin text is drawn by the served Latin font, not a fallback.
    page.select_option("#lang-switch", "en")
    page.wait_for_url("**lang=en**")
    assert page.evaluate("document.fonts.check('20px \"Noto Sans\"', 'Inbox')")
    shot(page, "inbox-th-my", full_page=True)


def test_the_agenda_prints_and_downloads_as_a_pdf_with_the_reader_s_fonts(page: Any, api: LiveApi) -> None:
    case_of(api, "MM", "TH")
    sign_in(page, api, "TH", Role.FOCAL_POINT)
    page.goto(f"{api.url}/ui/agendas/MM?lang=my")
    assert page.locator("button[data-print]").is_visible()  # the script shows the print button
    with page.expect_download() as waiting:
        page.click("#agenda-pdf")
    download = waiting.value
    assert download.suggested_filename.endswith("-my.pdf")
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"%PDF")
    assert "Noto-Sans-Myanmar" in pdf_font_names(content)
    shot(page, "agenda-th-mm-my", full_page=True)


def test_a_country_is_refused_another_country_s_case_and_the_regional_page(page: Any, api: LiveApi) -> None:
    theirs = case_of(api, "LA", "VN")
    sign_in(page, api, "TH", Role.FOCAL_POINT)
    response = page.goto(f"{api.url}/ui/cases/{theirs}")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    assert page.goto(f"{api.url}/ui/regional").status == 403
    shot(page, "refused")


def test_a_phone_sized_screen_needs_no_sideways_scrolling(browser: Any, api: LiveApi) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2)
    try:
        phone = context.new_page()
        sign_in(phone, api, "TH", Role.FOCAL_POINT)
        for path in ("/ui/inbox", "/ui/alerts", "/ui/agendas/MM"):
            phone.goto(f"{api.url}{path}")
            overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} is {overflow}px too wide"
        shot(phone, "inbox-phone", full_page=True)
    finally:
        context.close()


def test_no_page_has_a_serious_accessibility_violation(
    browser: Any, api: LiveApi, kafka_bootstrap: str
) -> None:
    # Playwright's sync API keeps an event loop on this thread: the publisher runs on another.
    publisher = threading.Thread(
        target=asyncio.run, args=(publish_document(kafka_bootstrap, sample_document(published="2026-11")),)
    )
    publisher.start()
    publisher.join(60)
    case_id = case_of(api, "MM", "TH")
    # axe is injected as a script of its own, which the pages' policy would refuse: the scan alone
    # runs with the policy off.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    found: dict[str, list[str]] = {}
    try:
        page = context.new_page()
        pages = {
            None: ["/ui/sign-in"],
            (Role.FOCAL_POINT, "TH"): [
                "/ui/inbox",
                "/ui/alerts",
                "/ui/agendas",
                "/ui/agendas/MM",
                f"/ui/cases/{case_id}",
            ],
            (Role.REGIONAL, "TH"): ["/ui/regional"],
            (Role.OPERATOR, "TH"): ["/ui/operator"],
        }
        for who, paths in pages.items():
            if who is not None:
                context.clear_cookies()
                sign_in(page, api, who[1], who[0])
            for path in paths:
                for language in ("en", "my"):
                    page.goto(f"{api.url}{path}?lang={language}")
                    page.add_script_tag(path=str(VENDOR / "axe.min.js"))
                    result = page.evaluate(f"axe.run(document, {{runOnly: {{type: 'tag', values: {WCAG}}}}})")
                    serious = [
                        f"{v['id']}: {v['help']} ({len(v['nodes'])}x, e.g. {v['nodes'][0]['target']})"
                        for v in result["violations"]
                        if v["impact"] in ("serious", "critical")
                    ]
                    if serious:
                        found[f"{path}?lang={language}"] = serious
        shot(page, "operator")
    finally:
        context.close()
    assert not found, found


def _differs(first: bytes, second: bytes) -> float:
    """The share of pixels that differ between two screenshots (of one size)."""
    a = Image.open(io.BytesIO(first)).convert("L")
    b = Image.open(io.BytesIO(second)).convert("L").resize(a.size)
    changed = ImageChops.difference(a, b).point(lambda v: 255 if v > 40 else 0)
    histogram = changed.histogram()
    return histogram[255] / (a.size[0] * a.size[1])
