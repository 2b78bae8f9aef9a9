"""The hub's clock: real time, or a simulated time that runs faster than real time.

Every process of one hub reads the same settings (``LINTAS_CLOCK__START``, ``__ORIGIN``, ``__SPEED``),
so the router, the alert feed, the API and the simulation agree on "now" without talking to each other:
simulated now = start + (real now - origin) x speed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field, model_validator

Clock = Callable[[], datetime]


def real_now() -> datetime:
    return datetime.now(UTC)


class ClockSettings(BaseModel):
    """``LINTAS_CLOCK__...``: unset, the hub runs on real time."""

    start: datetime | None = Field(default=None, description="The simulated time at ``origin``.")
    origin: datetime | None = Field(
        default=None, description="The real time at which the simulated clock showed ``start``."
    )
    speed: float = Field(default=1.0, gt=0, le=1_000_000, description="Simulated seconds per real second.")

    @model_validator(mode="after")
    def _both_or_neither(self) -> ClockSettings:
        if (self.start is None) != (self.origin is None):
            raise ValueError("clock: start and origin are set together (or neither)")
        for name in ("start", "origin"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                setattr(self, name, moment.replace(tzinfo=UTC))
        return self

    @property
    def simulated(self) -> bool:
        return self.start is not None or self.speed != 1.0


def make_clock(settings: ClockSettings, real: Clock = real_now) -> Clock:
    """The clock ``settings`` describe, reading ``real`` (injected in tests)."""
    if not settings.simulated:
        return real
    origin = settings.origin or real()
    start = settings.start or origin
    speed = settings.speed

    def now() -> datetime:
        return start + (real() - origin) * speed

    return now


def simulated(start: datetime, speed: float, *, origin: datetime | None = None) -> ClockSettings:
    """A simulated clock that shows ``start`` now (or at ``origin``) and runs ``speed`` times faster."""
    return ClockSettings(start=start, origin=origin or real_now(), speed=speed)


def clock_env(settings: ClockSettings) -> dict[str, str]:
    """The environment that gives a child process the same clock."""
    if not settings.simulated:
        return {}
    origin = settings.origin or real_now()
    return {
        "LINTAS_CLOCK__START": (settings.start or origin).isoformat(),
        "LINTAS_CLOCK__ORIGIN": origin.isoformat(),
        "LINTAS_CLOCK__SPEED": repr(settings.speed),
    }


def real_seconds(settings: ClockSettings, simulated_span: timedelta) -> float:
    """How many real seconds ``simulated_span`` of simulated time takes."""
    return simulated_span.total_seconds() / settings.speed
