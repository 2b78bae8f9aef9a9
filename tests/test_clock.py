"""The hub's clock: real time, or a simulated time every process computes the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.clock import ClockSettings, clock_env, make_clock, real_seconds, simulated
from hub.settings import Settings

ORIGIN = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def test_unset_is_real_time() -> None:
    real = lambda: ORIGIN  # noqa: E731
    assert make_clock(ClockSettings(), real)() == ORIGIN


@given(
    speed=st.floats(min_value=0.5, max_value=100_000),
    elapsed=st.floats(min_value=0, max_value=86_400),
    start_days=st.integers(min_value=-400, max_value=400),
)
def test_simulated_time_runs_speed_times_faster(speed: float, elapsed: float, start_days: int) -> None:
    start = ORIGIN + timedelta(days=start_days)
    settings = ClockSettings(start=start, origin=ORIGIN, speed=speed)
    now = make_clock(settings, lambda: ORIGIN + timedelta(seconds=elapsed))()
    # datetimes hold microseconds: the real elapsed time is rounded to one, then multiplied
    slack = speed * 1e-6 + 1e-6
    assert abs((now - start).total_seconds() - elapsed * speed) <= slack
    assert real_seconds(settings, now - start) == pytest.approx(elapsed, abs=2e-6)


def test_a_child_process_gets_the_same_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = simulated(ORIGIN - timedelta(days=3), 3600, origin=ORIGIN)
    for name, value in clock_env(parent).items():
        monkeypatch.setenv(name, value)
    child = Settings().clock
    later = lambda: ORIGIN + timedelta(seconds=10)  # noqa: E731
    assert make_clock(child, later)() == make_clock(parent, later)() == ORIGIN - timedelta(days=3, hours=-10)


def test_start_without_origin_is_refused() -> None:
    with pytest.raises(ValueError, match="start and origin"):
        ClockSettings(start=ORIGIN)
