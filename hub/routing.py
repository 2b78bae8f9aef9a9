"""The routing decision: one submitted message in, what the hub does with it out. Pure.

For each message from ``lintas.nrm.<cc>.events`` the hub decodes and checks it, checks that it comes from
the topic's own country, that it is new (or an identical resubmission), that it is the case's next allowed
message (as EESSI's business use cases do), that an agreement covers its corridor and type, then removes
what the agreement and the person's consent do not grant and routes it to the partner's inbox. Every
message gets a receipt; anything rejected also goes, untouched, to the dead letters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from hub.agreements import Agreements
from hub.codec import Codec
from hub.contract import (
    CaseClosed,
    ConsentChanged,
    CountryCode,
    DataCategory,
    FollowUpRecorded,
    HandoverCompleted,
    Receipt,
    ReceiptStatus,
    ReferralAcknowledged,
    ReferralAnswered,
    ReferralDecision,
    ReferralRequested,
    ReturnNoticeIssued,
    VictimIdentified,
)
from hub.errors import InvalidEvent
from hub.events import Event
from hub.headers import Headers, envelope_headers
from hub.minimise import minimise
from hub.topics import ACCEPTED_EVENTS, DEADLETTER, focal_inbox, nrm_receipts

ReferralStage = Literal["none", "requested", "acknowledged", "accepted", "declined"]


class Reason(StrEnum):
    """Stable reason codes carried by receipts and dead letters."""

    UNDECODABLE = "undecodable"
    UNKNOWN_SCHEMA = "unknown_schema"
    INVALID_EVENT = "invalid_event"
    WRONG_TOPIC = "wrong_topic"
    CONFLICT = "conflict"
    OUT_OF_SEQUENCE = "out_of_sequence"
    NOT_PARTY = "not_party"
    NO_AGREEMENT = "no_agreement"
    TYPE_NOT_ALLOWED = "event_type_not_allowed"
    CASE_CLOSED = "case_closed"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    #: An output of the event would exceed the hub's message size limit.
    TOO_LARGE = "too_large"
    #: Kafka refused an output of the event for good (not allowed, invalid for its topic).
    OUTPUT_FAILED = "output_failed"


class CaseRoute(BaseModel):
    """What the router remembers of a case: enough to check sequence, parties, consent, duplicates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str
    opened_by: CountryCode
    partner: CountryCode | None = None
    consent: frozenset[DataCategory] = frozenset()
    referral: ReferralStage = "none"
    return_noticed: bool = False
    handed_over: bool = False
    closed_by: frozenset[CountryCode] = frozenset()
    #: event id -> digest of the bytes first accepted under it
    seen: dict[str, str] = {}

    def parties(self) -> set[CountryCode]:
        return {self.opened_by} | ({self.partner} if self.partner else set())


@dataclass(frozen=True)
class Incoming:
    """A message as read from a national topic."""

    country: str  # the topic's country: lintas.nrm.<cc>.events
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True)
class Decision:
    status: ReceiptStatus
    reason: Reason | None
    message: str
    outputs: tuple[Outgoing, ...]
    case_id: str | None = None
    state: CaseRoute | None = None  # the case's new state; None when unchanged


class _Rejected(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _digest(value: bytes) -> str:
    return hashlib.blake2b(value, digest_size=16).hexdigest()


# -- the case's next allowed message -------------------------------------------------------------


def _require(condition: bool, reason: Reason, message: str) -> None:
    if not condition:
        raise _Rejected(reason, message)


def next_state(state: CaseRoute | None, event: Event) -> CaseRoute:
    """The case after ``event``, or :class:`_Rejected` when the event may not come now."""
    envelope = event.envelope
    source, destination = envelope.source_country, envelope.destination_country
    kind = envelope.event_type.value
    if state is None:
        _require(
            isinstance(event, VictimIdentified),
            Reason.OUT_OF_SEQUENCE,
            f"{kind} for unknown case {envelope.case_id}: a case starts with VictimIdentified",
        )
        assert isinstance(event, VictimIdentified)
        return CaseRoute(
            case_id=envelope.case_id,
            opened_by=source,
            partner=destination,
            consent=frozenset(event.consent_scope),
        )

    _require(
        source in state.parties(),
        Reason.NOT_PARTY,
        f"{source.value} is not a party to case {state.case_id}",
    )
    if destination is not None and state.partner is not None:
        _require(
            destination in state.parties() and destination != source,
            Reason.NOT_PARTY,
            f"destination {destination.value} is not the other party to case {state.case_id}",
        )
    if not isinstance(event, ConsentChanged):
        _require(
            source not in state.closed_by,
            Reason.CASE_CLOSED,
            f"{source.value} closed case {state.case_id}; only consent changes may follow",
        )
    # Only the country that opened the case chooses whom to refer it to.
    partner = state.partner or (destination if source == state.opened_by else None)
    if partner != state.partner:
        state = replace_state(state, partner=partner)

    match event:
        case VictimIdentified():
            _require(
                source == state.opened_by,
                Reason.NOT_PARTY,
                f"case {state.case_id} was opened by {state.opened_by.value}",
            )
            return replace_state(state, consent=frozenset(event.consent_scope))
        case ReferralRequested():
            _require(
                state.referral in ("none", "declined"),
                Reason.OUT_OF_SEQUENCE,
                f"a referral of case {state.case_id} is already {state.referral}",
            )
            return replace_state(state, referral="requested")
        case ReferralAcknowledged():
            _require(
                state.referral == "requested",
                Reason.OUT_OF_SEQUENCE,
                f"nothing to acknowledge: the referral of case {state.case_id} is {state.referral}",
            )
            return replace_state(state, referral="acknowledged")
        case ReferralAnswered():
            _require(
                state.referral in ("requested", "acknowledged"),
                Reason.OUT_OF_SEQUENCE,
                f"no open referral to answer for case {state.case_id} (it is {state.referral})",
            )
            accepted = event.decision == ReferralDecision.Accepted
            return replace_state(state, referral="accepted" if accepted else "declined")
        case ReturnNoticeIssued():
            _require(
                state.referral == "accepted",
                Reason.OUT_OF_SEQUENCE,
                f"no return notice before the referral of case {state.case_id} is accepted",
            )
            return replace_state(state, return_noticed=True)
        case HandoverCompleted():
            _require(
                state.referral == "accepted",
                Reason.OUT_OF_SEQUENCE,
                f"no handover before the referral of case {state.case_id} is accepted",
            )
            return replace_state(state, handed_over=True)
        case FollowUpRecorded():
            _require(
                state.handed_over,
                Reason.OUT_OF_SEQUENCE,
                f"no follow-up before the handover of case {state.case_id}",
            )
            return state
        case CaseClosed():
            return replace_state(state, closed_by=state.closed_by | {source})
        case ConsentChanged():
            return replace_state(state, consent=frozenset(event.consent_scope))
    raise AssertionError(f"unhandled event type {kind}")  # pragma: no cover


def replace_state(state: CaseRoute, **changes: object) -> CaseRoute:
    return state.model_copy(update=changes)


def encode_route(state: CaseRoute) -> bytes:
    """A case's routing state as the changelog stores it."""
    return state.model_dump_json().encode()


def decode_route(data: bytes) -> CaseRoute:
    return CaseRoute.model_validate_json(data)


# -- the decision ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Router:
    """Everything a decision needs besides the message and the case (the codec holds the clock)."""

    codec: Codec
    agreements: Agreements

    def route(self, message: Incoming, states: Mapping[str, CaseRoute]) -> Decision:
        try:
            event = self.codec.decode(message.value)
        except InvalidEvent as error:
            reason = {
                "undecodable": Reason.UNDECODABLE,
                "unknown_schema": Reason.UNKNOWN_SCHEMA,
            }.get(error.code, Reason.INVALID_EVENT)
            return self._rejected(message, None, reason, str(error))
        envelope = event.envelope
        case_id = envelope.case_id
        state = states.get(case_id)
        try:
            _require(
                envelope.source_country.value == message.country,
                Reason.WRONG_TOPIC,
                f"envelope.source_country: {envelope.source_country.value} may not publish on "
                f"{message.topic}",
            )
            digest = _digest(message.value)
            event_id = str(envelope.event_id)
            if state is not None and event_id in state.seen:
                _require(
                    state.seen[event_id] == digest,
                    Reason.CONFLICT,
                    f"envelope.event_id: {event_id} was already accepted with different content",
                )
                return self._duplicate(message, event)
            new_state = next_state(state, event)
            outputs, withheld, routed_to = self._deliveries(message, event, new_state)
        except _Rejected as rejected:
            return self._rejected(message, event, rejected.reason, rejected.message)
        new_state = replace_state(new_state, seen={**new_state.seen, event_id: digest})
        text = f"routed to {', '.join(c.value for c in routed_to)}" if routed_to else "recorded; not routed"
        if withheld:
            text += f"; withheld: {', '.join(withheld)}"
        receipt = self._receipt(message, event, ReceiptStatus.Accepted, None, text, routed_to, withheld)
        logged = Outgoing(ACCEPTED_EVENTS, case_id.encode(), message.value, list(message.headers))
        return Decision(
            ReceiptStatus.Accepted,
            None,
            text,
            (*outputs, logged, receipt),
            case_id=case_id,
            state=new_state,
        )

    def _deliveries(
        self, message: Incoming, event: Event, state: CaseRoute
    ) -> tuple[list[Outgoing], tuple[str, ...], list[CountryCode]]:
        envelope = event.envelope
        destination = envelope.destination_country
        if destination is None:
            return [], (), []  # kept national: recorded for sequence checks, shared with no one
        terms = self.agreements.terms(envelope.source_country.value, destination.value)
        _require(
            terms is not None,
            Reason.NO_AGREEMENT,
            f"envelope.destination_country: no agreement covers "
            f"{envelope.source_country.value} -> {destination.value}",
        )
        assert terms is not None
        _require(
            envelope.event_type in terms.event_types,
            Reason.TYPE_NOT_ALLOWED,
            f"envelope.event_type: {envelope.event_type.value} may not be sent "
            f"{envelope.source_country.value} -> {destination.value} under the agreement",
        )
        if isinstance(event, ConsentChanged):
            granted = frozenset({DataCategory.CaseCore})  # the partner must learn of it, always
        else:
            _require(
                bool(state.consent),
                Reason.CONSENT_WITHDRAWN,
                f"case {state.case_id}: the person withdrew consent to share; nothing was sent",
            )
            granted = terms.grants & (state.consent | {DataCategory.CaseCore})
        shared, withheld = minimise(event, granted)
        value = message.value if not withheld else self.codec.encode(shared)
        inbox = Outgoing(
            focal_inbox(destination.value),
            envelope.case_id.encode(),
            value,
            envelope_headers(envelope),
        )
        return [inbox], withheld, [destination]

    def reject(self, message: Incoming, reason: Reason, text: str) -> Decision:
        """The rejection of a message for a reason found outside the decision (its outputs do not
        fit, or Kafka refused them); the receipt names the event when its envelope can be read."""
        try:
            event: Event | None = self.codec.decode(message.value)
        except InvalidEvent:
            event = None
        return self._rejected(message, event, reason, text)

    def _duplicate(self, message: Incoming, event: Event) -> Decision:
        text = f"event {event.envelope.event_id} was already accepted; not routed again"
        receipt = self._receipt(message, event, ReceiptStatus.Duplicate, None, text, [], ())
        return Decision(ReceiptStatus.Duplicate, None, text, (receipt,), case_id=event.envelope.case_id)

    def _rejected(self, message: Incoming, event: Event | None, reason: Reason, text: str) -> Decision:
        receipt = self._receipt(message, event, ReceiptStatus.Rejected, reason, text, [], ())
        dead = Outgoing(
            DEADLETTER,
            message.key,
            message.value,
            [
                *message.headers,
                ("lintas_error_code", reason.value.encode()),
                ("lintas_error", text.encode()),
                ("lintas_source_topic", message.topic.encode()),
                ("lintas_source_partition", str(message.partition).encode()),
                ("lintas_source_offset", str(message.offset).encode()),
            ],
        )
        case_id = event.envelope.case_id if event is not None else None
        return Decision(ReceiptStatus.Rejected, reason, text, (receipt, dead), case_id=case_id)

    def _receipt(
        self,
        message: Incoming,
        event: Event | None,
        status: ReceiptStatus,
        reason: Reason | None,
        text: str,
        routed_to: list[CountryCode],
        withheld: tuple[str, ...],
    ) -> Outgoing:
        envelope = event.envelope if event is not None else None
        # The fields of lintas.hub.Receipt, written directly: one receipt per message is hot.
        receipt = {
            "status": status.value,
            "reason_code": reason.value if reason else None,
            "message": text,
            "event_id": envelope.event_id if envelope else None,
            "event_type": envelope.event_type.value if envelope else None,
            "case_id": envelope.case_id if envelope else None,
            "source_topic": message.topic,
            "source_partition": message.partition,
            "source_offset": message.offset,
            "routed_to": [country.value for country in routed_to],
            "withheld": list(withheld),
        }
        key = envelope.case_id.encode() if envelope else message.key
        return Outgoing(
            nrm_receipts(message.country), key, self.codec.encode_record(Receipt.__name__, receipt)
        )


def country_of_topic(topic: str) -> str:
    """``lintas.nrm.th.events`` -> ``TH``."""
    parts = topic.split(".")
    if len(parts) != 4 or parts[:2] != ["lintas", "nrm"] or parts[3] != "events":
        raise ValueError(f"{topic!r} is not a national events topic (lintas.nrm.<cc>.events)")
    return parts[2].upper()
