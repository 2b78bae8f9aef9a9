"""The end of the retention period: when a closed case's personal data must become unreadable. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from hub.agreements import Agreements
from projections.cases.fold import CaseState

#: Retention after closure where no agreement says otherwise (two years).
DEFAULT_RETENTION_DAYS: Final = 730


def retention_days(state: CaseState, agreements: Agreements) -> int:
    """The retention period of a case: its corridor's, or the default for a case kept national."""
    if state.home is None:
        return DEFAULT_RETENTION_DAYS
    corridor = agreements.corridor(state.host.value, state.home.value)
    days = getattr(corridor, "retention_days", None) if corridor is not None else None
    return int(days) if days else DEFAULT_RETENTION_DAYS


def expired_cases(states: Iterable[CaseState], agreements: Agreements, now: datetime) -> list[str]:
    """The ids of the cases closed longer ago than their retention period, by ``now``: their keys
    are to be destroyed."""
    expired = []
    for state in states:
        if state.closed_on is None:
            continue
        if state.closed_on + timedelta(days=retention_days(state, agreements)) < now.date():
            expired.append(state.case_id)
    return sorted(expired)
