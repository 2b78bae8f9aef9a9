"""The routing decision: one submitted message in, what the hub does with it out. Pure.

For each message from ``lintas.nrm.<cc>.events`` the hub decodes and checks it, checks that it comes from
the topic's own country, that it is new (or an identical resubmission), that it is the case's next allowed
message (as EESSI's business use cases do), that an agreement covers its corridor and type, then removes
what the agreement and the person's consent do not grant and routes it to the partner's inbox. Every
message gets a receipt; anything rejected also goes, untouched, to the dead letters.

The decision reads the record as the codec decodes it and checks it with the contract's rules without
building a pydantic model (:func:`hub.events.record_is_valid`); whenever that check is not sure, the
models decide, with the error they have always given. ``Router(..., fast_path=False)`` always asks the
models: the reference the fast path is tested against.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import islice
from typing import Any, Final, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict
from pydantic_core import to_json

from hub.agreements import Agreements
from hub.codec import MARKER, Codec, QuickReader, Spans
from hub.contract import (
    CONTRACT_VERSION,
    CountryCode,
    DataCategory,
    Receipt,
    ReceiptStatus,
    ReferralDecision,
)
from hub.crypto.keystore import KeysDestroyed
from hub.crypto.policy import readers_of
from hub.crypto.signing import SignatureError, Signer
from hub.errors import InvalidEvent
from hub.events import Event, record_is_valid
from hub.headers import Headers, record_headers
from hub.minimise import categorised_runs, minimise_record
from hub.schema_registry import EventSchema
from hub.topics import ACCEPTED_EVENTS, DEADLETTER, focal_inbox, nrm_receipts
from hub.wire import format as wire_format
from hub.wire.codec import HUB_SIGNER, Wire
from hub.wire.format import WireEvent
from hub.wire.records import check_header, signed_headers

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
    #: The origin's signature does not verify, or a section is not the one it signed.
    BAD_SIGNATURE = "bad_signature"
    #: The signature names a key the directory does not hold, or not valid when the event was recorded.
    UNKNOWN_KEY = "unknown_key"
    #: A v1 (unsigned) event from a national system the hub may not sign for.
    UNSIGNED = "unsigned"
    #: Personal data for a case whose keys were destroyed.
    PERSONAL_DATA_ERASED = "personal_data_erased"


_COUNTRIES: Final = {country.value: country for country in CountryCode}
_CATEGORIES: Final = {category.value: category for category in DataCategory}
_CASE_CORE: Final = frozenset({DataCategory.CaseCore})


class SeenIds(Mapping[str, str]):
    """Event id -> digest of the bytes first accepted under it: a persistent mapping.

    :meth:`adding` returns a new mapping and leaves this one as it was. The newest mapping of a line
    shares its storage with the ones before it (the id is appended in place, and the older mappings
    keep seeing only their first ``len`` ids), so accepting an event costs O(1), not a copy of every id
    the case has seen. Adding to a mapping that is not the newest of its line (a decision taken again
    from an older state, as after an aborted batch) copies it first.
    """

    __slots__ = ("_ids", "_size")

    def __init__(self, ids: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._ids: dict[str, str] = dict(ids)
        self._size = len(self._ids)

    @classmethod
    def _sharing(cls, ids: dict[str, str], size: int) -> SeenIds:
        seen = cls.__new__(cls)
        seen._ids, seen._size = ids, size
        return seen

    def _own(self) -> dict[str, str] | None:
        """The storage, when every id in it is this mapping's (it is the newest of its line)."""
        return self._ids if len(self._ids) == self._size else None

    def __getitem__(self, event_id: str) -> str:
        own = self._own()
        if own is not None:
            return own[event_id]
        for seen_id, digest in islice(self._ids.items(), self._size):
            if seen_id == event_id:
                return digest
        raise KeyError(event_id)

    def get(self, event_id: str, default: Any = None) -> Any:
        own = self._own()
        if own is not None:
            return own.get(event_id, default)
        try:
            return self[event_id]
        except KeyError:
            return default

    def __contains__(self, event_id: object) -> bool:
        return self.get(event_id) is not None  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        return islice(self._ids, self._size)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"SeenIds({dict(self.items())!r})"

    def adding(self, event_id: str, digest: str) -> SeenIds:
        """These ids and ``event_id``."""
        own = self._own()
        if own is not None and event_id not in own:
            own[event_id] = digest
            return SeenIds._sharing(own, self._size + 1)
        ids = dict(islice(self._ids.items(), self._size))
        ids[event_id] = digest
        return SeenIds._sharing(ids, len(ids))

    def as_dict(self) -> dict[str, str]:
        """A plain dict of these ids (a copy)."""
        return dict(islice(self._ids.items(), self._size))


@dataclass(frozen=True, slots=True)
class CaseRoute:
    """What the router remembers of a case: enough to check sequence, parties, consent, duplicates."""

    case_id: str
    opened_by: CountryCode
    partner: CountryCode | None = None
    consent: frozenset[DataCategory] = frozenset()
    referral: ReferralStage = "none"
    return_noticed: bool = False
    handed_over: bool = False
    closed_by: frozenset[CountryCode] = frozenset()
    #: transit countries the person crosses on the way home (a party receiving only what its
    #: agreements with both parties grant)
    transit: frozenset[CountryCode] = frozenset()
    #: the case's data keys were destroyed: its personal data is erased, and no more is accepted
    shredded: bool = False
    #: ids of the case's events retracted by their sender
    retracted: frozenset[str] = frozenset()
    #: event id -> what was first accepted under it: ``<digest>`` or ``<digest>:<source>:<type>``
    #: (any mapping given is made a SeenIds)
    seen: SeenIds = field(default_factory=SeenIds)

    def __post_init__(self) -> None:
        if type(self.seen) is not SeenIds:
            object.__setattr__(self, "seen", SeenIds(self.seen))

    def parties(self) -> set[CountryCode]:
        return {self.opened_by} | ({self.partner} if self.partner else set())

    def sent(self, event_id: str) -> tuple[str, str] | None:
        """The source country and type of an event accepted in this case (``None``: unknown, or
        accepted before the hub recorded them)."""
        accepted = self.seen.get(event_id)
        if accepted is None or accepted.count(":") != 2:
            return None
        _, source, kind = accepted.split(":")
        return source, kind

    def retracted_ids(self) -> frozenset[str]:
        return self.retracted

    # The pydantic model's API that callers of the model it replaced use.

    def model_dump(self, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
        """The fields by name (``seen`` as a plain dict), as the pydantic model dumped them."""
        skip = set(exclude)
        dumped = {
            name.name: getattr(self, name.name) for name in dataclasses.fields(self) if name.name not in skip
        }
        if "seen" in dumped:
            dumped["seen"] = self.seen.as_dict()
        return dumped

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> CaseRoute:
        return dataclasses.replace(self, **(update or {}))


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
    #: what the worker does in the key store before the decision's transaction commits (idempotent)
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class Grant:
    """Wrap the case's data key for ``country``: it was sent sealed data it is entitled to."""

    case_id: str
    country: str


@dataclass(frozen=True, slots=True)
class Shred:
    """Destroy the case's data keys (consent withdrawn, or retention ended)."""

    case_id: str
    reason: str
    at: datetime


Effect = Grant | Shred


class _Rejected(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _digest(value: bytes) -> str:
    return hashlib.blake2b(value, digest_size=16).hexdigest()


# -- the case's next allowed message -------------------------------------------------------------

#: A case's fields after an event, in CaseRoute's order from ``opened_by`` to ``closed_by``.
_Fields = tuple[
    CountryCode,
    CountryCode | None,
    frozenset[DataCategory],
    ReferralStage,
    bool,
    bool,
    frozenset[CountryCode],
    frozenset[CountryCode],
    bool,
    frozenset[str],
]
#: The routing facts of hub/wire/schemas.py (lintas.wire.Facts) that a rule reads.
_RETRACTABLE_NOT: Final = frozenset({"VictimIdentified"})


def _scope(codes: Iterable[str]) -> frozenset[DataCategory]:
    return frozenset([_CATEGORIES[str(code)] for code in codes])


def _advance(
    state: CaseRoute | None,
    kind: str,
    case_id: str,
    source: CountryCode,
    destination: CountryCode | None,
    fields: Mapping[str, Any],
) -> _Fields:
    """The case's fields after an event of type ``kind`` from ``source`` to ``destination`` whose
    own fields are ``fields``; raises :class:`_Rejected` when the event may not come now."""
    if state is None:
        if kind != "VictimIdentified":
            raise _Rejected(
                Reason.OUT_OF_SEQUENCE,
                f"{kind} for unknown case {case_id}: a case starts with VictimIdentified",
            )
        consent = _scope(fields["consent_scope"])
        return (
            source,
            destination,
            consent,
            "none",
            False,
            False,
            frozenset(),
            frozenset(),
            False,
            frozenset(),
        )

    opened_by, partner = state.opened_by, state.partner
    if source != opened_by and source != partner:
        raise _Rejected(Reason.NOT_PARTY, f"{source.value} is not a party to case {state.case_id}")
    if (
        destination is not None
        and partner is not None
        and (destination == source or (destination != opened_by and destination != partner))
    ):
        raise _Rejected(
            Reason.NOT_PARTY,
            f"destination {destination.value} is not the other party to case {state.case_id}",
        )
    closed_by = state.closed_by
    if kind != "ConsentChanged" and source in closed_by:
        raise _Rejected(
            Reason.CASE_CLOSED,
            f"{source.value} closed case {state.case_id}; only consent changes may follow",
        )
    # Only the country that opened the case chooses whom to refer it to.
    if partner is None and source == opened_by:
        partner = destination
    consent, referral = state.consent, state.referral
    noticed, handed_over = state.return_noticed, state.handed_over
    transit, shredded, retracted = state.transit, state.shredded, state.retracted

    match kind:
        case "VictimIdentified":
            if source != opened_by:
                raise _Rejected(Reason.NOT_PARTY, f"case {state.case_id} was opened by {opened_by.value}")
            consent = _scope(fields["consent_scope"])
        case "ReferralRequested":
            if referral not in ("none", "declined"):
                raise _Rejected(
                    Reason.OUT_OF_SEQUENCE, f"a referral of case {state.case_id} is already {referral}"
                )
            referral = "requested"
        case "ReferralAcknowledged":
            if referral != "requested":
                raise _Rejected(
                    Reason.OUT_OF_SEQUENCE,
                    f"nothing to acknowledge: the referral of case {state.case_id} is {referral}",
                )
            referral = "acknowledged"
        case "ReferralAnswered":
            if referral not in ("requested", "acknowledged"):
                raise _Rejected(
                    Reason.OUT_OF_SEQUENCE,
                    f"no open referral to answer for case {state.case_id} (it is {referral})",
                )
            referral = "accepted" if fields["decision"] == ReferralDecision.Accepted else "declined"
        case "ReturnNoticeIssued":
            if referral != "accepted":
                raise _Rejected(
                    Reason.OUT_OF_SEQUENCE,
                    f"no return notice before the referral of case {state.case_id} is accepted",
                )
            noticed = True
        case "HandoverCompleted":
            if referral != "accepted":
                raise _Rejected(
                    Reason.OUT_OF_SEQUENCE,
                    f"no handover before the referral of case {state.case_id} is accepted",
                )
            handed_over = True
        case "FollowUpRecorded":
            if not handed_over:
                raise _Rejected(
                    Reason.OUT_OF_SEQUENCE, f"no follow-up before the handover of case {state.case_id}"
                )
        case "CaseClosed":
            closed_by = closed_by | {source}
        case "ConsentChanged":
            consent = _scope(fields["consent_scope"])
            # Withdrawing consent to share the person's identity destroys the case's keys for good.
            shredded = shredded or DataCategory.PersonalIdentity not in consent
        case "TransitPartyChanged":
            transit = _transit_changed(state, source, fields, transit)
        case "EventCorrected" | "EventRetracted":
            target = str(fields["target_event_id"])
            sent = state.sent(target)
            if target not in state.seen:
                raise _Rejected(
                    Reason.OUT_OF_SEQUENCE,
                    f"target_event_id: {target} is not an event of case {state.case_id}",
                )
            if sent is not None and sent[0] != source.value:
                raise _Rejected(
                    Reason.NOT_PARTY,
                    f"target_event_id: {target} was sent by {sent[0]}; "
                    f"only its sender may {kind[5:].lower()} it",
                )
            if target in state.retracted_ids():
                raise _Rejected(Reason.OUT_OF_SEQUENCE, f"target_event_id: {target} was already retracted")
            if sent is not None and sent[1] in ("EventCorrected", "EventRetracted"):
                raise _Rejected(
                    Reason.OUT_OF_SEQUENCE,
                    f"target_event_id: {target} is itself a {sent[1]}; send a new one for its target",
                )
            if kind == "EventRetracted" and sent is not None:
                if sent[1] in _RETRACTABLE_NOT:
                    raise _Rejected(
                        Reason.OUT_OF_SEQUENCE,
                        f"target_event_id: an identification cannot be retracted; close case {state.case_id}",
                    )
                # A referral answered in error is open again, to be answered anew.
                if sent[1] == "ReferralAnswered" and referral in ("accepted", "declined") and not noticed:
                    referral = "acknowledged"
            if kind == "EventRetracted":
                retracted = retracted | {target}
        case _:  # pragma: no cover
            raise AssertionError(f"unhandled event type {kind}")
    return (
        opened_by,
        partner,
        consent,
        referral,
        noticed,
        handed_over,
        closed_by,
        transit,
        shredded,
        retracted,
    )


def _transit_changed(
    state: CaseRoute, source: CountryCode, fields: Mapping[str, Any], transit: frozenset[CountryCode]
) -> frozenset[CountryCode]:
    country = _COUNTRIES[str(fields["transit_country"])]
    if country in state.parties():
        raise _Rejected(
            Reason.NOT_PARTY, f"transit_country: {country.value} is already a party to case {state.case_id}"
        )
    if str(fields["transit_change"]) == "Removed":
        if country not in transit:
            raise _Rejected(
                Reason.OUT_OF_SEQUENCE,
                f"transit_country: {country.value} is not a transit party of case {state.case_id}",
            )
        return transit - {country}
    return transit | {country}


def next_state(state: CaseRoute | None, event: Event) -> CaseRoute:
    """The case after ``event`` (its ids seen unchanged), or :class:`_Rejected` when the event may
    not come now."""
    envelope = event.envelope
    fields = _advance(
        state,
        envelope.event_type.value,
        envelope.case_id,
        envelope.source_country,
        envelope.destination_country,
        event.__dict__,
    )
    return CaseRoute(envelope.case_id, *fields, seen=state.seen if state else SeenIds())


def accepted_value(digest: str, source: str, kind: str) -> str:
    """What ``seen`` records of an accepted event."""
    return f"{digest}:{source}:{kind}"


def _digest_part(accepted: str) -> str:
    return accepted.split(":", 1)[0]


def _already_accepted(state: CaseRoute | None, event_id: str, digest: str) -> bool:
    """True when the case accepted these very bytes under ``event_id`` (a duplicate); raises
    :class:`_Rejected` when it accepted other content under it (a conflict)."""
    accepted = state.seen.get(event_id) if state is not None else None
    if accepted is None:
        return False
    if _digest_part(accepted) != digest:
        raise _Rejected(
            Reason.CONFLICT, f"envelope.event_id: {event_id} was already accepted with different content"
        )
    return True


def replace_state(state: CaseRoute, **changes: Any) -> CaseRoute:
    return dataclasses.replace(state, **changes)


# -- the changelog's encoding ----------------------------------------------------------------------


class _StoredRoute(BaseModel):
    """A case's routing state as the changelog stores it (JSON): checked when it is read back."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str
    opened_by: CountryCode
    partner: CountryCode | None = None
    consent: frozenset[DataCategory] = frozenset()
    referral: ReferralStage = "none"
    return_noticed: bool = False
    handed_over: bool = False
    closed_by: frozenset[CountryCode] = frozenset()
    transit: frozenset[CountryCode] = frozenset()
    shredded: bool = False
    retracted: frozenset[str] = frozenset()
    seen: dict[str, str] = {}


def encode_route(state: CaseRoute) -> bytes:
    """A case's routing state as the changelog stores it: JSON, codes sorted."""
    own = state.seen._own()
    record = {
        "case_id": state.case_id,
        "opened_by": state.opened_by.value,
        "partner": state.partner.value if state.partner is not None else None,
        "consent": sorted(category.value for category in state.consent),
        "referral": state.referral,
        "return_noticed": state.return_noticed,
        "handed_over": state.handed_over,
        "closed_by": sorted(country.value for country in state.closed_by),
        "transit": sorted(country.value for country in state.transit),
        "shredded": state.shredded,
        "retracted": sorted(state.retracted),
        "seen": own if own is not None else state.seen.as_dict(),
    }
    return to_json(record)


def decode_route(data: bytes) -> CaseRoute:
    stored = _StoredRoute.model_validate_json(data)
    return CaseRoute(
        stored.case_id,
        stored.opened_by,
        stored.partner,
        stored.consent,
        stored.referral,
        stored.return_noticed,
        stored.handed_over,
        stored.closed_by,
        stored.transit,
        stored.shredded,
        stored.retracted,
        SeenIds._sharing(stored.seen, len(stored.seen)),
    )


# -- receipts, written straight to Avro (one per message: hot) --------------------------------------


def _long(value: int) -> bytes:
    """Avro's zigzag varint (int and long, lengths, counts, enum and union indexes)."""
    raw = (value << 1) ^ (value >> 63)
    if raw < 0x80:
        return _BYTES[raw]
    out = bytearray()
    while raw > 0x7F:
        out.append(raw & 0x7F | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


_BYTES: Final = tuple(bytes((n,)) for n in range(0x80))


def _string(text: str) -> bytes:
    raw = text.encode()
    return _long(len(raw)) + raw


def _shape(node: Any, named: Mapping[str, Any]) -> Any:
    """A parsed schema reduced to what its binary encoding depends on."""
    if isinstance(node, list):
        return tuple(_shape(branch, named) for branch in node)
    if isinstance(node, str):
        return _shape(named[node], named) if node in named else node
    kind = node["type"]
    if kind == "enum":
        return ("enum", tuple(node["symbols"]))
    if kind == "array":
        return ("array", _shape(node["items"], named))
    if kind == "record":
        return ("record", tuple((f["name"], _shape(f["type"], named)) for f in node["fields"]))
    return _shape(kind, named)


class _Subject(NamedTuple):
    """What a receipt names of the event it answers."""

    event_id: str
    event_type: str
    case_id: str


class _ReceiptWriter:
    """``lintas.hub.Receipt`` in single-object encoding, as fastavro writes it (a test holds the two
    to the same bytes), from pieces encoded once; ``None`` from :meth:`of` when the schema is not the
    one this writer knows, and fastavro writes them."""

    def __init__(self, schema: EventSchema, statuses: Sequence[str], types: Sequence[str]) -> None:
        header = MARKER + schema.fingerprint
        self._status = {status: header + _long(i) for i, status in enumerate(statuses)}
        self._event_type = {kind: b"\x02" + _long(i) for i, kind in enumerate(types)}
        self._country = {code: _long(i) for i, code in enumerate(_RECEIPT_COUNTRIES)}
        self._topics: dict[str, bytes] = {}
        self._accepted: dict[tuple[str, ...], tuple[bytes, bytes]] = {}

    @classmethod
    def of(cls, schema: EventSchema) -> _ReceiptWriter | None:
        parsed = schema.parsed
        shape = _shape(parsed, parsed.get("__named_schemas", {}))
        fields = dict(shape[1])
        expected = {
            "reason_code": ("null", "string"),
            "message": "string",
            "event_id": ("null", "string"),
            "case_id": ("null", "string"),
            "source_topic": "string",
            "source_partition": "int",
            "source_offset": "long",
            "routed_to": ("array", ("enum", _RECEIPT_COUNTRIES)),
            "withheld": ("array", "string"),
        }
        names = ["status", "reason_code", "message", "event_id", "event_type", "case_id"]
        names += ["source_topic", "source_partition", "source_offset", "routed_to", "withheld"]
        status, event_type = fields.get("status"), fields.get("event_type")
        if (
            [name for name, _ in shape[1]] != names
            or any(fields[name] != wanted for name, wanted in expected.items())
            or not (isinstance(status, tuple) and status[0] == "enum")
            or not (isinstance(event_type, tuple) and len(event_type) == 2 and event_type[0] == "null")
            or event_type[1][0] != "enum"
        ):
            return None
        return cls(schema, status[1], event_type[1][1])

    def write(
        self,
        status: str,
        reason: str | None,
        text: str,
        subject: _Subject | None,
        message: Incoming,
        routed_to: Sequence[str],
        withheld: tuple[str, ...],
    ) -> bytes:
        parts = [self._status[status], b"\x00" if reason is None else b"\x02" + _string(reason)]
        if routed_to or withheld:  # accepted: the few texts and lists of each corridor, encoded once
            key = (text, *routed_to, "", *withheld)
            cached = self._accepted.get(key)
            if cached is None:
                if len(self._accepted) >= _CACHED_TEXTS:
                    self._accepted.clear()
                cached = self._accepted[key] = (_string(text), self._lists(routed_to, withheld))
            text_bytes, lists = cached
        else:
            text_bytes, lists = _string(text), b"\x00\x00"
        parts.append(text_bytes)
        if subject is None:
            parts.append(b"\x00\x00\x00")
        else:
            parts += (
                b"\x02" + _string(subject.event_id),
                self._event_type[subject.event_type],
                b"\x02" + _string(subject.case_id),
            )
        topic = self._topics.get(message.topic)
        if topic is None:
            topic = self._topics[message.topic] = _string(message.topic)
        parts += (topic, _long(message.partition), _long(message.offset), lists)
        return b"".join(parts)

    def _lists(self, routed_to: Sequence[str], withheld: Sequence[str]) -> bytes:
        """``routed_to`` and ``withheld``: each an array block and its end, or just the end."""
        parts: list[bytes] = []
        if routed_to:
            parts += (_long(len(routed_to)), *(self._country[code] for code in routed_to))
        parts.append(b"\x00")
        if withheld:
            parts += (_long(len(withheld)), *(_string(name) for name in withheld))
        parts.append(b"\x00")
        return b"".join(parts)


#: How many accepted receipts' texts are kept encoded (there are a few per corridor direction).
_CACHED_TEXTS: Final = 4096
_RECEIPT_COUNTRIES: Final = tuple(country.value for country in CountryCode)


# -- the decision ----------------------------------------------------------------------------------

_REASON_OF_CODE: Final = {"undecodable": Reason.UNDECODABLE, "unknown_schema": Reason.UNKNOWN_SCHEMA}


class _Terms(NamedTuple):
    """A direction of an agreement, as the router asks it: the event types allowed, what it grants."""

    event_types: frozenset[str]
    grants: frozenset[DataCategory]


@dataclass(frozen=True)
class Router:
    """Everything a decision needs besides the message and the case (the codec holds the clock)."""

    codec: Codec
    agreements: Agreements
    #: Check decoded records with the contract's rules without building the models (the models
    #: still decide whenever the check is not sure); False: always build and check the models.
    fast_path: bool = True
    #: Contract v2 (sectioned, sealed, signed events); None: the v1 router, reading whole records.
    wire: Wire | None = None
    #: The hub's key: signs receipts, and v1 events converted for a country in ``hub_signs_for``.
    hub_signer: Signer | None = None
    #: Countries whose national systems publish v1 and that the hub may convert and sign for.
    hub_signs_for: frozenset[str] = frozenset()
    _receipts: _ReceiptWriter | None = field(init=False, repr=False, compare=False)
    _reader: QuickReader = field(init=False, repr=False, compare=False)
    _runs: dict[str, tuple[tuple[str, ...], ...]] = field(init=False, repr=False, compare=False)
    _replacements: dict[tuple[Any, ...], bytes] = field(init=False, repr=False, compare=False)
    _terms: dict[tuple[str, str], _Terms | None] = field(init=False, repr=False, compare=False)
    _topics: dict[str, tuple[str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        version = self.codec.contract.versions[self.codec.reader_version - 1]
        runs = {
            kind: categorised_runs(kind, [field["name"] for field in schema.parsed["fields"]])
            for kind, schema in version.events.items()
        }
        # What minimisation may withhold is read apart, so that it is cut from the bytes as submitted.
        object.__setattr__(self, "_reader", self.codec.quick_reader(runs))
        object.__setattr__(self, "_runs", runs)
        object.__setattr__(self, "_replacements", {})
        object.__setattr__(self, "_receipts", _ReceiptWriter.of(version.messages["Receipt"]))
        object.__setattr__(self, "_terms", {})
        object.__setattr__(self, "_topics", {})

    def _checks_records(self) -> bool:
        # The fast check knows the models of this installation's contract version only.
        return self.fast_path and self.codec.reader_version == CONTRACT_VERSION

    def route(self, message: Incoming, states: Mapping[str, CaseRoute]) -> Decision:
        wire = self.wire
        if wire is None:
            return self._route_v1(message, states)
        if wire.is_v2(message.value):
            return self._route_v2(wire, message, message.value, states)
        return self._converted(wire, message, states)

    def _converted(self, wire: Wire, message: Incoming, states: Mapping[str, CaseRoute]) -> Decision:
        """A v1 event under contract v2: converted into sections, sealed and signed by the hub, for a
        country the directory lets the hub sign for; refused for any other."""
        if message.country not in self.hub_signs_for or self.hub_signer is None:
            try:
                event = self.codec.decode(message.value)
            except InvalidEvent as error:
                return self._rejected(
                    message, None, _REASON_OF_CODE.get(error.code, Reason.INVALID_EVENT), str(error)
                )
            envelope = event.envelope
            subject = _Subject(str(envelope.event_id), envelope.event_type.value, envelope.case_id)
            return self._rejected(
                message,
                subject,
                Reason.UNSIGNED,
                f"{message.country} publishes v1 events, which the hub accepts only from national systems "
                "it may sign for (config/directory.yaml signing.hub_signs_v1); sign events with the "
                "country's key (contract v2)",
            )
        try:
            event = self.codec.decode(message.value)
            if event.envelope.source_country.value != message.country:
                raise _Rejected(
                    Reason.WRONG_TOPIC,
                    f"envelope.source_country: {event.envelope.source_country.value} "
                    f"may not publish on {message.topic}",
                )
            state = states.get(event.envelope.case_id)
            if state is not None and state.shredded and event_has_personal_data(event):
                raise _Rejected(Reason.PERSONAL_DATA_ERASED, _erased_text(event.envelope.case_id))
            converted = wire.seal(event, self.hub_signer)
        except InvalidEvent as error:
            return self._rejected(
                message, None, _REASON_OF_CODE.get(error.code, Reason.INVALID_EVENT), str(error)
            )
        except _Rejected as rejected:
            envelope = event.envelope
            subject = _Subject(str(envelope.event_id), envelope.event_type.value, envelope.case_id)
            return self._rejected(message, subject, rejected.reason, rejected.message)
        except KeysDestroyed as error:
            envelope = event.envelope
            subject = _Subject(str(envelope.event_id), envelope.event_type.value, envelope.case_id)
            return self._rejected(message, subject, Reason.PERSONAL_DATA_ERASED, str(error))
        return self._route_v2(wire, message, converted, states)

    def _route_v2(
        self, wire: Wire, message: Incoming, value: bytes, states: Mapping[str, CaseRoute]
    ) -> Decision:
        """The decision on a v2 event (``value``: the message's bytes, or their conversion from v1):
        its envelope and facts are read and its signature verified; no section is decoded."""
        try:
            parsed = wire.parse(value)
            header = wire.header(parsed)
            envelope = header["envelope"]
            kind = str(envelope["event_type"])
            check_header(kind, envelope, header["facts"], now=self.codec.now())
            wire.check_sections(parsed, kind)
        except InvalidEvent as error:
            return self._rejected(
                message, None, _REASON_OF_CODE.get(error.code, Reason.INVALID_EVENT), str(error)
            )
        facts = header["facts"]
        case_id: str = envelope["case_id"]
        event_id = str(envelope["event_id"])
        subject = _Subject(event_id, kind, case_id)
        source_code = str(envelope["source_country"])
        destination_code = (
            None if envelope["destination_country"] is None else str(envelope["destination_country"])
        )
        source = _COUNTRIES[source_code]
        destination = None if destination_code is None else _COUNTRIES[destination_code]
        state = states.get(case_id)
        try:
            if source_code != message.country:
                raise _Rejected(
                    Reason.WRONG_TOPIC,
                    f"envelope.source_country: {source_code} may not publish on {message.topic}",
                )
            try:
                wire.verify(parsed, header, may_sign=self._may_sign)
            except SignatureError as error:
                raise _Rejected(Reason(error.reason), str(error)) from error
            digest = _digest(value)
            if _already_accepted(state, event_id, digest):
                return self._duplicate(message, subject)
            fields = _advance(state, kind, case_id, source, destination, facts)
            sealed_data = any(section.sealed and section.body is not None for section in parsed.sections)
            if state is not None and state.shredded and sealed_data:
                raise _Rejected(Reason.PERSONAL_DATA_ERASED, _erased_text(case_id))
            outputs, withheld, routed_to, grants = self._deliveries_v2(
                value, kind, parsed, envelope, case_id, source_code, destination_code, fields
            )
        except _Rejected as rejected:
            return self._rejected(message, subject, rejected.reason, rejected.message)
        value_seen = accepted_value(digest, source_code, kind)
        seen = (
            state.seen.adding(event_id, value_seen) if state is not None else SeenIds({event_id: value_seen})
        )
        new_state = CaseRoute(case_id, *fields, seen=seen)
        effects: list[Effect] = [Grant(case_id, country) for country in grants]
        if new_state.shredded and (state is None or not state.shredded):
            effects = [Shred(case_id, "consent withdrawn", envelope["occurred_at"])]
        text = f"routed to {', '.join(routed_to)}" if routed_to else "recorded; not routed"
        if withheld:
            text += f"; withheld: {', '.join(withheld)}"
        receipt = self._receipt(message, subject, ReceiptStatus.Accepted, None, text, routed_to, withheld)
        logged = Outgoing(ACCEPTED_EVENTS, case_id.encode(), value, record_headers(envelope))
        return Decision(
            ReceiptStatus.Accepted,
            None,
            text,
            (*outputs, logged, receipt),
            case_id=case_id,
            state=new_state,
            effects=tuple(effects),
        )

    def _may_sign(self, signer: str, source: str) -> bool:
        return signer == HUB_SIGNER and source in self.hub_signs_for

    def _deliveries_v2(
        self,
        value: bytes,
        kind: str,
        parsed: WireEvent,
        envelope: Mapping[str, Any],
        case_id: str,
        source: str,
        destination: str | None,
        fields: _Fields,
    ) -> tuple[list[Outgoing], tuple[str, ...], list[str], list[str]]:
        """The inbox copies of a v2 event: for the addressee, then each transit party whose agreements
        with both parties let it receive the event; what was withheld from the addressee's copy; the
        countries it goes to; the countries to be granted the case's data key."""
        if destination is None:
            return [], (), [], []
        opened_by, partner, consent = fields[0].value, fields[1], fields[2]
        transit = fields[7]
        terms = self._terms_of(source, destination)
        if terms is None:
            raise _Rejected(
                Reason.NO_AGREEMENT,
                f"envelope.destination_country: no agreement covers {source} -> {destination}",
            )
        if kind not in terms.event_types:
            raise _Rejected(
                Reason.TYPE_NOT_ALLOWED,
                f"envelope.event_type: {kind} may not be sent {source} -> {destination} under the agreement",
            )
        if kind != "ConsentChanged" and not consent:
            raise _Rejected(
                Reason.CONSENT_WITHDRAWN,
                f"case {case_id}: the person withdrew consent to share; nothing was sent",
            )
        other = partner.value if partner is not None and partner.value != source else opened_by
        recipients: list[tuple[str, frozenset[DataCategory]]] = [(destination, terms.grants)]
        for country in sorted(country.value for country in transit):
            if country in (source, destination):
                continue
            # The sender's agreement with the transit country allows the type; what it receives is
            # what both parties' agreements with it grant (no agreement with one of them: nothing).
            own, others = self._terms_of(source, country), self._terms_of(other, country)
            if own is None or kind not in own.event_types:
                continue
            if other != source and others is None:
                continue
            grants = own.grants if others is None else own.grants & others.grants
            recipients.append((country, grants))
        holder = opened_by
        partner_code = partner.value if partner is not None else None
        consent_codes = frozenset(category.value for category in consent)
        headers = record_headers(envelope)
        outputs: list[Outgoing] = []
        routed_to: list[str] = []
        grants_out: list[str] = []
        withheld_fields: tuple[str, ...] = ()
        for country, granted in recipients:
            shared = _CASE_CORE if kind == "ConsentChanged" else granted & (consent | _CASE_CORE)
            shared_codes = frozenset(category.value for category in shared)
            withhold: set[str] = set()
            sealed_sent = False
            for section in parsed.sections:
                if section.body is None:
                    continue
                if section.category not in shared_codes:
                    withhold.add(section.category)
                elif section.sealed:
                    readers = readers_of(
                        section.category,
                        holder=holder,
                        partner=partner_code,
                        transit=[c.value for c in transit],
                        consent=consent_codes,
                        grants=self._grants_of,
                    )
                    if country in readers:
                        sealed_sent = True
                    else:
                        withhold.add(section.category)
            copy = (
                wire_format.write(
                    wire_format.withholding(parsed, frozenset(withhold)), self._wire_fingerprint()
                )
                if withhold
                else value
            )
            outputs.append(Outgoing(self._topics_of(country)[1], case_id.encode(), copy, headers))
            routed_to.append(country)
            if sealed_sent:
                grants_out.append(country)
            if country == destination:
                withheld_fields = tuple(
                    name
                    for section in parsed.sections
                    if section.category in withhold
                    for name in section.fields
                )
        return outputs, withheld_fields, routed_to, grants_out

    def _grants_of(self, source: str, destination: str) -> frozenset[str]:
        terms = self._terms_of(source, destination)
        return frozenset() if terms is None else frozenset(category.value for category in terms.grants)

    def _wire_fingerprint(self) -> bytes:
        assert self.wire is not None
        return self.wire.event_fingerprint

    def _route_v1(self, message: Incoming, states: Mapping[str, CaseRoute]) -> Decision:
        codec = self.codec
        try:
            quick = self._reader.read(message.value)
            if (
                quick is not None
                and self._checks_records()
                and record_is_valid(quick[0].event_type, quick[1], now=codec.now())
            ):
                schema, record, spans = quick
            else:
                schema, record = codec.decode_record(message.value)
                codec.checked(schema, record)
                spans = quick[2] if quick is not None else None
            kind = schema.event_type
        except InvalidEvent as error:
            reason = _REASON_OF_CODE.get(error.code, Reason.INVALID_EVENT)
            return self._rejected(message, None, reason, str(error))
        envelope = record["envelope"]
        case_id: str = envelope["case_id"]
        event_id = str(envelope["event_id"])
        subject = _Subject(event_id, envelope["event_type"], case_id)
        source_code: str = envelope["source_country"]
        destination_code: str | None = envelope["destination_country"]
        source = _COUNTRIES[source_code]
        destination = None if destination_code is None else _COUNTRIES[destination_code]
        state = states.get(case_id)
        try:
            if source_code != message.country:
                raise _Rejected(
                    Reason.WRONG_TOPIC,
                    f"envelope.source_country: {source_code} may not publish on {message.topic}",
                )
            digest = _digest(message.value)
            if _already_accepted(state, event_id, digest):
                return self._duplicate(message, subject)
            fields = _advance(state, kind, case_id, source, destination, record)
            outputs, withheld, routed_to = self._deliveries(
                message, kind, record, spans, case_id, source_code, destination_code, fields[2]
            )
        except _Rejected as rejected:
            return self._rejected(message, subject, rejected.reason, rejected.message)
        value = accepted_value(digest, source_code, kind)
        seen = state.seen.adding(event_id, value) if state is not None else SeenIds({event_id: value})
        new_state = CaseRoute(case_id, *fields, seen=seen)
        text = f"routed to {', '.join(routed_to)}" if routed_to else "recorded; not routed"
        if withheld:
            text += f"; withheld: {', '.join(withheld)}"
        receipt = self._receipt(message, subject, ReceiptStatus.Accepted, None, text, routed_to, withheld)
        logged = Outgoing(ACCEPTED_EVENTS, case_id.encode(), message.value, list(message.headers))
        return Decision(
            ReceiptStatus.Accepted,
            None,
            text,
            (*outputs, logged, receipt),
            case_id=case_id,
            state=new_state,
        )

    def _terms_of(self, source: str, destination: str) -> _Terms | None:
        key = (source, destination)
        if key not in self._terms:
            terms = self.agreements.terms(source, destination)
            self._terms[key] = (
                None
                if terms is None
                else _Terms(frozenset(kind.value for kind in terms.event_types), terms.grants)
            )
        return self._terms[key]

    def _topics_of(self, country: str) -> tuple[str, str]:
        """A country's receipts topic and focal inbox."""
        topics = self._topics.get(country)
        if topics is None:
            topics = self._topics[country] = (nrm_receipts(country), focal_inbox(country))
        return topics

    def _deliveries(
        self,
        message: Incoming,
        kind: str,
        record: Mapping[str, Any],
        spans: Spans | None,
        case_id: str,
        source: str,
        destination: str | None,
        consent: frozenset[DataCategory],
    ) -> tuple[list[Outgoing], tuple[str, ...], list[str]]:
        """The inbox copy of an event from ``source`` to ``destination`` (country codes), what was
        withheld from it, and the countries it goes to."""
        if destination is None:
            return [], (), []  # kept national: recorded for sequence checks, shared with no one
        terms = self._terms_of(source, destination)
        if terms is None:
            raise _Rejected(
                Reason.NO_AGREEMENT,
                f"envelope.destination_country: no agreement covers {source} -> {destination}",
            )
        if kind not in terms.event_types:
            raise _Rejected(
                Reason.TYPE_NOT_ALLOWED,
                f"envelope.event_type: {kind} may not be sent {source} -> {destination} under the agreement",
            )
        if kind == "ConsentChanged":
            granted = _CASE_CORE  # the partner must learn of it, always
        else:
            if not consent:
                raise _Rejected(
                    Reason.CONSENT_WITHDRAWN,
                    f"case {case_id}: the person withdrew consent to share; nothing was sent",
                )
            granted = terms.grants & (consent | _CASE_CORE)
        shared, withheld = minimise_record(kind, record, granted)
        if not withheld:
            value = message.value
        elif spans is not None:
            value = self._cut(message.value, kind, shared, withheld, spans)
        else:
            value = self.codec.encode_decoded(kind, shared)
        inbox = Outgoing(
            self._topics_of(destination)[1], case_id.encode(), value, record_headers(record["envelope"])
        )
        return [inbox], withheld, [destination]

    def _cut(
        self, data: bytes, kind: str, shared: Mapping[str, Any], withheld: tuple[str, ...], spans: Spans
    ) -> bytes:
        """``data`` with the bytes of each run holding a withheld field replaced by the run's fields
        as ``shared`` has them (what is left of them)."""
        parts: list[bytes] = []
        position = 0
        for run in self._runs[kind]:
            if not any(name in withheld for name in run):
                continue
            start, end = spans[run]
            values = {name: shared[name] for name in run}
            key = (kind, run, *(None if v is None else tuple(v) for v in values.values()))
            replacement = self._replacements.get(key)
            if replacement is None:
                replacement = self._replacements[key] = self._reader.encode_run(data, run, values)
            parts += (data[position:start], replacement)
            position = end
        parts.append(data[position:])
        return b"".join(parts)

    def reject(self, message: Incoming, reason: Reason, text: str) -> Decision:
        """The rejection of a message for a reason found outside the decision (its outputs do not
        fit, or Kafka refused them); the receipt names the event when its envelope can be read."""
        try:
            if self.wire is not None and self.wire.is_v2(message.value):
                head = self.wire.header(self.wire.parse(message.value))["envelope"]
                subject = _Subject(str(head["event_id"]), str(head["event_type"]), head["case_id"])
            else:
                envelope = self.codec.decode(message.value).envelope
                subject = _Subject(str(envelope.event_id), envelope.event_type.value, envelope.case_id)
        except InvalidEvent:
            return self._rejected(message, None, reason, text)
        return self._rejected(message, subject, reason, text)

    def _duplicate(self, message: Incoming, subject: _Subject) -> Decision:
        text = f"event {subject.event_id} was already accepted; not routed again"
        receipt = self._receipt(message, subject, ReceiptStatus.Duplicate, None, text, (), ())
        return Decision(ReceiptStatus.Duplicate, None, text, (receipt,), case_id=subject.case_id)

    def _rejected(self, message: Incoming, subject: _Subject | None, reason: Reason, text: str) -> Decision:
        receipt = self._receipt(message, subject, ReceiptStatus.Rejected, reason, text, (), ())
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
        case_id = subject.case_id if subject is not None else None
        return Decision(ReceiptStatus.Rejected, reason, text, (receipt, dead), case_id=case_id)

    def _receipt(
        self,
        message: Incoming,
        subject: _Subject | None,
        status: ReceiptStatus,
        reason: Reason | None,
        text: str,
        routed_to: Sequence[str],
        withheld: tuple[str, ...],
    ) -> Outgoing:
        writer = self._receipts
        if writer is not None:
            value = writer.write(
                str(status), str(reason) if reason else None, text, subject, message, routed_to, withheld
            )
        else:
            # The fields of lintas.hub.Receipt, for fastavro.
            value = self.codec.encode_record(
                Receipt.__name__,
                {
                    "status": status.value,
                    "reason_code": reason.value if reason else None,
                    "message": text,
                    "event_id": subject.event_id if subject else None,
                    "event_type": subject.event_type if subject else None,
                    "case_id": subject.case_id if subject else None,
                    "source_topic": message.topic,
                    "source_partition": message.partition,
                    "source_offset": message.offset,
                    "routed_to": list(routed_to),
                    "withheld": list(withheld),
                },
            )
        key = subject.case_id.encode() if subject else message.key
        headers = signed_headers(value, self.hub_signer) if self.hub_signer is not None else []
        return Outgoing(self._topics_of(message.country)[0], key, value, headers)


def event_has_personal_data(event: Event) -> bool:
    """Whether an event carries anything of the person's identity."""
    return getattr(event, "personal", None) is not None or bool(getattr(event, "personal_changes", ()))


def _erased_text(case_id: str) -> str:
    return (
        f"case {case_id}: the person's data keys were destroyed (consent withdrawn or retention ended); "
        "personal data for this case can no longer be accepted: send the event without it"
    )


def country_of_topic(topic: str) -> str:
    """``lintas.nrm.th.events`` -> ``TH``."""
    parts = topic.split(".")
    if len(parts) != 4 or parts[:2] != ["lintas", "nrm"] or parts[3] != "events":
        raise ValueError(f"{topic!r} is not a national events topic (lintas.nrm.<cc>.events)")
    return parts[2].upper()
