"""Logging with the request id in every line.

The request id comes from the X-Request-ID header when a proxy set one, else a new one;
it is echoed in the response and in error bodies so a user's report finds the log line.
"""

from __future__ import annotations

import contextvars
import logging
import random
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # arq logs two INFO lines a job — the outbox relay alone runs every second — and the
    # demo's SMTP server (aiosmtpd, "mail.log") a dozen a message: together they buried
    # everything else on `market run`'s console. Their failures are WARNING and up; DEBUG
    # shows every line again.
    chatty = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in ("arq", "mail.log"):
        logging.getLogger(name).setLevel(chatty)


def _valid(header: str) -> bool:
    return 0 < len(header) <= 64 and all(c.isalnum() or c in "-_." for c in header)


ID_HEADER = b"x-request-id"


def request_id(given: bytes | None) -> str:
    """The proxy's X-Request-ID (`given`, the header's first value) when it is a sane one,
    else a new id. An id only has to be unique, not secret, so it comes from `random`
    (reseeded in each forked worker), not a system call per request like `secrets`."""
    incoming = "" if given is None else given.decode("latin-1")
    return incoming if _valid(incoming) else f"{random.getrandbits(64):016x}"


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        rid = request_id(next((v for k, v in scope["headers"] if k == ID_HEADER), None))
        token = request_id_var.set(rid)
        scope_state: Any = scope.setdefault("state", {})
        scope_state["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)

    return middleware
