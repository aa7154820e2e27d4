"""How a channel tells the delivery job what became of one attempt (issue 5, item 2).

A channel either returns (delivered) or raises one of these. The delivery job retries a
transient failure on its schedule and records a terminal one for the operator to see and
replay; the message is what the operator reads, so it names the cause without secrets.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """One attempt did not deliver."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        # The receiver's HTTP status, when it answered at all.
        self.status = status
        # Seconds the receiver asked us to wait (Retry-After), a hint for the retry schedule.
        self.retry_after = retry_after


class TransientDeliveryError(DeliveryError):
    """Worth trying again later: timeouts, refused connections, 5xx, 429, rate limits."""


class TerminalDeliveryError(DeliveryError):
    """Trying again cannot help until someone changes something: 4xx, a bad robot key."""
