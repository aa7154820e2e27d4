"""What every web page shares: the signed-in viewer, the language, rendering, errors."""

from __future__ import annotations

import logging
import re
from datetime import date
from typing import Any
from urllib.parse import quote

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.datastructures import State, UploadFile
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.response import Redirect, Template
from redis.asyncio import Redis

from market import i18n
from market.accounts import sessions
from market.accounts.models import OrgKind, Viewer
from market.accounts.services import load_viewer
from market.clock import Clock
from market.errors import (
    AppError,
    BadRequest,
    ErrorBody,
    Forbidden,
    LoginRequired,
    RateLimited,
    field_of_msgspec,
)
from market.logs import request_id_var
from market.money import TOO_LARGE, parse_cny
from market.settings import Settings

log = logging.getLogger("market.web")
LANG_COOKIE = "ipx_lang"


# --- dependencies (named in app.py) ----------------------------------------------------


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def provide_clock(state: State) -> Clock:
    clock: Clock = state.clock
    return clock


def provide_pool(state: State) -> asyncpg.Pool:
    pool: asyncpg.Pool = state.pool
    return pool


def provide_redis(state: State) -> Redis:
    redis: Redis = state.redis
    return redis


async def provide_viewer(request: Request[Any, Any, State]) -> Viewer | None:
    """The signed-in user, or None. Loaded once per request from the session cookie."""
    cached = request.scope.get("state", {}).get("viewer", False)
    if cached is not False:
        return cached  # type: ignore[no-any-return]
    viewer = None
    token = request.cookies.get(sessions.COOKIE)
    if token:
        state = request.app.state
        uid = await sessions.user_id(state.redis, token, state.settings.session_ttl_seconds)
        if uid is not None:
            viewer = await load_viewer(state.pool, uid)
    request.scope.setdefault("state", {})["viewer"] = viewer
    return viewer


REQUIRED = "必填 / required"
WHOLE_NUMBER = "须为整数 / a whole number"
A_DATE = "日期格式为 YYYY-MM-DD / a date as YYYY-MM-DD"
ID_MAX = 2**63 - 1  # PostgreSQL's bigint

# msgspec's words for a broken constraint → what a form shows beside the field. The API
# keeps msgspec's own message (with its field path); a person at a form needs plain words.
_CONSTRAINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Expected `str` of length >= (\d+)"), "至少 {0} 个字符 / at least {0} characters"),
    (re.compile(r"Expected `str` of length <= (\d+)"), "最多 {0} 个字符 / at most {0} characters"),
    (re.compile(r"Expected `array` of length >= (\d+)"), "至少选 {0} 项 / choose at least {0}"),
    (re.compile(r"Expected `array` of length <= (\d+)"), "最多 {0} 项 / at most {0} items"),
    (re.compile(r"Expected `int` >= (-?\d+)"), "不小于 {0} / at least {0}"),
    (re.compile(r"Expected `int` <= (-?\d+)"), "不大于 {0} / at most {0}"),
    (re.compile(r"Expected `int`, got"), WHOLE_NUMBER),
    (re.compile(r"missing required field"), REQUIRED),
)


def form_error(exc: msgspec.ValidationError) -> tuple[str | None, str]:
    """(the field, a message for a person) of a form that failed msgspec's checks."""
    message = str(exc)
    for pattern, words in _CONSTRAINTS:
        if found := pattern.search(message):
            return field_of_msgspec(message), words.format(*found.groups())
    return field_of_msgspec(message), message


async def form_values(request: Request[Any, Any, Any]) -> dict[str, str]:
    """A posted form's text fields (not the CSRF token, not uploaded files)."""
    form = await request.form()
    return {
        k: str(v) for k, v in form.items() if k != "_csrf_token" and not isinstance(v, UploadFile)
    }


def parse_id(text: str) -> int | None:
    """An id typed or chosen in a form: ASCII digits, 1 … bigint's maximum; else None.
    (`"²".isdigit()` is true and `int("²")` fails, so `isdigit` alone will not do.)"""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 1 <= number <= ID_MAX else None


def form_id(values: dict[str, str], errors: dict[str, str], name: str) -> int | None:
    """A form field holding an id (a loan, a case …); a problem goes into `errors[name]`."""
    text = values.get(name, "").strip()
    if not text:
        errors[name] = REQUIRED
        return None
    number = parse_id(text)
    if number is None:
        errors[name] = WHOLE_NUMBER
    return number


def form_date(values: dict[str, str], errors: dict[str, str], name: str) -> date | None:
    """A form field holding a day as YYYY-MM-DD; a problem goes into `errors[name]`."""
    text = values.get(name, "").strip()
    if not text:
        errors[name] = REQUIRED
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = A_DATE
        return None


def form_yuan(
    values: dict[str, str],
    errors: dict[str, str],
    name: str,
    *,
    max_fen: int,
    required: bool = True,
) -> int | None:
    """A form field typed in yuan, as fen; a problem goes into `errors[name]`."""
    text = values.get(name, "").strip()
    if not text:
        if required:
            errors[name] = REQUIRED
        return None
    try:
        fen = parse_cny(text)
    except ValueError as exc:
        errors[name] = str(exc)
        return None
    if fen > max_fen:
        errors[name] = TOO_LARGE
        return None
    return fen


def require(viewer: Viewer | None) -> Viewer:
    if viewer is None:
        raise LoginRequired("sign in to see this page")
    return viewer


def require_org(viewer: Viewer | None, kind: OrgKind, refusal: str) -> Viewer:
    """The signed-in user of an approved organisation of `kind`; anyone else: 403 `refusal`
    (a pending, rejected or suspended organisation acts on nothing)."""
    me = require(viewer)
    if me.org_kind != kind or not me.approved:
        raise Forbidden(refusal)
    return me


# --- rendering --------------------------------------------------------------------------


def language(request: Request[Any, Any, Any], viewer: Viewer | None = None) -> i18n.Lang:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in i18n.LANGS:
        return i18n.pick(chosen)
    if viewer is not None:
        return viewer.language
    return i18n.DEFAULT


def page(
    request: Request[Any, Any, Any],
    template: str,
    viewer: Viewer | None = None,
    *,
    status_code: int = 200,
    **context: Any,
) -> Template:
    lang = language(request, viewer)
    return Template(
        template_name=template,
        context={
            "viewer": viewer,
            "lang": lang,
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )


# --- errors -----------------------------------------------------------------------------


def _is_api(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/api/")


def _as_app_error(exc: Exception) -> AppError:
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, ValidationException):
        # Litestar decodes bodies with msgspec; its detail is the first problem found.
        extra = exc.extra if isinstance(exc.extra, list) else []
        first = extra[0] if extra and isinstance(extra[0], dict) else {}
        detail = str(first.get("message", "")) or "the request does not match its schema"
        field = field_of_msgspec(detail) or (str(first["key"]) if first.get("key") else None)
        code = "unknown_field" if "unknown field" in detail else "invalid"
        message = f"{field}: {detail}" if field and field not in detail else detail
        return BadRequest(message, field=field, code=code)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        code = {403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "bad_request"
        )
        if exc.status_code == 400 and isinstance(exc.__cause__, SerializationException):
            code = "malformed"
            message = f"the request body is not valid JSON: {exc.detail}"
        else:
            message = exc.detail or "request refused"
        error = AppError(message, code=code)
        error.status = exc.status_code
        return error
    if isinstance(exc, asyncpg.CharacterNotInRepertoireError):
        # A NUL character in some text: PostgreSQL cannot store it; nothing was written.
        return BadRequest("the request contains a NUL character, which text cannot hold")
    if isinstance(exc, asyncpg.DataError) and "out of int64 range" in str(exc):
        # An id or an amount beyond PostgreSQL's bigint, in a body or a path: the client's
        # value, refused by the driver before the statement ran (nothing was written).
        return BadRequest(
            "a number in the request is out of range (at most 9223372036854775807)",
            code="out_of_range",
        )
    if isinstance(exc, RecursionError):
        return BadRequest("the request is nested too deeply", code="malformed")
    log.exception("unhandled error", exc_info=exc)
    error = AppError("internal error; the exchange has logged it with the request id")
    error.status, error.code = 500, "internal"
    return error


def api_error(exc: Exception, rid: str) -> tuple[int, dict[str, str], ErrorBody]:
    """What the API answers for an exception: status, headers and the JSON body (here and
    in the bid API's fast path, auctions/api_bidding.py)."""
    error = _as_app_error(exc)
    return error.status, _headers(error), error.body(rid)


def _headers(error: AppError) -> dict[str, str]:
    return {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else {}


def error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    rid = request_id_var.get()
    if _is_api(request):
        status, headers, body = api_error(exc, rid)
        return Response(body, status_code=status, headers=headers, media_type="application/json")
    error = _as_app_error(exc)
    headers = _headers(error)
    if isinstance(error, LoginRequired):
        return Redirect(f"/login?next={request.url.path}")
    viewer = request.scope.get("state", {}).get("viewer")
    lang = language(request, viewer if isinstance(viewer, Viewer) else None)
    _ = i18n.translator(lang)
    generic = {403: "error.403", 404: "error.404", 500: "error.500"}
    message = _(generic[error.status]) if error.status in generic else error.message
    body = ErrorBody(status=error.status, code=error.code, message=message, request_id=rid)
    return Template(
        template_name="error.html",
        context={"error": body, "viewer": viewer, "lang": lang, "path": request.url.path},
        status_code=error.status,
        headers=headers,
    )


def content_disposition(filename: str) -> str:
    """RFC 6266 attachment with an ASCII fallback and the UTF-8 name (RFC 5987)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
