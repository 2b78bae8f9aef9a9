"""The HTTP API, versioned under ``/v1``: thin handlers over the read store, the contract's checks and
the log. Which principal may reach what is decided here, deny by default."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Protocol

import structlog
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field, TypeAdapter

from connectors.api.audit import AuditLog, audit_record
from connectors.api.credentials import CredentialError, Credentials, Principal, Role
from connectors.api.problems import FieldProblem, Problem, install, problem_responses, problem_schemas
from connectors.dashboard.vendor import print_fonts
from connectors.readstore.store import InboxRow, ReadStore
from hub.agreements import Agreements
from hub.crypto.keystore import KeysDestroyed
from hub.events import Event, event_problems
from hub.headers import Headers, envelope_headers
from hub.topics import nrm_events
from hub.wire.codec import Wire
from projections.agenda.build import Agenda, build_agenda
from projections.agenda.render import to_html, to_pdf
from projections.cases.fold import CaseState, fold
from projections.obligations.rules import deadlines_for, obligations
from projections.stats.rules import Dimension, PeriodUnit, StatisticsRules

log = structlog.get_logger("lintas.api")

API_VERSION = "1.0.0"
PURPOSE_HEADER = "X-Lintas-Purpose"
#: Reasons of a rejection that are a conflict with what the hub already holds, not a bad event.
CONFLICT_REASONS = frozenset(
    {"conflict", "out_of_sequence", "case_closed", "consent_withdrawn", "personal_data_erased"}
)
_JSON_TYPES = ("application/json", "application/cloudevents+json")


class EventWriter(Protocol):
    def encode(self, event: Event) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes
    headers: Headers


class Publisher(Protocol):
    async def publish(self, messages: Sequence[Outgoing], *, atomic: bool) -> None: ...


class Changes:
    """Wakes the handlers waiting for the read store (a receipt, an alert) when the projector in this
    process applied a batch; without one in the process (another instance projects), they poll."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self, _applied: int = 0) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, at_most: float) -> None:
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), at_most)


@dataclass
class Services:
    """Everything the handlers use, wired once (see :mod:`connectors.api.server`)."""

    store: ReadStore
    credentials: Credentials
    wire: Wire
    writer: EventWriter
    agreements: Agreements
    publisher: Publisher
    audit: AuditLog
    #: the hub's clock (simulated under ``lintas up --speed``): event checks, deadlines, agendas
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: the wall clock: credentials expire and reads are audited in real time, whatever the simulation
    real_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    max_batch_events: int = 500
    max_body_bytes: int = 4 * 1024 * 1024
    max_wait_seconds: float = 30.0
    #: how often a waiting handler looks at the store when no projector in the process wakes it
    poll_seconds: float = 0.05
    changes: Changes = field(default_factory=Changes)


# -- response models (the OpenAPI contract) -------------------------------------------------------


class Submitted(BaseModel):
    event_id: str
    case_id: str
    status: str = Field(description="pending, or the receipt's status when waited for.")
    receipt_url: str
    receipt: dict[str, Any] | None = Field(default=None, description="The hub's receipt, when waited for.")


class BatchSubmitted(BaseModel):
    events: list[Submitted]


class ReceiptOut(BaseModel):
    event_id: str
    status: str
    receipt: dict[str, Any]


class InboxItem(BaseModel):
    cursor: str
    event_id: str
    event_type: str
    case_id: str
    source_country: str
    occurred_at: datetime
    received_at: datetime
    case_url: str


class InboxPage(BaseModel):
    items: list[InboxItem]
    next_cursor: str | None


class ThreadEvent(BaseModel):
    event: dict[str, Any] = Field(description="The event as the reader's country may see it.")
    sent_by_reader: bool
    sections_read: list[str]
    sections_withheld: list[str]
    sections_erased: list[str]


class ObligationOut(BaseModel):
    kind: str
    due: datetime
    owner: str
    waiting: str
    detail: str
    also: list[str]


class CaseThread(BaseModel):
    case_id: str
    stage: str
    host: str
    home: str | None
    transit: list[str]
    next_action_by: str | None
    obligations: list[ObligationOut]
    events: list[ThreadEvent]


class AlertOut(BaseModel):
    id: str
    alert: dict[str, Any]


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class PeriodOut(BaseModel):
    first: str = Field(description="First month (YYYY-MM).")
    last: str = Field(description="Last month (YYYY-MM).")
    unit: PeriodUnit = Field(description="Counted by month or by quarter of identification.")


class CountOut(BaseModel):
    value: int | None = Field(description="People; null when withheld.")
    suppressed: bool


class CellOut(BaseModel):
    key: dict[str, str] = Field(description='One value per dimension; "*" for all of them (a total).')
    value: int | None
    suppressed: bool


class TableOut(BaseModel):
    name: str
    title: str
    rows: list[Dimension]
    column: Dimension
    multi_counted: bool = Field(
        description="A person with several values of the column is counted under each."
    )
    cells: list[CellOut] = Field(description="The non-zero counts with the totals; an absent count is zero.")


class IndicatorOut(BaseModel):
    value: float | None = Field(description="A median of days, or a share of follow-ups on time.")
    cases: int | None = Field(description="The people it rests on; null when withheld.")
    observations: int | None
    suppressed: bool


class TimelinessOut(BaseModel):
    corridor: str = Field(description='An agreement id, HOST->HOME, HOST->unknown, or "*" for all.')
    identification_to_referral: IndicatorOut
    referral_to_answer: IndicatorOut
    answer_to_return: IndicatorOut
    return_to_handover: IndicatorOut
    follow_ups_on_time: IndicatorOut


class StatsOut(BaseModel):
    """A publication of the regional statistics, as published on lintas.regional.stats."""

    format: str = Field(description="lintas.regional-statistics")
    version: int
    id: str = Field(
        description="RS- and 16 hex digits of the SHA-256 of the document's canonical JSON without it."
    )
    published: str = Field(description="The month of publication (YYYY-MM).")
    period: PeriodOut
    reference_month: str | None = Field(description="The month from which follow-ups are judged.")
    rules: StatisticsRules = Field(description="The safety rules it was made under.")
    dimensions: list[Dimension]
    people: CountOut
    tables: list[TableOut]
    timeliness: list[TimelinessOut] = Field(description="By corridor, then all corridors last.")
    linked: list[str] = Field(description="The earlier publications it was protected together with.")
    notes: dict[str, str] = Field(description="What a withheld count, rounding and the indicators mean.")


class AccessEntry(BaseModel):
    request_id: str
    at: str
    principal: str
    country: str
    role: str
    action: str
    sections: list[str]
    purpose: str | None


class AgendaFormat(StrEnum):
    json = "json"
    html = "html"
    pdf = "pdf"


# -- authentication and authorisation --------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="A credential from `lintas credentials issue`.")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    challenge = {"WWW-Authenticate": 'Bearer realm="lintas"'}
    if credentials is None:
        raise Problem(
            401, "unauthenticated", "Authorization: a bearer credential is required", headers=challenge
        )
    services = _services(request)
    try:
        principal = await asyncio.to_thread(
            services.credentials.authenticate, credentials.credentials, now=services.real_clock()
        )
    except CredentialError as error:
        raise Problem(401, "unauthenticated", f"Authorization: {error}", headers=challenge) from error
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]


def _allow(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        allowed = ", ".join(role.value for role in roles)
        raise Problem(403, "forbidden", f"role {principal.role.value} may not do this (only {allowed})")


async def _party_to(services: Services, country: str, case_id: str) -> None:
    """Refuse a case ``country`` is not party to as if it did not exist: nobody learns that it does."""
    parties = await asyncio.to_thread(services.store.case_parties, case_id)
    if country not in parties:
        raise Problem(404, "not-found", f"case_id: no case {case_id} to which {country} is party")


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    if given and len(given) <= 64 and given.isascii() and given.isprintable():
        return given
    return str(uuid.uuid4())


# -- the app --------------------------------------------------------------------------------------


def create_app(services: Services, *, lifespan: Any = None) -> FastAPI:
    app = FastAPI(
        title="Lintas",
        version=API_VERSION,
        summary="Transnational referral message hub for victims of trafficking in persons.",
        description=(
            "National systems publish events of the Lintas contract and read their receipts; focal points"
            " read their inbox, case threads, alerts and agendas; the regional body reads the"
            " disclosure-controlled statistics. Every error is `application/problem+json` (RFC 9457)."
            " Every read of a case thread is written to the audit log first."
        ),
        openapi_url="/v1/openapi.json",
        # The interactive pages load scripts from a CDN: nothing at run time may.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.services = services
    install(app)

    @app.middleware("http")
    async def _request_ids(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = _request_id(request)
        request.state.request_id = request_id
        response = await call_next(request)
        response.headers["X-Request-ID"] = request_id
        return response

    _routes(app)
    return app


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "too-large", f"body: {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "too-large", f"body: over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _events_of(document: Any, limit: int) -> tuple[list[Any], bool]:
    """The events of a request body and whether it was a batch."""
    if isinstance(document, dict) and "events" in document and "envelope" not in document:
        events = document["events"]
        extra = sorted(set(document) - {"events"})
        if extra:
            raise Problem(
                422,
                "invalid-event",
                f"{extra[0]}: field is not part of a batch",
                errors=[FieldProblem(path=name, reason="field is not part of a batch") for name in extra],
            )
        if not isinstance(events, list) or not events:
            raise Problem(422, "invalid-event", "events: a batch is a non-empty list of events")
        if len(events) > limit:
            raise Problem(413, "too-large", f"events: {len(events)} events is over the limit of {limit}")
        return events, True
    return [document], False


def _checked(services: Services, principal: Principal, items: list[Any], batch: bool) -> list[Event]:
    now = services.clock()
    events: list[Event] = []
    problems: list[FieldProblem] = []
    for index, item in enumerate(items):
        event, found = event_problems(item, now=now)
        at = index if batch else None
        problems += [FieldProblem(path=path, reason=reason, index=at) for path, reason in found]
        if event is not None:
            events.append(event)
    if problems:
        first = problems[0]
        where = f"event {first.index}: " if first.index is not None else ""
        raise Problem(
            422,
            "invalid-event",
            f"{where}{first.path}: {first.reason}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            errors=problems,
        )
    for index, event in enumerate(events):
        envelope = event.envelope
        where = f"event {index}: " if batch else ""
        if envelope.source_country.value != principal.country:
            raise Problem(
                403,
                "forbidden",
                f"{where}envelope.source_country: {envelope.source_country.value} is not {principal.country},"
                " the country of this credential",
            )
        if principal.agency is not None and envelope.source_agency != principal.agency:
            raise Problem(
                403,
                "forbidden",
                f"{where}envelope.source_agency: {envelope.source_agency} is not {principal.agency},"
                " the agency of this credential",
            )
    ids = [str(event.envelope.event_id) for event in events]
    if len(set(ids)) != len(ids):
        raise Problem(422, "invalid-event", "envelope.event_id: the same event id twice in one batch")
    return events


def _encoded(services: Services, events: list[Event], batch: bool) -> list[Outgoing]:
    messages = []
    for index, event in enumerate(events):
        envelope = event.envelope
        try:
            value = services.writer.encode(event)
        except KeysDestroyed as error:
            where = f"event {index}: " if batch else ""
            raise Problem(
                409,
                "personal-data-erased",
                f"{where}personal: the case's keys were destroyed ({error}); send it without personal data",
            ) from error
        messages.append(
            Outgoing(
                nrm_events(envelope.source_country.value),
                envelope.case_id.encode(),
                value,
                envelope_headers(envelope),
            )
        )
    return messages


def _receipt_status(receipt: dict[str, Any]) -> int:
    status = receipt.get("status")
    if status in ("Accepted", "Duplicate"):
        return 200
    if receipt.get("reason_code") in CONFLICT_REASONS:
        return 409
    return 422


def _opened_json(event: Event) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(event.model_dump_json())
    return value


def _cursor(seq: int) -> str:
    return str(seq)


def _after(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        raise Problem(400, "bad-request", f"cursor: {cursor!r} is not a cursor this API gave")
    return int(cursor)


def _inbox_item(row: InboxRow) -> InboxItem:
    return InboxItem(
        cursor=_cursor(row.seq),
        event_id=row.event_id,
        event_type=row.event_type,
        case_id=row.case_id,
        source_country=row.source_country,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        case_url=f"/v1/cases/{row.case_id}",
    )


def thread_states(services: Services, country: str, as_of: datetime | None) -> dict[str, CaseState]:
    if as_of is None:
        return services.store.case_states(party=country)
    known = services.store.case_states(party=country)
    events = []
    for stored in services.store.case_events(sorted(known)):
        if stored.occurred_at <= as_of:
            events.append(services.wire.codec.decode(stored.value))
    return fold(events)


_AGENDA = TypeAdapter(Agenda)


def _routes(app: FastAPI) -> None:
    national = [Role.NATIONAL_SYSTEM]
    focal = [Role.FOCAL_POINT]

    @app.get("/v1/health", tags=["operations"], summary="Liveness (no credential needed)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/v1/events",
        tags=["national systems"],
        summary="Publish one event, or a batch (all or nothing)",
        status_code=202,
        response_model=Submitted | BatchSubmitted,
        responses={
            200: {"model": Submitted | BatchSubmitted, "description": "Waited for: accepted."},
            **problem_responses(400, 401, 403, 409, 413, 415, 422),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": (
                    "One event of the Lintas contract as JSON (the Avro schemas' field names, codes as"
                    ' their symbols, times as ISO 8601), or `{"events": [...]}`, a batch. A batch is'
                    " all or nothing: one invalid event (reported with its index) and none is published."
                ),
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/EventDocument"},
                                {
                                    "type": "object",
                                    "required": ["events"],
                                    "properties": {
                                        "events": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/EventDocument"},
                                        }
                                    },
                                },
                            ]
                        }
                    }
                },
            }
        },
    )
    async def post_events(
        request: Request,
        response: Response,
        services: ServicesDep,
        principal: PrincipalDep,
        wait: Annotated[
            float, Query(ge=0, le=300, description="Seconds to wait for the router's receipt.")
        ] = 0,
    ) -> Submitted | BatchSubmitted:
        _allow(principal, *national)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in _JSON_TYPES:
            raise Problem(
                415, "unsupported-media-type", f"Content-Type: {media or 'none'} is not application/json"
            )
        body = await _body(request, services.max_body_bytes)
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise Problem(400, "malformed-json", f"body: not JSON ({error})") from error
        items, batch = _events_of(document, services.max_batch_events)
        events = _checked(services, principal, items, batch)
        messages = await asyncio.to_thread(_encoded, services, events, batch)
        baseline = await asyncio.to_thread(services.store.receipt_seq)
        await services.publisher.publish(messages, atomic=batch)
        log.info("events_published", principal=principal.name, count=len(events), batch=batch)
        submitted = [
            Submitted(
                event_id=str(event.envelope.event_id),
                case_id=event.envelope.case_id,
                status="pending",
                receipt_url=f"/v1/receipts/{event.envelope.event_id}",
            )
            for event in events
        ]
        if wait > 0:
            submitted = await _waited(
                services, principal, submitted, baseline, min(wait, services.max_wait_seconds)
            )
        codes = [_receipt_status(s.receipt) if s.receipt else 202 for s in submitted]
        if not batch:
            response.status_code = codes[0]
            response.headers["Location"] = submitted[0].receipt_url
            return submitted[0]
        response.status_code = 202 if 202 in codes else 200
        return BatchSubmitted(events=submitted)

    @app.get(
        "/v1/receipts/{event_id}",
        tags=["national systems"],
        summary="The hub's receipt for one of the caller's own events",
        responses=problem_responses(401, 403, 404),
    )
    async def get_receipt(
        services: ServicesDep,
        principal: PrincipalDep,
        event_id: Annotated[str, Path(max_length=36)],
    ) -> ReceiptOut:
        _allow(principal, *national)
        found = await asyncio.to_thread(services.store.latest_receipt, principal.country, event_id)
        if found is None:
            raise Problem(
                404, "not-found", f"event_id: no receipt for {event_id} sent by {principal.country}"
            )
        return ReceiptOut(event_id=event_id, status=found.status, receipt=found.record)

    @app.get(
        "/v1/inbox",
        tags=["focal points"],
        summary="What partner countries sent to the caller's country (oldest first, by cursor)",
        responses=problem_responses(400, 401, 403),
    )
    async def get_inbox(
        services: ServicesDep,
        principal: PrincipalDep,
        cursor: Annotated[
            str | None, Query(max_length=18, description="next_cursor of the page before.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        case_id: Annotated[str | None, Query(max_length=80)] = None,
        event_type: Annotated[str | None, Query(max_length=40)] = None,
        since: Annotated[datetime | None, Query(description="occurred_at at or after (ISO 8601).")] = None,
        until: Annotated[datetime | None, Query(description="occurred_at before (ISO 8601).")] = None,
    ) -> InboxPage:
        _allow(principal, *focal)
        rows = await asyncio.to_thread(
            services.store.inbox_page,
            principal.country,
            after=_after(cursor),
            limit=limit,
            case_id=case_id,
            event_type=event_type,
            since=_utc(since),
            until=_utc(until),
        )
        items = [_inbox_item(row) for row in rows]
        return InboxPage(items=items, next_cursor=items[-1].cursor if len(items) == limit else None)

    @app.get(
        "/v1/cases/{case_id}",
        tags=["focal points"],
        summary="A case thread as the caller's country may see it (audited)",
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def get_case(
        request: Request,
        services: ServicesDep,
        principal: PrincipalDep,
        case_id: Annotated[str, Path(max_length=80)],
        purpose: Annotated[
            str | None,
            Header(alias=PURPOSE_HEADER, max_length=200, description="Why the case is read (audited)."),
        ] = None,
    ) -> CaseThread:
        _allow(principal, *focal)
        country = principal.country
        await _party_to(services, country, case_id)
        if not purpose or not purpose.strip():
            raise Problem(400, "purpose-required", f"{PURPOSE_HEADER}: required to read a case thread")
        thread, sections = await asyncio.to_thread(case_thread, services, country, case_id)
        await services.audit.record(
            audit_record(
                principal,
                request_id=request.state.request_id,
                at=services.real_clock(),
                action="case.read",
                cases=[case_id],
                sections=sections,
                purpose=purpose.strip(),
            )
        )
        return thread

    @app.get(
        "/v1/cases/{case_id}/access-log",
        tags=["focal points"],
        summary="Who read what of a case (parties and operators)",
        responses=problem_responses(401, 403, 404),
    )
    async def get_access_log(
        services: ServicesDep,
        principal: PrincipalDep,
        case_id: Annotated[str, Path(max_length=80)],
    ) -> list[AccessEntry]:
        _allow(principal, Role.FOCAL_POINT, Role.OPERATOR)
        if principal.role is Role.FOCAL_POINT:
            await _party_to(services, principal.country, case_id)
        entries = await asyncio.to_thread(services.store.access_log, case_id)
        return [AccessEntry.model_validate(entry, from_attributes=False) for entry in entries]

    @app.get(
        "/v1/alerts",
        tags=["focal points"],
        summary="Alerts for the caller's country (oldest first, by cursor)",
        responses=problem_responses(400, 401, 403),
    )
    async def get_alerts(
        services: ServicesDep,
        principal: PrincipalDep,
        cursor: Annotated[str | None, Query(max_length=18)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> AlertPage:
        _allow(principal, *focal)
        found = await asyncio.to_thread(
            services.store.alerts_after, principal.country, after=_after(cursor), limit=limit
        )
        items = [AlertOut(id=str(alert.seq), alert=alert.record) for alert in found]
        return AlertPage(items=items, next_cursor=items[-1].id if len(items) == limit else None)

    @app.get(
        "/v1/alerts/stream",
        tags=["focal points"],
        summary="Alerts as Server-Sent Events; resumes after Last-Event-ID",
        response_class=EventSourceResponse,
        responses=problem_responses(400, 401, 403),
    )
    async def stream_alerts(
        request: Request,
        services: ServicesDep,
        principal: PrincipalDep,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=18)] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        _allow(principal, *focal)
        after = _after(last_event_id)
        while not await request.is_disconnected():
            found = await asyncio.to_thread(
                services.store.alerts_after, principal.country, after=after, limit=100
            )
            for alert in found:
                after = alert.seq
                yield ServerSentEvent(id=str(alert.seq), event="alert", data=alert.record)
            if not found:
                await services.changes.wait(0.5)

    @app.get(
        "/v1/agendas/{partner}",
        tags=["focal points"],
        summary="The next Case Management Meeting agenda with a partner country",
        responses={
            200: {
                "content": {"text/html": {}, "application/pdf": {}},
                "description": "The agenda (JSON, HTML or PDF).",
            },
            **problem_responses(401, 403, 404, 422),
        },
    )
    async def get_agenda(
        services: ServicesDep,
        principal: PrincipalDep,
        partner: Annotated[str, Path(pattern=r"^[A-Z]{2}$")],
        as_of: Annotated[
            datetime | None, Query(description="The meeting's date (ISO 8601); now by default.")
        ] = None,
        lang: Annotated[str, Query(pattern=r"^[a-z]{2,3}$")] = "en",
        format: Annotated[AgendaFormat, Query()] = AgendaFormat.json,
    ) -> Response:
        _allow(principal, *focal)
        corridor = services.agreements.corridor(principal.country, partner)
        if corridor is None:
            raise Problem(404, "not-found", f"partner: no agreement joins {principal.country} and {partner}")
        moment = _utc(as_of) or services.clock()
        states = await asyncio.to_thread(thread_states, services, principal.country, _utc(as_of))
        try:
            agenda = build_agenda(states, corridor, as_of=moment)
            if format is AgendaFormat.pdf:
                document = await asyncio.to_thread(to_pdf, agenda, lang, fonts=print_fonts(lang))
                return Response(document, media_type="application/pdf")
            if format is AgendaFormat.html:
                return HTMLResponse(to_html(agenda, lang))
        except (KeyError, FileNotFoundError, ValueError) as error:
            raise Problem(422, "invalid-request", f"lang: {lang!r} cannot be rendered ({error})") from error
        return JSONResponse(_AGENDA.dump_python(agenda, mode="json"))

    @app.get(
        "/v1/stats",
        tags=["regional body"],
        summary="The latest publication of the regional statistics: aggregates, never a case",
        description="What was published last on lintas.regional.stats (`lintas stats --publish`), never"
        " figures computed on request: two answers a day apart cannot be subtracted.",
        responses=problem_responses(401, 403, 404),
    )
    async def get_stats(services: ServicesDep, principal: PrincipalDep) -> StatsOut:
        _allow(principal, Role.REGIONAL)
        document = await asyncio.to_thread(services.store.latest_publication)
        if document is None:
            raise Problem(404, "not-found", "statistics: no statistics published yet")
        return StatsOut.model_validate(document)

    @app.get(
        "/v1/stats/{publication_id}",
        tags=["regional body"],
        summary="One publication of the regional statistics, by its id",
        responses=problem_responses(401, 403, 404),
    )
    async def get_publication(
        services: ServicesDep,
        principal: PrincipalDep,
        publication_id: Annotated[str, Path(description="RS-... (its id).")],
    ) -> StatsOut:
        _allow(principal, Role.REGIONAL)
        document = await asyncio.to_thread(services.store.publication, publication_id)
        if document is None:
            raise Problem(404, "not-found", f"publication_id: no publication {publication_id}")
        return StatsOut.model_validate(document)

    def _openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            schema["components"]["schemas"].update(problem_schemas())
            # FastAPI documents its own validation error; this API answers every error as a problem.
            invalid = problem_responses(422)[422]
            for operations in schema["paths"].values():
                for operation in operations.values():
                    if "422" in operation.get("responses", {}):
                        operation["responses"]["422"] = invalid
            for name in ("HTTPValidationError", "ValidationError"):
                schema["components"]["schemas"].pop(name, None)
            schema["components"]["schemas"]["EventDocument"] = {
                "type": "object",
                "description": "An event of the Lintas contract (schemas/avro), as JSON.",
                "required": ["envelope"],
                "properties": {"envelope": {"type": "object"}},
                "additionalProperties": True,
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = _openapi  # type: ignore[method-assign]


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _waited(
    services: Services, principal: Principal, submitted: list[Submitted], baseline: int, wait: float
) -> list[Submitted]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    found: dict[str, dict[str, Any]] = {}
    while True:
        for item in submitted:
            if item.event_id in found:
                continue
            receipt = await asyncio.to_thread(
                services.store.latest_receipt, principal.country, item.event_id, after=baseline
            )
            if receipt is not None:
                found[item.event_id] = receipt.record
        if len(found) == len(submitted) or loop.time() >= deadline:
            break
        await services.changes.wait(services.poll_seconds)
    return [
        item.model_copy(update={"status": found[item.event_id]["status"], "receipt": found[item.event_id]})
        if item.event_id in found
        else item
        for item in submitted
    ]


def case_thread(services: Services, country: str, case_id: str) -> tuple[CaseThread, list[str]]:
    """The case as ``country`` may see it, and the sections read to show it."""
    store = services.store
    state = store.case_state(case_id)
    if state is None:
        raise Problem(404, "not-found", f"case_id: no case {case_id}")
    copies = [(stored.occurred_at, stored.value, True) for stored in store.own_events(case_id, country)]
    copies += [
        (row.occurred_at, row.value, False)
        for row in store.inbox_page(country, case_id=case_id, limit=10_000)
    ]
    events: list[ThreadEvent] = []
    sections: list[str] = []
    for _, value, own in sorted(copies, key=lambda copy: copy[0]):
        opened = services.wire.open(value, reader=country, verify=False, now=services.clock())
        sections += opened.read
        events.append(
            ThreadEvent(
                event=_opened_json(opened.event),
                sent_by_reader=own,
                sections_read=list(opened.read),
                sections_withheld=list(opened.withheld),
                sections_erased=list(opened.erased),
            )
        )
    owed = obligations(state, deadlines_for(state, services.agreements))
    thread = CaseThread(
        case_id=case_id,
        stage=state.stage.value,
        host=state.host.value,
        home=state.home.value if state.home else None,
        transit=sorted(country.value for country in state.transit),
        next_action_by=state.next_action_by.value if state.next_action_by else None,
        obligations=[
            ObligationOut(
                kind=o.kind.value,
                due=o.due,
                owner=o.owner.value,
                waiting=o.waiting.value,
                detail=o.detail,
                also=[c.value for c in o.also],
            )
            for o in owed
        ],
        events=events,
    )
    return thread, sections
