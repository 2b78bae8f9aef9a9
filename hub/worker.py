"""The routing worker: :class:`hub.routing.Router` on the exactly-once processor.

A case's events are keyed by case id, so they land in the same partition number of every national
topic; the processor gives each worker whole partition numbers (and refuses topics whose partition
count differs from the changelog's), so a case's state is always where its events are read.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any

import structlog

from hub.contract import ReceiptStatus
from hub.limits import OUTPUT_MAX_BYTES, fit_dead_letter, fits
from hub.processor import Batch, BatchResult, Coordinates, Failure, StateWrite, TransactionalProcessor
from hub.routing import (
    CaseRoute,
    Decision,
    Incoming,
    Reason,
    Router,
    country_of_topic,
    decode_route,
    encode_route,
)
from hub.topics import DEADLETTER, NRM_EVENTS_PATTERN, ROUTER_STATE

log = structlog.get_logger("lintas.router")

GROUP_ID = "lintas-router"


class RouterWorker(TransactionalProcessor):
    changelog = ROUTER_STATE

    def __init__(self, bootstrap: str, router: Router, *, group_id: str = GROUP_ID, **options: Any) -> None:
        super().__init__(bootstrap, group_id=group_id, pattern=NRM_EVENTS_PATTERN, **options)
        self.router = router
        self.limit = min(OUTPUT_MAX_BYTES, self.config.max_message_bytes)
        self.states: dict[str, CaseRoute] = {}
        self.state_partition: dict[str, int] = {}

    def apply(self, write: StateWrite) -> None:
        if write.value is None:
            self.states.pop(write.key, None)
            self.state_partition.pop(write.key, None)
        else:
            self.states[write.key] = decode_route(write.value)
            self.state_partition[write.key] = write.partition

    def forget(self, partitions: set[int]) -> None:
        for case_id in [c for c, p in self.state_partition.items() if p in partitions]:
            self.states.pop(case_id, None)
            self.state_partition.pop(case_id, None)

    def process(self, batch: Batch, failed: Mapping[Coordinates, Failure]) -> BatchResult:
        result = BatchResult()
        overlay: dict[str, CaseRoute] = {}
        partition_of: dict[str, int] = {}
        view = ChainMap(overlay, self.states)
        for part, records in batch.items():
            country = country_of_topic(part.topic)
            for record in records:
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
                if failure is None:
                    decision = self._fitted(message, self.router.route(message, view))
                else:
                    decision = self._refused(message, failure)
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
        result.state = [
            StateWrite(case_id, encode_route(state), partition_of[case_id])
            for case_id, state in overlay.items()
        ]
        return result

    def _fitted(self, message: Incoming, decision: Decision) -> Decision:
        """The decision, or its rejection as too large when an output would not fit; dead letters
        are cut to fit."""
        if all(fits(out, self.limit) for out in decision.outputs):
            return decision
        if any(out.topic != DEADLETTER and not fits(out, self.limit) for out in decision.outputs):
            decision = self.router.reject(
                message,
                Reason.TOO_LARGE,
                f"<message>: {len(message.value)} bytes with {len(message.headers)} headers; its routed "
                f"copy would exceed the hub's limit of {self.limit} bytes",
            )
        outputs = tuple(
            fit_dead_letter(out, self.limit) if out.topic == DEADLETTER else out for out in decision.outputs
        )
        return Decision(
            decision.status,
            decision.reason,
            decision.message,
            outputs,
            case_id=decision.case_id,
            state=decision.state,
        )

    def _refused(self, message: Incoming, failure: Failure) -> Decision:
        """What an input gets whose outputs Kafka refused for good: a rejection, never its routing."""
        text = f"<output>: Kafka refused an output of this event for good ({failure.error})"
        decision = self.router.reject(message, Reason.OUTPUT_FAILED, text)
        limit = self.limit if failure.attempt == 1 else 4096  # then the dead letter is only a reference
        return Decision(
            decision.status,
            decision.reason,
            decision.message,
            tuple(
                fit_dead_letter(out, limit) if out.topic == DEADLETTER else out for out in decision.outputs
            ),
            case_id=decision.case_id,
        )
