"""The injected clock: every deadline in the exchange asks this, never datetime.now().

Tests pass a FrozenClock and move it by hand, so no test of a deadline sleeps.
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
