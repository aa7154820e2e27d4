"""How a channel tells the delivery job what became of one attempt.

A channel either returns (delivered) or raises one of these. The delivery job retries a
transient failure on its schedule and records a terminal one for the operator to see and
replay (docs/rules.md §Notifications).

Each carries two accounts of what happened: `message`, the technical text recorded for
the operator (an SMTP reply, an HTTP status and the receiver's first words), naming the
cause without secrets; and `code` with `params`, what a person is told in their own
language (`problem.<code>` in the catalogs), e.g. an administrator testing a webhook.
"""

from __future__ import annotations

from typing import Any


class DeliveryError(Exception):
    """One attempt did not deliver."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "delivery_failed",
        params: dict[str, Any] | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.params: dict[str, Any] = params or {}
        # The receiver's HTTP status (or SMTP reply code), when it answered at all.
        self.status = status
        # Seconds the receiver asked us to wait (Retry-After), a hint for the retry schedule.
        self.retry_after = retry_after


class TransientDeliveryError(DeliveryError):
    """Worth trying again later: timeouts, refused connections, 5xx, 429, rate limits."""


class TerminalDeliveryError(DeliveryError):
    """Trying again cannot help until someone changes something: 4xx, a bad robot key."""
