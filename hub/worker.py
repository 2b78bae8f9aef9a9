"""The routing worker: :class:`hub.routing.Router` on the exactly-once processor.

A case's events are keyed by case id, so they land in the same partition number of every national
topic; the processor gives each worker whole partition numbers (and refuses topics whose partition
count differs from the changelog's), so a case's state is always where its events are read.
"""

from __future__ import annotations

import os
import time
from collections import ChainMap
from collections.abc import Mapping
from typing import Any, cast

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from hub.contract import ReceiptStatus
from hub.crypto.keystore import KeyStore, KeyStoreError
from hub.identity import Identities, IdIndex, case_digest
from hub.limits import fit_dead_letter, fits
from hub.processor import (
    Batch,
    BatchResult,
    Coordinates,
    Failure,
    ProcessorError,
    StateWrite,
    TransactionalProcessor,
)
from hub.routing import (
    CaseRoute,
    Decision,
    Effect,
    Grant,
    Incoming,
    Outgoing,
    Reason,
    Router,
    country_of_topic,
    decode_route,
    encode_route,
)
from hub.topics import DEADLETTER, NRM_EVENTS_PATTERN, ROUTER_IDS, ROUTER_STATE

log = structlog.get_logger("lintas.router")

GROUP_ID = "lintas-router"
#: How long reading every claim made so far may take.
_CLAIMS_LOAD_S = 120.0


class RouterWorker(TransactionalProcessor):
    changelog = ROUTER_STATE

    def __init__(
        self,
        bootstrap: str,
        router: Router,
        *,
        group_id: str = GROUP_ID,
        keys: KeyStore | None = None,
        claim_readback_s: float = 15.0,
        **options: Any,
    ) -> None:
        super().__init__(bootstrap, group_id=group_id, pattern=NRM_EVENTS_PATTERN, **options)
        self.router = router
        #: Where the cases' data keys are granted and destroyed (the decisions' effects).
        self.keys = keys
        self._granted: set[tuple[str, str]] = set()
        self.states: dict[str, CaseRoute] = {}
        self.state_partition: dict[str, int] = {}
        wire = router.wire
        self.identities = Identities(
            router.codec, wire_fingerprint=wire.event_fingerprint if wire is not None else None
        )
        self.index = IdIndex()
        #: Ids claimed by this worker whose claim it has not read back yet.
        self._claiming: set[str] = set()
        #: Since when the oldest claim not read back has waited (or the last one came back).
        self._claims_waited_from = 0.0
        #: How long a claim may take to come back before the claims are read again from the start.
        self.claim_readback_s = claim_readback_s
        #: How often that happened.
        self.claims_reread = 0
        self._ids: Consumer | None = None

    def apply(self, write: StateWrite) -> None:
        if write.value is None:
            self.states.pop(write.key, None)
            self.state_partition.pop(write.key, None)
        else:
            decoded = write.decoded
            self.states[write.key] = decoded if isinstance(decoded, CaseRoute) else decode_route(write.value)
            self.state_partition[write.key] = write.partition

    def forget(self, partitions: set[int]) -> None:
        for case_id in [c for c, p in self.state_partition.items() if p in partitions]:
            self.states.pop(case_id, None)
            self.state_partition.pop(case_id, None)

    # -- event ids: claimed on lintas.router.ids, read back by every worker (hub/identity.py) ----------

    def on_start(self) -> None:
        self._ids = self._read_claims()

    def _read_claims(self) -> Consumer:
        """A reader of every claim made so far (read to the end before it is returned), then of
        the rest as they come."""
        consumer = Consumer(
            self._connection(
                **{
                    "group.id": f"lintas-ids-{os.getpid()}",
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                    "enable.partition.eof": True,
                    "fetch.wait.max.ms": 10,
                    # Should a position ever be reset, claims are read again rather than skipped.
                    "auto.offset.reset": "earliest",
                }
            )
        )
        topic = consumer.list_topics(ROUTER_IDS, timeout=10).topics.get(ROUTER_IDS)
        if topic is None or topic.error is not None or not topic.partitions:
            consumer.close()
            raise ProcessorError(f"claims topic {ROUTER_IDS} does not exist (run lintas topics init)")
        consumer.assign([TopicPartition(ROUTER_IDS, p, OFFSET_BEGINNING) for p in topic.partitions])
        pending = set(topic.partitions)
        deadline = time.monotonic() + _CLAIMS_LOAD_S
        try:
            while pending:
                if time.monotonic() > deadline:
                    raise ProcessorError(f"{ROUTER_IDS} not read to its end in {_CLAIMS_LOAD_S:.0f} s")
                for message in consumer.consume(num_messages=10_000, timeout=1.0):
                    self._take_claim(message, pending)
        except BaseException:
            consumer.close()
            raise
        log.info("event_ids_loaded", ids=len(self.index))
        return consumer

    def refresh(self) -> bool:
        grew = False
        if self._ids is not None:
            for message in self._ids.consume(num_messages=10_000, timeout=0):
                grew = self._take_claim(message, set()) or grew
        overdue = time.monotonic() - self._claims_waited_from > self.claim_readback_s
        if self._claiming and overdue and self._txn is None:  # nothing open: every claim is committed
            # A committed claim that does not come back would hold its event, and everything behind
            # it in the partition, for good: read the claims again from the start.
            log.warning(
                "claims_not_read_back", claims=len(self._claiming), waited_s=round(self.claim_readback_s, 1)
            )
            self._claims_waited_from = time.monotonic()
            try:
                reader = self._read_claims()
            except (KafkaException, ProcessorError) as exc:  # no answer now: the old reader goes on
                log.warning("claims_not_read_again", error=str(exc))
                return grew
            if self._ids is not None:
                self._ids.close()
            self._ids = reader
            self.claims_reread += 1
            grew = True
        return grew

    def _take_claim(self, message: Message, pending: set[int]) -> bool:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise ProcessorError(f"reading {ROUTER_IDS}: {error}")
            pending.discard(cast(int, message.partition()))
            return False
        key, value = message.key(), message.value()
        if key is None or value is None:
            return False
        event_id = key.decode()
        if event_id in self._claiming:
            self._claiming.discard(event_id)
            self._claims_waited_from = time.monotonic()  # claims come back: wait afresh for the rest
        return self.index.add(event_id, value.decode())

    def on_abort(self) -> None:
        self._claiming.clear()  # those claims were aborted with the transaction

    def on_stop(self) -> None:
        if self._ids is not None:
            self._ids.close()
            self._ids = None

    def process(self, batch: Batch, failed: Mapping[Coordinates, Failure]) -> BatchResult:
        result = BatchResult()
        overlay: dict[str, CaseRoute] = {}
        partition_of: dict[str, int] = {}
        view = ChainMap(overlay, self.states)
        for part, records in batch.items():
            country = country_of_topic(part.topic)
            held_from: int | None = None
            for record in records:
                identity = self.identities.of(record.value or b"")
                owner = None
                if identity is not None:
                    event_id, case_id = identity
                    owner = self.index.owner(event_id)
                    if owner is None:
                        # New id: claim it, and hold this record (and all behind it in the partition)
                        # until the claim is read back; the first claim of an id wins.
                        if event_id not in self._claiming:
                            if not self._claiming:
                                self._claims_waited_from = time.monotonic()
                            self._claiming.add(event_id)
                            claim = Outgoing(ROUTER_IDS, event_id.encode(), case_id.encode())
                            result.emit([claim], record.coordinates)
                        held_from = record.offset if held_from is None else held_from
                        continue
                if held_from is not None:
                    continue
                message = Incoming(
                    country=country,
                    topic=part.topic,
                    partition=part.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value or b"",
                    headers=tuple(record.headers),
                )
                failure = failed.get(record.coordinates)
                if failure is not None and failure.attempt > 1:  # at 1 it is only a suspect
                    decision = self._refused(message, failure)
                elif identity is not None and owner != case_digest(identity[1]):
                    decision = self.router.reject(
                        message,
                        Reason.CONFLICT,
                        f"envelope.event_id: {identity[0]} was first submitted in another case; "
                        "an event id is unique across the hub",
                    )
                else:
                    decision = self._fitted(message, self.router.route(message, view))
                    if decision.effects:
                        self._carry_out(decision.effects)
                result.outcomes[decision.status.value] += 1
                if decision.status is ReceiptStatus.Rejected:
                    log.info(
                        "event_rejected",
                        topic=part.topic,
                        partition=part.partition,
                        offset=record.offset,
                        case_id=decision.case_id,
                        reason=decision.reason.value if decision.reason else None,
                    )
                if decision.state is not None and decision.case_id is not None:
                    overlay[decision.case_id] = decision.state
                    partition_of[decision.case_id] = part.partition
                result.emit(decision.outputs, record.coordinates)
            if held_from is not None:
                result.held[part] = held_from
        result.state = [
            StateWrite(case_id, encode_route(state), partition_of[case_id], state)
            for case_id, state in overlay.items()
        ]
        return result

    def _carry_out(self, effects: tuple[Effect, ...]) -> None:
        """The key store's part of a decision, before its transaction commits: so a partner never
        reads a sealed section it cannot open, and no copy stays readable after a withdrawal. Both
        are idempotent, so a batch done again after an abort does them again harmlessly."""
        keys = self.keys
        if keys is None:
            raise ProcessorError("the router decided on sealed data but has no key store")
        for effect in effects:
            if isinstance(effect, Grant):
                if (effect.case_id, effect.country) in self._granted:
                    continue
                try:
                    keys.grant(effect.case_id, effect.country)
                except KeyStoreError as error:
                    # The sender sealed under a key it holds; a store without it is misconfigured.
                    log.error(
                        "key_grant_failed", case_id=effect.case_id, country=effect.country, error=str(error)
                    )
                    continue
                self._granted.add((effect.case_id, effect.country))
            else:
                if keys.destroy(effect.case_id, reason=effect.reason, at=effect.at):
                    log.info("case_keys_destroyed", case_id=effect.case_id, reason=effect.reason)
                self._granted = {granted for granted in self._granted if granted[0] != effect.case_id}

    def _fitted(self, message: Incoming, decision: Decision) -> Decision:
        """The decision, or its rejection as too large when an output would not fit its topic (the
        hub's limit, or the topic's own when smaller); dead letters are cut to fit."""
        limits = [self.topic_limit(out.topic) for out in decision.outputs]
        if all(fits(out, limit) for out, limit in zip(decision.outputs, limits, strict=True)):
            return decision
        refused = [
            (out.topic, limit)
            for out, limit in zip(decision.outputs, limits, strict=True)
            if out.topic != DEADLETTER and not fits(out, limit)
        ]
        if refused:
            topic, limit = refused[0]
            decision = self.router.reject(
                message,
                Reason.TOO_LARGE,
                f"<message>: {len(message.value)} bytes with {len(message.headers)} headers; its copy "
                f"for {topic} would exceed the {limit} bytes that topic takes",
            )
        return _with_dead_letters_fitted(decision, self.topic_limit(DEADLETTER))

    def _refused(self, message: Incoming, failure: Failure) -> Decision:
        """What an input gets whose outputs Kafka refused for good: a rejection, never its routing.
        Refused again, it gets a dead letter only, a reference to the source topic and offset."""
        text = f"<output>: Kafka refused an output of this event for good ({failure.error})"
        decision = _with_dead_letters_fitted(
            self.router.reject(message, Reason.OUTPUT_FAILED, text), self.topic_limit(DEADLETTER)
        )
        if failure.attempt == 2:
            return decision
        reference = [
            Outgoing(
                DEADLETTER, f"{message.topic}/{message.partition}/{message.offset}".encode(), b"", out.headers
            )
            for out in decision.outputs
            if out.topic == DEADLETTER
        ]
        return Decision(decision.status, decision.reason, decision.message, tuple(reference))


def _with_dead_letters_fitted(decision: Decision, limit: int) -> Decision:
    outputs = tuple(
        fit_dead_letter(out, limit) if out.topic == DEADLETTER else out for out in decision.outputs
    )
    return Decision(
        decision.status,
        decision.reason,
        decision.message,
        outputs,
        case_id=decision.case_id,
        state=decision.state,
    )
