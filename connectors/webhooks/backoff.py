"""When to try a failed delivery again (pure): exponential backoff with full jitter.

The caps follow the Standard Webhooks / Svix retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then
14 h); each delay is drawn uniformly between zero and its cap (full jitter), so that receivers coming back
after an outage are not hit by every sender at once. Because a jittered delay may be short, giving up is
decided by time, not by a count: only once the first attempt is at least :data:`GIVE_UP_AFTER` old.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal, Protocol

#: The cap of the delay after the n-th failed attempt (1-based); the last one repeats.
CAPS: Final = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
)
GIVE_UP_AFTER: Final = timedelta(hours=24)


class Random(Protocol):
    """What draws the jitter: ``random.Random`` or a test's own."""

    def random(self) -> float: ...


def cap(attempt: int) -> timedelta:
    """The longest wait after failed attempt number ``attempt`` (1-based)."""
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, not {attempt}")
    return CAPS[min(attempt, len(CAPS)) - 1]


def next_attempt(attempt: int, rng: Random) -> timedelta:
    """The wait after failed attempt number ``attempt``: uniform in [0, cap(attempt)]."""
    return cap(attempt) * rng.random()


def gives_up(first_attempt_at: datetime, failed_at: datetime) -> bool:
    """Whether a message failing at ``failed_at`` is abandoned: only after 24 h of trying."""
    return failed_at - first_attempt_at >= GIVE_UP_AFTER


@dataclass(frozen=True)
class Verdict:
    """What becomes of a message after one attempt."""

    state: Literal["delivered", "pending", "failed", "disabled"]
    next_attempt_at: datetime | None = None


def after_attempt(
    status_code: int | None,
    *,
    round_attempt: int,
    first_attempt_at: datetime,
    now: datetime,
    rng: Random,
) -> Verdict:
    """A 2xx delivers; 410 Gone disables the subscription (the receiver says it is gone for good);
    anything else (another status, a redirect, a timeout, no connection) is tried again later, until
    the message has been tried for 24 hours."""
    if status_code is not None and 200 <= status_code < 300:
        return Verdict("delivered")
    if status_code == 410:
        return Verdict("disabled")
    if gives_up(first_attempt_at, now):
        return Verdict("failed")
    return Verdict("pending", now + next_attempt(round_attempt, rng))
