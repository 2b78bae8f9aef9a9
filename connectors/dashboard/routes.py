"""The dashboard (``/ui``): server-rendered pages over the API's services, for each role what the API
lets it read and nothing more. Pages work without JavaScript; scripts only add live updates.

Sign-in takes an API credential and opens a session (:mod:`connectors.dashboard.sessions`); every page
checks the role, and a case page also that the country is party to the case, as the API does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from connectors.api.app import Outgoing, Services, case_thread, thread_states
from connectors.api.audit import audit_record
from connectors.api.credentials import CredentialError, Role
from connectors.api.problems import Problem
from connectors.dashboard import views
from connectors.dashboard.i18n import LANGUAGES, Words, language_names, negotiate
from connectors.dashboard.sessions import COOKIE, Session, Sessions, same_token
from connectors.dashboard.vendor import VENDOR, print_fonts, vendored
from projections.agenda.build import build_agenda
from projections.agenda.render import rendered, to_pdf
from projections.obligations.rules import deadlines_for, obligations

log = structlog.get_logger("lintas.dashboard")

HERE = Path(__file__).parent
LANG_COOKIE = "lintas_lang"
#: Every resource is served from here: no script, style, font or image from anywhere else.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HOME = {
    Role.FOCAL_POINT: "/ui/inbox",
    Role.REGIONAL: "/ui/regional",
    Role.OPERATOR: "/ui/operator",
    Role.NATIONAL_SYSTEM: "/ui/receipts",
}


class _Refused(Exception):
    def __init__(self, status: int, key: str, **values: object) -> None:
        super().__init__(key)
        self.status, self.key, self.values = status, key, values


class _SignIn(Exception):
    """No session: to the sign-in page, coming back here after."""


def mount(app: FastAPI, services: Services, *, status_dir: Path | None = None) -> None:
    """Serve the dashboard under ``/ui`` of the API's app."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["languages"] = language_names()
    sessions = Sessions(services.store, services.credentials)
    router = APIRouter(prefix="/ui", include_in_schema=False)
    if not vendored():
        log.warning("dashboard_fonts_missing", folder=str(VENDOR), fix="make install")

    def words_of(request: Request) -> Words:
        asked = request.query_params.get("lang")
        if asked in LANGUAGES:
            return Words(asked)
        cookie = request.cookies.get(LANG_COOKIE)
        if cookie in LANGUAGES:
            return Words(cookie)
        return Words(negotiate(request.headers.get("accept-language")))

    def now() -> datetime:
        return services.real_clock()

    def session_of(request: Request) -> Session | None:
        found: Session | None = getattr(request.state, "session", None)
        if found is None:
            found = sessions.find(request.cookies.get(COOKIE), now=now())
            request.state.session = found
        return found

    def require(request: Request, *roles: Role) -> Session:
        session = session_of(request)
        if session is None:
            raise _SignIn
        if session.principal.role not in roles:
            raise _Refused(403, "forbidden", role=session.principal.role.value)
        return session

    def page(
        request: Request, template: str, *, status: int = 200, session: Session | None = None, **context: Any
    ) -> HTMLResponse:
        words = words_of(request)
        response = templates.TemplateResponse(
            request,
            template,
            {
                "t": words,
                "lang": words.language,
                "html_lang": words.html_lang,
                "session": session if session is not None else session_of(request),
                "path": request.url.path,
                "query": str(request.url.query),
                "home": HOME,
                "Role": Role,
                **context,
            },
            status_code=status,
        )
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(LANG_COOKIE, words.language, max_age=365 * 86400, samesite="strict")
        return response

    def check_form(request: Request, session: Session, csrf: str) -> None:
        if not same_token(csrf, session.csrf):
            raise _Refused(403, "forbidden", role=session.principal.role.value)

    @app.exception_handler(_SignIn)
    async def _to_sign_in(request: Request, _error: _SignIn) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/sign-in?next={quote(target)}", status_code=303)

    @app.exception_handler(_Refused)
    async def _refused(request: Request, error: _Refused) -> Response:
        template = {404: "not_found.html", 503: "unavailable.html"}.get(error.status, "forbidden.html")
        return page(request, template, status=error.status, values=error.values)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        if request.method == "POST" and request.url.path.startswith("/ui") and not _same_origin(request):
            # Besides the cookie's SameSite and the forms' token: a form posted from another site.
            return Response("cross-site form refused", status_code=403, media_type="text/plain")
        response: Response = await call_next(request)
        if request.url.path.startswith("/ui"):
            response.headers["Content-Security-Policy"] = CSP
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "same-origin"
            if not request.url.path.startswith("/ui/static"):
                response.headers["Cache-Control"] = "no-store"
        return response

    # -- signing in -------------------------------------------------------------------------------

    @router.get("/", response_class=HTMLResponse)
    @router.get("", response_class=HTMLResponse)
    async def start(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/ui/sign-in", status_code=303)
        return RedirectResponse(HOME[session.principal.role], status_code=303)

    @router.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request, next: str = "/ui/") -> Response:
        return page(request, "sign_in.html", next=_local(next), error=None, session=None)

    @router.post("/sign-in", response_class=HTMLResponse)
    async def sign_in(
        request: Request,
        credential: Annotated[str, Form(max_length=200)],
        next: Annotated[str, Form(max_length=500)] = "/ui/",
    ) -> Response:
        try:
            secret, session = await asyncio.to_thread(sessions.open, credential, now=now())
        except CredentialError as error:
            log.info("dashboard_sign_in_refused", reason=str(error))
            return page(
                request, "sign_in.html", status=401, next=_local(next), error=str(error), session=None
            )
        log.info("dashboard_signed_in", principal=session.principal.name)
        target = _local(next)
        if target in ("/ui/", "/ui"):
            target = HOME[session.principal.role]
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            secret,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/ui",
        )
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
        session = session_of(request)
        if session is not None:
            check_form(request, session, csrf)
            sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/ui/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/ui")
        return response

    # -- focal points -----------------------------------------------------------------------------

    backlogs = _Backlogs(services)

    @router.get("/inbox", response_class=HTMLResponse)
    async def inbox(request: Request, cursor: Annotated[int | None, Query(ge=0)] = None) -> Response:
        session = require(request, Role.FOCAL_POINT)
        country = session.principal.country
        rows = await asyncio.to_thread(services.store.inbox_newest, country, before=cursor, limit=_PAGE)
        return page(
            request,
            "inbox.html",
            session=session,
            backlog=await backlogs.of(country),
            stages=views.OPEN_STAGES,
            rows=rows,
            older=rows[-1].seq if len(rows) == _PAGE else None,
        )

    @router.get("/data/backlog")
    async def backlog_data(request: Request) -> Response:
        session = require(request, Role.FOCAL_POINT)
        body = views.backlog_json(await backlogs.of(session.principal.country))
        body["receipts"] = await asyncio.to_thread(services.store.receipt_seq)
        return JSONResponse(body)

    @router.get("/cases/{case_id}", response_class=HTMLResponse)
    async def case(request: Request, case_id: Annotated[str, PathParam(max_length=80)]) -> Response:
        session = require(request, Role.FOCAL_POINT)
        state = await _party_state(services, session, case_id)
        return page(
            request,
            "case.html",
            session=session,
            case_id=case_id,
            summary=_summary(services, state),
            thread=None,
        )

    @router.post("/cases/{case_id}", response_class=HTMLResponse)
    async def case_read(
        request: Request,
        case_id: Annotated[str, PathParam(max_length=80)],
        purpose: Annotated[str, Form(max_length=200)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        session = require(request, Role.FOCAL_POINT)
        check_form(request, session, csrf)
        state = await _party_state(services, session, case_id)
        summary = _summary(services, state)
        if not purpose.strip():
            return page(
                request,
                "case.html",
                status=422,
                session=session,
                case_id=case_id,
                summary=summary,
                thread=None,
                missing=True,
            )
        thread, sections = await asyncio.to_thread(case_thread, services, session.principal.country, case_id)
        request_id = request.state.request_id
        # The audit record first: a read that cannot be recorded is not answered.
        try:
            await services.audit.record(
                audit_record(
                    session.principal,
                    request_id=request_id,
                    at=services.real_clock(),
                    action="case.read",
                    cases=[case_id],
                    sections=sections,
                    purpose=purpose.strip(),
                )
            )
        except Problem:
            raise _Refused(503, "unavailable") from None
        return page(
            request,
            "case.html",
            session=session,
            case_id=case_id,
            summary=summary,
            thread=thread,
            request_id=request_id,
        )

    @router.get("/alerts", response_class=HTMLResponse)
    async def alerts_page(request: Request) -> Response:
        session = require(request, Role.FOCAL_POINT)
        found = await asyncio.to_thread(services.store.alerts_newest, session.principal.country)
        return page(
            request,
            "alerts.html",
            session=session,
            alerts=[{"seq": alert.seq, **alert.record} for alert in found],
            after=max((alert.seq for alert in found), default=0),
        )

    @router.get("/alerts/stream", response_class=EventSourceResponse)
    async def alerts_stream(
        request: Request, after: Annotated[int, Query(ge=0)] = 0
    ) -> AsyncIterator[ServerSentEvent]:
        session = require(request, Role.FOCAL_POINT)
        words = words_of(request)
        country = session.principal.country
        last = request.headers.get("last-event-id")
        position = int(last) if last and last.isdigit() else after
        yield ServerSentEvent(event="ready", data={"after": position})
        while not await request.is_disconnected():
            found = await asyncio.to_thread(services.store.alerts_after, country, after=position, limit=100)
            for alert in found:
                position = alert.seq
                yield ServerSentEvent(
                    id=str(alert.seq), event="alert", data=_alert_row(words, alert.seq, alert.record)
                )
            if not found:
                await services.changes.wait(1.0)

    @router.get("/agendas", response_class=HTMLResponse)
    async def agendas(request: Request) -> Response:
        session = require(request, Role.FOCAL_POINT)
        country = session.principal.country
        partners = sorted(
            other.value
            for corridor in services.agreements.corridors
            if country in {c.value for c in corridor.countries}
            for other in corridor.countries
            if other.value != country
        )
        return page(request, "agendas.html", session=session, partners=partners)

    async def agenda_of(session: Session, partner: str) -> Any:
        country = session.principal.country
        corridor = services.agreements.corridor(country, partner)
        if corridor is None:
            raise _Refused(404, "not_found")
        states = await asyncio.to_thread(thread_states, services, country, None)
        return build_agenda(states, corridor, as_of=services.clock())

    @router.get("/agendas/{partner}", response_class=HTMLResponse)
    async def agenda(request: Request, partner: Annotated[str, PathParam(pattern=r"^[A-Z]{2}$")]) -> Response:
        session = require(request, Role.FOCAL_POINT)
        built = await agenda_of(session, partner)
        document = rendered(built, words_of(request).language)
        return page(request, "agenda.html", session=session, partner=partner, agenda=document)

    @router.get("/agendas/{partner}/pdf")
    async def agenda_pdf(
        request: Request, partner: Annotated[str, PathParam(pattern=r"^[A-Z]{2}$")]
    ) -> Response:
        session = require(request, Role.FOCAL_POINT)
        built = await agenda_of(session, partner)
        language = words_of(request).language
        document = await asyncio.to_thread(to_pdf, built, language, fonts=print_fonts(language))
        name = f"agenda-{session.principal.country}-{partner}-{services.clock():%Y-%m-%d}-{language}.pdf"
        return Response(
            document,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    # -- the regional body ------------------------------------------------------------------------

    @router.get("/regional", response_class=HTMLResponse)
    async def regional(request: Request) -> Response:
        session = require(request, Role.REGIONAL)
        words = words_of(request)
        documents = await asyncio.to_thread(services.store.publications, 12)
        latest = documents[-1] if documents else None
        context: dict[str, Any] = {"document": latest}
        if latest is not None:
            k = views.withheld(latest)
            context.update(
                k=k,
                people=views.shown(latest["people"]["value"], latest["people"]["suppressed"], words, k),
                flows=views.flows(latest, words),
                exploitation=views.cross_table(
                    latest, "by_exploitation", words, words("table_by_exploitation")
                ),
                sex_age=views.cross_table(latest, "sex_by_age_band", words, words("table_sex_by_age_band")),
                timeliness=views.timeliness_over_time(documents, words),
                measures=views.MEASURES,
            )
        return page(request, "regional.html", session=session, **context)

    # -- operators --------------------------------------------------------------------------------

    @router.get("/operator", response_class=HTMLResponse)
    async def operator(request: Request, redriven: int | None = None, topic: str | None = None) -> Response:
        session = require(request, Role.OPERATOR)
        bodies = await asyncio.to_thread(_health_files, status_dir)
        letters = await asyncio.to_thread(services.store.dead_letters, limit=100)
        receipts = await asyncio.to_thread(services.store.receipts_by_status)
        statuses = sorted({s for counts in receipts.values() for s in counts})
        return page(
            request,
            "operator.html",
            session=session,
            workers=views.worker_rows(bodies, now=datetime.now(UTC)),
            letters=letters,
            receipts=receipts,
            statuses=statuses,
            redriven=redriven,
            redriven_topic=topic,
        )

    @router.post("/operator/dead-letters/{seq}/redrive")
    async def redrive(
        request: Request, seq: int, csrf: Annotated[str, Form(max_length=100)] = ""
    ) -> Response:
        session = require(request, Role.OPERATOR)
        check_form(request, session, csrf)
        letter = await asyncio.to_thread(services.store.dead_letter, seq)
        if letter is None or not letter.source_topic or not letter.value:
            raise _Refused(404, "not_found")
        # Sent again as it first arrived: the router decides afresh (a duplicate is still a duplicate).
        headers = [
            (name, value)
            for name, value in letter.headers
            if not name.startswith("lintas_error") and not name.startswith("lintas_source")
        ]
        headers.append(
            (
                "lintas_redriven_from",
                f"{letter.source_topic}/{letter.source_partition}/{letter.source_offset}".encode(),
            )
        )
        await services.publisher.publish(
            [Outgoing(letter.source_topic, (letter.key or "").encode(), letter.value, headers)], atomic=False
        )
        log.info("dead_letter_redriven", principal=session.principal.name, seq=seq, topic=letter.source_topic)
        return RedirectResponse(
            f"/ui/operator?redriven={seq}&topic={quote(letter.source_topic)}", status_code=303
        )

    # -- national systems -------------------------------------------------------------------------

    @router.get("/receipts", response_class=HTMLResponse)
    async def receipts(request: Request) -> Response:
        session = require(request, Role.NATIONAL_SYSTEM)
        counts = await asyncio.to_thread(services.store.receipts_by_status)
        return page(
            request, "receipts.html", session=session, counts=counts.get(session.principal.country, {})
        )

    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")


_PAGE = 50


class _Backlogs:
    """Each country's backlog, computed at most once a second however many pages ask: it folds every
    open case's state, which is the dashboard's costliest read and shares the process with the
    projector."""

    FRESH_S = 1.0

    def __init__(self, services: Services) -> None:
        self.services = services
        self._computed: dict[str, tuple[float, list[views.BacklogRow]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def of(self, country: str) -> list[views.BacklogRow]:
        loop = asyncio.get_running_loop()
        async with self._locks.setdefault(country, asyncio.Lock()):
            found = self._computed.get(country)
            if found is not None and loop.time() - found[0] < self.FRESH_S:
                return found[1]
            states = await asyncio.to_thread(self.services.store.case_states, party=country)
            rows = views.backlog(states.values(), country)
            self._computed[country] = (loop.time(), rows)
            return rows


def _same_origin(request: Request) -> bool:
    """A browser names the page a form was posted from; it must be this site (absent: not a browser)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def _local(target: str) -> str:
    """Only a path of the dashboard itself: a sign-in link cannot send anyone elsewhere."""
    if not target.startswith("/ui") or target.startswith("//") or "\\" in target:
        return "/ui/"
    return target


async def _party_state(services: Services, session: Session, case_id: str) -> Any:
    country = session.principal.country
    parties = await asyncio.to_thread(services.store.case_parties, case_id)
    state = await asyncio.to_thread(services.store.case_state, case_id) if country in parties else None
    if state is None:
        # Not party, or no such case: the same answer, so nobody learns which.
        raise _Refused(404, "not_found")
    return state


def _summary(services: Services, state: Any) -> dict[str, Any]:
    owed = obligations(state, deadlines_for(state, services.agreements))
    return {
        "stage": state.stage.value,
        "host": state.host.value,
        "home": state.home.value if state.home else None,
        "transit": sorted(c.value for c in state.transit),
        "next_action_by": state.next_action_by.value if state.next_action_by else None,
        "obligations": owed,
        "now": services.clock(),
    }


def _health_files(folder: Path | None) -> list[tuple[str, dict[str, Any]]]:
    """The workers' health files in ``folder`` (LINTAS_PROCESSOR__STATUS_DIR), by worker."""
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            found.append((path.stem, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue  # being replaced at this moment, or not a health file
    return found


def _alert_row(words: Words, seq: int, record: dict[str, Any]) -> dict[str, Any]:
    """An alert as the page shows it, in the reader's language (the live feed sends these)."""
    return {
        "seq": seq,
        "case_id": record.get("case_id"),
        "level": words.label("AlertLevel", record.get("level")),
        "level_code": record.get("level"),
        "kind": words.label("ObligationKind", record.get("kind")),
        "due": str(record.get("due", ""))[:10],
        "owner": words.label("CountryCode", record.get("owner")),
        "waiting": words.label("CountryCode", record.get("waiting")),
        "url": f"/ui/cases/{quote(str(record.get('case_id', '')))}",
    }
