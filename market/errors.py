"""The exchange's errors: a stable code, the field at fault, and parameters — never words.

Services and rules raise these; they never return error values, so a caller cannot forget
to check. The words a person reads come from the catalogs (`problem.<code>` in
market/locale), in the reader's language, when the error is shown: as RFC 9457 problem
details by the API (market/problems.py), beside the field on a form, on an error page.

    raise Invalid("start_below_valuation_floor", field="start_price_fen", floor_fen=700_000_00)

Parameters ending in `_fen` are amounts (shown as ¥1,234.00), `_at` instants (shown in
Beijing time); the API sends them as they are, so a program need not parse the text.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import msgspec

CODE = re.compile(r"[a-z][a-z0-9_]*")


class LineProblem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One of several problems found at once, e.g. one bad line of a CSV file."""

    code: str
    line: int | None = None  # 1-based, the header being line 1
    field: str | None = None  # the column or field at fault
    params: dict[str, Any] = {}


class AppError(Exception):
    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        code: str | None = None,
        /,
        *,
        field: str | None = None,
        problems: list[LineProblem] | None = None,
        **params: Any,
    ) -> None:
        code = code or self.default_code
        if not CODE.fullmatch(code):
            raise ValueError(f"an error's code is a snake_case word, not {code!r}")
        super().__init__(code)
        self.code = code
        self.field = field
        self.problems = problems
        self.params = params


class BadRequest(AppError):
    default_code = "bad_request"


class Invalid(AppError):
    """Well-formed input that breaks a rule: which field, and which rule."""

    status = 422
    default_code = "invalid"


class BadValue(Invalid, ValueError):
    """A value a person typed that is not one (an amount, a credit code, a patent number),
    raised by the pure parsers and validators; still a ValueError to code that asks."""


class Unauthorized(AppError):
    status = 401
    default_code = "unauthorized"


class Forbidden(AppError):
    status = 403
    default_code = "forbidden"


class NotFound(AppError):
    """Also what another tenant's object answers: its existence is not disclosed."""

    status = 404
    default_code = "not_found"


class Conflict(AppError):
    status = 409
    default_code = "conflict"


class RateLimited(AppError):
    status = 429
    default_code = "rate_limited"

    def __init__(self, code: str | None = None, /, *, retry_after: int, **params: Any) -> None:
        super().__init__(code, retry_after_s=retry_after, **params)
        self.retry_after = retry_after


class Unavailable(AppError):
    """Nothing was done; the same request may be sent again after Retry-After."""

    status = 503
    default_code = "retry"


class LoginRequired(AppError):
    """A web page needs a signed-in user; the web layer answers with a redirect to /login."""

    status = 401
    default_code = "login_required"
