"""Rebuilding the projections from the hub's log of accepted events, from offset 0 (thin adapter)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from hub.codec import Codec
from hub.errors import InvalidEvent
from hub.events import Event
from hub.kafka import all_partitions, committed_batches
from hub.topics import ACCEPTED_EVENTS
from projections.cases.fold import CaseState, evolve


async def each_accepted_event(
    bootstrap: str,
    codec: Codec,
    handle: Callable[[Event], None],
    *,
    topic: str = ACCEPTED_EVENTS,
    within: float = 600.0,
    **options: Any,
) -> int:
    """Call ``handle`` with every committed event of the log, in partition order; returns the count.
    Streams: memory does not grow with the log."""
    count = 0
    partitions = await all_partitions(bootstrap, [topic], **options)
    # Larger fetches than the default: a replay reads the whole log.
    async for batch in committed_batches(
        bootstrap,
        partitions,
        within=within,
        max_records=20_000,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **options,
    ):
        for records in batch.values():
            for record in records:
                try:
                    event = codec.decode(record.value)
                except InvalidEvent:
                    continue  # accepted under rules this installation does not share
                handle(event)
                count += 1
    return count


async def replay_cases(
    bootstrap: str, codec: Codec, *, as_of: datetime | None = None, **options: Any
) -> dict[str, CaseState]:
    """Every case, rebuilt from offset 0; with ``as_of``, as it stood then (event time)."""
    states: dict[str, CaseState] = {}

    def apply(event: Event) -> None:
        if as_of is not None and event.envelope.occurred_at > as_of:
            return
        case_id = event.envelope.case_id
        state = evolve(states.get(case_id), event)
        if state is not None:
            states[case_id] = state

    await each_accepted_event(bootstrap, codec, apply, **options)
    return states
