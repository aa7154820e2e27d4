"""The exchange's errors and the one JSON shape the API answers them with.

API: {"status": 422, "code": "invalid", "message": "…", "field": "credit_code"}.
Web pages get a friendly HTML page instead (market/web.py). Services raise these; they
never return error values, so a handler cannot forget to check.
"""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    status: int
    code: str
    message: str
    field: str | None = None
    request_id: str | None = None
    # Several problems at once, e.g. every bad line of a CSV file: [{line, column, reason}].
    details: list[dict[str, Any]] | None = None


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details
        if code is not None:
            self.code = code

    def body(self, request_id: str | None = None) -> ErrorBody:
        return ErrorBody(
            status=self.status,
            code=self.code,
            message=self.message,
            field=self.field,
            request_id=request_id,
            details=self.details,
        )


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class Invalid(AppError):
    """Well-formed input that breaks a rule: which field, and what the rule is."""

    status = 422
    code = "invalid"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    """Also what another tenant's object answers: its existence is not disclosed."""

    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginRequired(AppError):
    """A web page needs a signed-in user; the web layer answers with a redirect to /login."""

    status = 401
    code = "login_required"


def field_of_msgspec(message: str) -> str | None:
    """Pull the field out of msgspec's messages: "… unknown field `x`", "… - at `$.a.b`"."""
    if "unknown field `" in message:
        return message.split("unknown field `", 1)[1].split("`", 1)[0]
    if "required field `" in message:
        return message.split("required field `", 1)[1].split("`", 1)[0]
    if "at `$." in message:
        path = message.rsplit("at `$.", 1)[1].rstrip("`")
        return path.removeprefix("data.") if path != "data" else None
    return None
