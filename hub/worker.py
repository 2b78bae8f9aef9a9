"""The routing worker: :class:`hub.routing.Router` on the exactly-once processor.

All national events topics must have the same partition count, so that a case's events (keyed by case
id) land in the same partition number in every topic and its state is found where it is needed.
"""

from __future__ import annotations

from collections import ChainMap
from typing import Any

import structlog
from aiokafka import TopicPartition

from hub.contract import ReceiptStatus
from hub.processor import BatchResult, StateWrite, TransactionalProcessor
from hub.routing import CaseRoute, Incoming, Router, country_of_topic, decode_route, encode_route
from hub.topics import NRM_EVENTS_PATTERN, ROUTER_STATE

log = structlog.get_logger("lintas.router")

GROUP_ID = "lintas-router"


class RouterWorker(TransactionalProcessor):
    changelog = ROUTER_STATE

    def __init__(self, bootstrap: str, router: Router, *, group_id: str = GROUP_ID, **options: Any) -> None:
        super().__init__(bootstrap, group_id=group_id, pattern=NRM_EVENTS_PATTERN, **options)
        self.router = router
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

    def process(self, batch: dict[TopicPartition, list[Any]]) -> BatchResult:
        result = BatchResult()
        overlay: dict[str, CaseRoute] = {}
        partition_of: dict[str, int] = {}
        view = ChainMap(overlay, self.states)
        for tp, records in batch.items():
            country = country_of_topic(tp.topic)
            for record in records:
                decision = self.router.route(
                    Incoming(
                        country=country,
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        key=record.key,
                        value=record.value or b"",
                        headers=tuple(record.headers or ()),
                    ),
                    view,
                )
                result.outcomes[decision.status.value] += 1
                if decision.status is ReceiptStatus.Rejected:
                    log.info(
                        "event_rejected",
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        case_id=decision.case_id,
                        reason=decision.reason.value if decision.reason else None,
                    )
                if decision.state is not None and decision.case_id is not None:
                    overlay[decision.case_id] = decision.state
                    partition_of[decision.case_id] = tp.partition
                result.outputs.extend(decision.outputs)
        result.state = [
            StateWrite(case_id, encode_route(state), partition_of[case_id])
            for case_id, state in overlay.items()
        ]
        return result
