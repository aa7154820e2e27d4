"""RFC 9457 problem details: the one shape of every API error, and an error's words.

    HTTP/1.1 422
    Content-Type: application/problem+json

    {"type": "about:blank", "title": "请求无法处理", "status": 422,
     "detail": "start_price_fen：起拍价 ¥600,000.00 低于评估价 ¥1,000,000.00 的 70%：…",
     "code": "start_below_valuation_floor", "field": "start_price_fen",
     "params": {"start_price_fen": 60000000, "valuation_fen": 100000000,
                "floor_fen": 70000000, "min_pct": 70}, "request_id": "…"}

`code` is stable and meant for programs; `detail` is for people, in the caller's language
(Accept-Language, else the user's own preference, else Chinese); `params` carries the
numbers the detail names. A bid refused by the rules adds the lot's state (auctions).
Anything that is not an AppError is mapped here to one, so no exception reaches a caller
unexplained; what is not the caller's fault is logged and answered 500 `internal`.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from market import i18n
from market.errors import AppError, BadRequest, LineProblem, RateLimited
from market.money import format_cny

log = logging.getLogger("market.problems")
MEDIA_TYPE = "application/problem+json"
ABOUT_BLANK = "about:blank"  # RFC 9457 §4.2.1: the status and the code say it all
DISPLAY_ZONE = ZoneInfo("Asia/Shanghai")


class ProblemLine(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One of several problems at once (a CSV file's bad lines): where, and what."""

    code: str
    detail: str
    line: int | None = None
    field: str | None = None
    params: dict[str, Any] = {}


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An API error (RFC 9457), with the exchange's extension members."""

    type: str  # "about:blank": the code says what the problem is
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None
    params: dict[str, Any] = {}
    request_id: str | None = None
    errors: list[ProblemLine] | None = None


# --- words -----------------------------------------------------------------------------


def _instant(name: str, value: Any) -> datetime | None:
    """An instant among the parameters: a datetime, or an `_at` parameter kept as ISO
    8601 text (as an event payload or a stored refusal keeps it); None for anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if name.endswith("_at") and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None


def _shown(name: str, value: Any) -> Any:
    """A parameter as a person reads it: amounts in yuan, instants in Beijing time (the
    time the exchange's forms ask for; `params` keep the instant as it is, ISO 8601)."""
    if name.endswith("_fen") and isinstance(value, int) and not isinstance(value, bool):
        return format_cny(value)
    if (instant := _instant(name, value)) is not None:
        return instant.astimezone(DISPLAY_ZONE).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value)
    return value


def describe(lang: i18n.Lang, code: str, params: dict[str, Any] | None = None) -> str:
    """The words of an error code in `lang`, its parameters filled in."""
    try:
        return _words(lang, code, tuple(sorted((params or {}).items())))
    except TypeError:  # a list among the parameters: not to be cached
        return _words.__wrapped__(lang, code, tuple(sorted((params or {}).items())))


@lru_cache(maxsize=4096)
def _words(lang: i18n.Lang, code: str, params: tuple[tuple[str, Any], ...]) -> str:
    # Cached: a hot lot refuses thousands of "too low, the least bid is …" a second, with
    # the same few parameters (the bid path's refusals are answered without a write).
    shown = {name: _shown(name, value) for name, value in params}
    return i18n.gettext(lang, f"problem.{code}", **shown)


def text(error: AppError, lang: i18n.Lang) -> str:
    """What a person reads about `error`: beside a form's field, or on an error page."""
    return describe(lang, error.code, error.params)


@lru_cache(maxsize=256)  # per answer of the bid path: a handful of (language, status)
def title(lang: i18n.Lang, status: int) -> str:
    key = f"problem.status.{status}"
    return i18n.gettext(lang, key) if i18n.has(key) else str(status)


# --- msgspec's validation messages as codes ----------------------------------------------

_VALIDATION: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    (re.compile(r"Object contains unknown field `([^`]*)`"), "unknown_field", ("name",)),
    (re.compile(r"Object missing required field `([^`]*)`"), "required", ("name",)),
    (re.compile(r"Expected `str` of length >= (\d+)"), "too_short", ("min",)),
    (re.compile(r"Expected `str` of length <= (\d+)"), "too_long", ("max",)),
    (re.compile(r"Expected `(?:array|object)` of length >= (\d+)"), "too_few", ("min",)),
    (re.compile(r"Expected `(?:array|object)` of length <= (\d+)"), "too_many", ("max",)),
    (re.compile(r"Expected `(?:int|float|number)` >= (-?[\d.]+)"), "too_small", ("min",)),
    (re.compile(r"Expected `(?:int|float|number)` > (-?[\d.]+)"), "not_above", ("min",)),
    (re.compile(r"Expected `(?:int|float|number)` <= (-?[\d.]+)"), "too_large", ("max",)),
    (re.compile(r"Expected `(?:int|float|number)` < (-?[\d.]+)"), "not_below", ("max",)),
    (re.compile(r"Expected `str` matching regex"), "bad_format", ()),
    (re.compile(r"Invalid enum value '?([^'`]*)'?"), "not_a_choice", ("value",)),
    (
        re.compile(r"Expected `([a-z]+)`(?: \| `?[a-z]+`?)*, got `([a-z]+)`"),
        "wrong_type",
        ("expected", "got"),
    ),
    (re.compile(r"Invalid RFC3339 encoded datetime"), "not_an_instant", ()),
    (re.compile(r"Invalid RFC3339 encoded date"), "not_a_date", ()),
    (re.compile(r"Integer value out of range|out of range"), "out_of_range", ()),
)


def field_of(message: str) -> str | None:
    """The field msgspec names: "… unknown field `x`", "… - at `$.a.b`" (the request
    body's own path, without Litestar's leading `data.`)."""
    if found := re.search(r"(?:unknown|required) field `([^`]*)`", message):
        inner = found.group(1)
        if "at `$." not in message:
            return inner
        prefix = message.rsplit("at `$.", 1)[1].rstrip("`").removeprefix("data")
        return ".".join(p for p in (prefix.lstrip("."), inner) if p)
    if "at `$." in message:
        path = message.rsplit("at `$.", 1)[1].rstrip("`")
        return path.removeprefix("data.") if path != "data" else None
    return None


def validation(message: str) -> tuple[str | None, str, dict[str, Any]]:
    """(field, code, params) of one of msgspec's validation messages."""
    field = field_of(message)
    for pattern, code, names in _VALIDATION:
        if found := pattern.search(message):
            params = dict(zip(names, found.groups(), strict=True))
            if code in ("unknown_field", "required"):
                params.pop("name", None)
            if code == "wrong_type" and params["expected"] == "int":
                return field, "whole_number", params
            return field, code, params
    return field, "invalid_value", {}


# --- any exception as an AppError --------------------------------------------------------

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def as_app_error(exc: Exception) -> AppError:
    """The AppError an exception means for the caller; a bug becomes 500 `internal`."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, ValidationException):
        # Litestar decodes bodies and parameters with msgspec; the first problem found.
        extra = exc.extra if isinstance(exc.extra, list) else []
        first = extra[0] if extra and isinstance(extra[0], dict) else {}
        message = str(first.get("message", "")) or str(exc.detail)
        field, code, params = validation(message)
        key = first.get("key")
        if field is None and key:
            field = str(key)
        return BadRequest(code, field=field, **params)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        if exc.status_code == 400 and isinstance(exc.__cause__, SerializationException):
            return BadRequest("malformed")
        if exc.status_code == 403 and "CSRF" in str(exc.detail):
            error: AppError = AppError("csrf_failed")
        else:
            error = AppError(_HTTP_CODES.get(exc.status_code, "bad_request"))
        error.status = exc.status_code  # type: ignore[misc]
        return error
    if isinstance(exc, UnicodeDecodeError):
        # A multipart field that is no text in its declared charset (Litestar decodes the
        # form before the route runs): the body is malformed; nothing happened.
        return BadRequest("malformed")
    if isinstance(exc, asyncpg.CharacterNotInRepertoireError):
        # A NUL character in some text: PostgreSQL cannot store it; nothing was written.
        return BadRequest("nul_character")
    if isinstance(exc, asyncpg.DataError) and "out of int64 range" in str(exc):
        # An id or an amount beyond PostgreSQL's bigint, in a body or a path: refused by
        # the driver before the statement ran (nothing was written).
        return BadRequest("out_of_range", max=2**63 - 1)
    if isinstance(exc, RecursionError):
        return BadRequest("too_deep")
    log.exception("unhandled error", exc_info=exc)
    error = AppError("internal")
    error.status = 500  # type: ignore[misc]
    return error


def headers(error: AppError) -> dict[str, str]:
    if isinstance(error, RateLimited) or error.status == 503:
        return {"Retry-After": str(getattr(error, "retry_after", 1))}
    return {}


def _line(lang: i18n.Lang, item: LineProblem) -> ProblemLine:
    return ProblemLine(
        code=item.code,
        detail=describe(lang, item.code, item.params),
        line=item.line,
        field=item.field,
        params=item.params,
    )


def problem(error: AppError, lang: i18n.Lang, request_id: str | None) -> Problem:
    words = text(error, lang)
    return Problem(
        type=ABOUT_BLANK,
        title=title(lang, error.status),
        status=error.status,
        detail=f"{error.field}{'：' if lang == 'zh' else ': '}{words}" if error.field else words,
        code=error.code,
        field=error.field,
        params=error.params,
        request_id=request_id,
        errors=[_line(lang, p) for p in error.problems] if error.problems else None,
    )


def answer(exc: Exception, lang: i18n.Lang, request_id: str) -> tuple[int, dict[str, str], Problem]:
    """Status, headers and body the API sends for `exc` (the route's error handler and the
    bid API's fast path, auctions/api_bidding.py)."""
    error = as_app_error(exc)
    return error.status, headers(error), problem(error, lang, request_id)


# --- the OpenAPI document ---------------------------------------------------------------


def responses(container: type = Problem, *statuses: int) -> dict[int, ResponseSpec]:
    """Responses a route declares: these statuses answer `container` as problem+json."""
    return {
        status: ResponseSpec(
            data_container=container,
            media_type=MEDIA_TYPE,
            description=HTTPStatus(status).phrase,
            generate_examples=False,
        )
        for status in statuses
    }


def document(handler: HTTPRouteHandler, *, guarded: bool) -> None:
    """Declare on an API route the problems it may answer, beside what it declares itself:
    every route 400 (a body, a parameter or a path that does not decode), 404, 422 and
    500; a guarded one 401 and 403; one that changes state 409, and 413 and 415 for its
    body (too large, or not of the type the route reads)."""
    statuses = {400, 404, 422, 500}
    if guarded:
        statuses |= {401, 403}
    if handler.http_methods & {"POST", "PUT", "PATCH", "DELETE"}:
        statuses |= {409, 413, 415}
    handler.responses = {**responses(Problem, *sorted(statuses)), **(handler.responses or {})}
