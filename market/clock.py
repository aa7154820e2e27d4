"""The injected clock: every deadline in the exchange asks this, never datetime.now().

Tests pass a FrozenClock and move it by hand, so no test of a deadline sleeps. A sandbox
exchange (Settings.mode) runs on a SandboxClock: the system's time plus an offset its
operator moves forward (market/sandbox).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime | None = None) -> None:
        self._at = at or datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
        if self._at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        self._at += delta if delta is not None else timedelta(**kwargs)
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at


class SandboxClock:
    """A sandbox exchange's time: `base` (the system's clock) plus an offset that only
    grows. PostgreSQL holds the offset (market/sandbox); each process keeps the largest it
    has learned, so reading the time costs no query (the bid path reads it per bid) and
    never goes back within a process."""

    def __init__(self, base: Clock | None = None, offset_ms: int = 0) -> None:
        self.base: Clock = base or SystemClock()
        self.offset_ms = 0
        self._offset = timedelta(0)
        self.learn(offset_ms)

    def now(self) -> datetime:
        return self.base.now() + self._offset

    def learn(self, offset_ms: int) -> bool:
        """Take a larger offset (True); a smaller or equal one changes nothing (False)."""
        if offset_ms <= self.offset_ms:
            return False
        self.offset_ms = offset_ms
        self._offset = timedelta(milliseconds=offset_ms)
        return True


def offset_ms(clock: Clock) -> int:
    """How far a sandbox's clock was moved (0 for any other clock)."""
    return clock.offset_ms if isinstance(clock, SandboxClock) else 0


def system_time(at: datetime, clock_offset_ms: int) -> datetime:
    """`at`, an instant of the exchange's clock, as the system's clock read it: a sandbox's
    moved time less its offset (`offset_ms`). What another machine's clock compares with,
    such as a webhook signature's timestamp (docs/webhooks.md)."""
    return at - timedelta(milliseconds=clock_offset_ms)


def wall_delay(clock: Clock, at: datetime) -> timedelta | None:
    """How long a job queue that runs by the wall clock (arq) must wait for the exchange's
    instant `at`; None when it has come."""
    delay = at - clock.now()
    return delay if delay > timedelta(0) else None
