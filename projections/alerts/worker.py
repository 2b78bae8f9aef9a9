"""The live alert feed: folds the hub's log of accepted events into case states and, on a timer,
sends each obligation's alert to ``lintas.alerts.<cc>`` of the focal point that must act and of the one
waiting, once per obligation and level, across restarts (the ids sent are kept in the same changelog,
in the same transaction as the alerts)."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from hub.agreements import Agreements
from hub.codec import Codec
from hub.contract import Alert as AlertRecord
from hub.crypto.signing import Signer
from hub.errors import InvalidEvent
from hub.processor import Batch, BatchResult, Coordinates, Failure, StateWrite, TransactionalProcessor
from hub.routing import Outgoing
from hub.topics import ACCEPTED_EVENTS, PROJECTION_STATE, alerts
from hub.wire.records import signed_headers
from projections.cases.fold import CaseState, evolve
from projections.obligations.rules import Alert, alerts_for, deadlines_for

log = structlog.get_logger("lintas.alerts")

GROUP_ID = "lintas-alerts"
_CASE, _SENT = "case/", "alert/"


def alert_record(alert: Alert, raised_at: datetime) -> AlertRecord:
    obligation = alert.obligation
    return AlertRecord(
        alert_id=alert.id,
        obligation_id=obligation.id,
        kind=obligation.kind,
        level=alert.level,
        case_id=obligation.case_id,
        due=obligation.due,
        owner=obligation.owner,
        waiting=obligation.waiting,
        detail=obligation.detail or None,
        raised_at=raised_at,
    )


class AlertWorker(TransactionalProcessor):
    changelog = PROJECTION_STATE

    def __init__(
        self,
        bootstrap: str,
        codec: Codec,
        agreements: Agreements,
        *,
        clock: Callable[[], datetime],
        group_id: str = GROUP_ID,
        signer: Signer | None = None,
        **options: Any,
    ) -> None:
        super().__init__(bootstrap, group_id=group_id, topics=(ACCEPTED_EVENTS,), **options)
        self.codec = codec
        #: The hub's key: every alert carries its signature (hub/wire/records.py).
        self.signer = signer
        self.agreements = agreements
        self.clock = clock
        self.cases: dict[str, CaseState] = {}
        self.partition_of: dict[str, int] = {}
        self.sent: set[str] = set()

    def apply(self, write: StateWrite) -> None:
        if write.key.startswith(_SENT):
            self.sent.add(write.key.removeprefix(_SENT))
            return
        case_id = write.key.removeprefix(_CASE)
        if write.value is None:
            self.cases.pop(case_id, None)
            self.partition_of.pop(case_id, None)
        else:
            decoded = write.decoded
            self.cases[case_id] = (
                decoded if isinstance(decoded, CaseState) else CaseState.from_json(write.value)
            )
            self.partition_of[case_id] = write.partition

    def forget(self, partitions: set[int]) -> None:
        for case_id in [c for c, p in self.partition_of.items() if p in partitions]:
            self.cases.pop(case_id, None)
            self.partition_of.pop(case_id, None)
            self.sent = {a for a in self.sent if not a.startswith(f"{case_id}/")}

    def process(self, batch: Batch, failed: Mapping[Coordinates, Failure]) -> BatchResult:
        result = BatchResult()
        overlay: dict[str, CaseState] = {}
        partition_of: dict[str, int] = {}
        view = ChainMap(overlay, self.cases)
        for tp, records in batch.items():
            for record in records:
                try:
                    event = self.codec.decode(record.value or b"")
                except InvalidEvent as error:  # the router accepted it; a newer contract may not
                    log.warning("event_unreadable", offset=record.offset, error=str(error))
                    result.outcomes["unreadable"] += 1
                    continue
                case_id = event.envelope.case_id
                state = evolve(view.get(case_id), event)
                result.outcomes["folded"] += 1
                if state is not None and state is not view.get(case_id):
                    overlay[case_id] = state
                    partition_of[case_id] = tp.partition
        result.state = [
            StateWrite(f"{_CASE}{case_id}", state.to_json(), partition_of[case_id], state)
            for case_id, state in overlay.items()
        ]
        return result

    def tick(self) -> BatchResult:
        """Alerts due now that were not sent before, each to both focal points concerned."""
        now = self.clock()
        result = BatchResult()
        for case_id, state in self.cases.items():
            for alert in alerts_for(state, deadlines_for(state, self.agreements), now):
                if alert.id in self.sent:
                    continue
                value = self.codec.encode(alert_record(alert, now))
                headers = signed_headers(value, self.signer) if self.signer is not None else []
                for country in dict.fromkeys(alert.recipients):
                    result.outputs.append(Outgoing(alerts(country.value), case_id.encode(), value, headers))
                result.state.append(StateWrite(f"{_SENT}{alert.id}", b"1", self.partition_of[case_id]))
                result.outcomes[f"alert_{alert.level.value}"] += 1
        return result
