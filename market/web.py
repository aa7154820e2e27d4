"""What every web page shares: who is calling, the language, forms, rendering, errors."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from functools import cache
from typing import Any, TypeVar
from urllib.parse import quote

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.response import Redirect, Template
from redis.asyncio import Redis

from market import i18n, problems
from market.accounts import subjects
from market.accounts.models import ApiCaller, Viewer
from market.clock import Clock
from market.commands import SYSTEM, Act, Actor, Context
from market.errors import AppError, LoginRequired, NotFound
from market.logs import request_id_var
from market.money import parse_cny
from market.problems import Problem
from market.settings import Settings

log = logging.getLogger("market.web")
LANG_COOKIE = "ipx_lang"
ID_MAX = 2**63 - 1  # PostgreSQL's bigint
Out = TypeVar("Out")


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
    """The signed-in user, or None (public pages that show more to a signed-in user)."""
    return await subjects.viewer(request)


async def provide_me(request: Request[Any, Any, State]) -> Viewer:
    """The signed-in user of a page whose permission guard let them in."""
    me = await subjects.viewer(request)
    if me is None:  # only a route without a permission asks for `me` without one
        raise LoginRequired()
    return me


async def provide_caller(request: Request[Any, Any, State]) -> ApiCaller:
    """The organisation an API request acts for (its guard authenticated the token)."""
    return await subjects.api_caller(request)


async def provide_act(request: Request[Any, Any, State]) -> Act:
    """Commands run as this request's caller, whom its permission guard established:
    `await act(open_case, data)`. On a public route (a sign-up) no organisation acts."""
    state = request.app.state
    ctx = Context(pool=state.pool, clock=state.clock, redis=state.redis)
    subject = subjects.known(request)
    if subject is None and not request.url.path.startswith("/api/"):
        subject = await subjects.viewer(request)  # a public page, signed in or not
    return Act(ctx, SYSTEM if subject is None else Actor.of(subject))


# --- the client's address ------------------------------------------------------------------


def client_address(request: Request[Any, Any, Any], settings: Settings) -> str:
    """The address a request comes from: the connection's, unless that is one of the
    trusted proxies (`Settings.trusted_proxies`, docs/rules.md §Security); then the
    nearest address in X-Forwarded-For that is not itself a trusted proxy. A header
    sent by anyone else is ignored: a client could write any address there."""
    peer = request.client.host if request.client else "unknown"
    networks = settings.proxy_networks

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    if not trusted(peer):
        return peer
    forwarded = ",".join(request.headers.getall("x-forwarded-for", []))
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from outside the proxies: the proxy is the client
    return peer


# --- strict JSON bodies -------------------------------------------------------------------


@cache
def _decoder(annotation: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(annotation)


async def strict_json_body(request: Request[Any, Any, State]) -> None:
    """An API body is decoded by msgspec's strict rules before the route sees it: a string
    or a float where an integer is expected (an amount in fen, an id) is refused naming
    the field. Litestar converts a handler's arguments leniently ("100" would become 100);
    this runs first (the app's before_request), and what passes it converts the same."""
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    kwarg = None if data is None else data.kwarg_definition
    if data is None or getattr(kwarg, "media_type", None) != RequestEncodingType.JSON:
        return
    body = await request.body()  # kept by the request for the route's own decoding
    try:
        _decoder(data.annotation).decode(body)
    except msgspec.ValidationError as exc:
        raise ValidationException(extra=[{"message": str(exc), "source": "body"}]) from None
    except msgspec.DecodeError:
        return  # not JSON at all: the route's decoding answers that (400 malformed)


# --- forms -------------------------------------------------------------------------------


def parse_id(text: str) -> int | None:
    """An id typed or chosen in a form: ASCII digits, 1 … bigint's maximum; else None.
    (`"²".isdigit()` is true and `int("²")` fails, so `isdigit` alone will not do.)"""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 1 <= number <= ID_MAX else None


class Form:
    """A posted form: its values, and what is wrong with them, in the reader's language.

        form = await Form.read(request, me)
        loan = form.id("loan_id")
        case = await form.submit(lambda: act(open_case, OpenCase(loan_id=loan, …)))
        if case is None:
            return render(errors=form.errors, values=form.values, status_code=form.status)

    `fields` maps a service's field names to the form's (`principal_fen` → `principal`),
    so a refusal shows beside the field the person typed into.
    """

    def __init__(
        self,
        values: dict[str, str],
        lang: i18n.Lang,
        *,
        fields: Mapping[str, str] | None = None,
        lists: dict[str, list[str]] | None = None,
    ) -> None:
        self.values = values
        self.lists = lists or {}
        self.lang = lang
        self.fields = fields or {}
        self.errors: dict[str, str] = {}
        self.status = 422

    @classmethod
    async def read(
        cls,
        request: Request[Any, Any, Any],
        viewer: Viewer | None,
        *,
        fields: Mapping[str, str] | None = None,
    ) -> Form:
        """The form's text fields (not the CSRF token, not uploaded files); a field sent
        several times (ticked boxes) is also in `lists`."""
        form = await request.form()
        values: dict[str, str] = {}
        lists: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            if key == "_csrf_token" or isinstance(value, UploadFile):
                continue
            values.setdefault(key, str(value))
            lists.setdefault(key, []).append(str(value))
        return cls(values, language(request, viewer), fields=fields, lists=lists)

    def field(self, name: str | None) -> str:
        """The form's name of a service's field; "form" for the form as a whole."""
        if not name:
            return "form"
        return self.fields.get(name, name)

    def fail(self, field: str | None, code: str, **params: Any) -> None:
        """Show `problem.<code>` beside `field` (the first problem of a field stays)."""
        self.errors.setdefault(self.field(field), problems.describe(self.lang, code, params))

    def refuse(self, error: AppError) -> None:
        self.errors.setdefault(self.field(error.field), problems.text(error, self.lang))
        self.status = error.status

    def text(self, name: str) -> str:
        return self.values.get(name, "").strip()

    def _required(self, name: str, required: bool) -> str | None:
        text = self.text(name)
        if not text:
            if required:
                self.fail(name, "required")
            return None
        return text

    def id(self, name: str, *, required: bool = True) -> int | None:
        """A field holding an id (a loan, a case …)."""
        text = self._required(name, required)
        if text is None:
            return None
        number = parse_id(text)
        if number is None:
            self.fail(name, "whole_number")
        return number

    def ids(self, name: str) -> list[int]:
        """The ids ticked in a repeated field (`asset_ids`); what is not an id is ignored."""
        return [n for v in self.lists.get(name, []) if (n := parse_id(v)) is not None]

    def date(self, name: str, *, required: bool = True) -> date | None:
        """A field holding a day as YYYY-MM-DD."""
        text = self._required(name, required)
        if text is None:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.fail(name, "not_a_date")
            return None

    def yuan(self, name: str, *, max_fen: int, required: bool = True) -> int | None:
        """A field typed in yuan, as fen (market.money.parse_cny, the one parser)."""
        text = self._required(name, required)
        if text is None:
            return None
        try:
            fen = parse_cny(text)
        except AppError as exc:
            self.fail(name, exc.code, **exc.params)
            return None
        if fen > max_fen:
            self.fail(name, "amount_too_large")
            return None
        return fen

    async def submit(self, call: Callable[[], Awaitable[Out]]) -> Out | None:
        """Run `call` (a command) unless the form already has errors; a refusal becomes
        an error beside its field and None. Not found stays an error page: the object
        the form is about is gone or not the caller's."""
        if self.errors:
            return None
        try:
            return await call()
        except msgspec.ValidationError as exc:
            field, code, params = problems.validation(str(exc))
            self.fail(field, code, **params)
        except NotFound:
            raise
        except AppError as exc:
            self.refuse(exc)
        return None


# --- rendering --------------------------------------------------------------------------


def language(request: Request[Any, Any, Any], viewer: Viewer | None = None) -> i18n.Lang:
    """A page's language: the one chosen on the site, else the user's own, else Chinese."""
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


def api_error(exc: Exception, lang: i18n.Lang, rid: str) -> tuple[int, dict[str, str], Problem]:
    """What the API answers for an exception (here and in the bid API's fast path)."""
    return problems.answer(exc, lang, rid)


def error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    rid = request_id_var.get()
    if _is_api(request):
        status, headers, body = problems.answer(exc, subjects.language(request), rid)
        return Response(body, status_code=status, headers=headers, media_type=problems.MEDIA_TYPE)
    error = problems.as_app_error(exc)
    if isinstance(error, LoginRequired):
        return Redirect(f"/login?next={request.url.path}")
    viewer = request.scope.get("state", {}).get("viewer")
    lang = language(request, viewer if isinstance(viewer, Viewer) else None)
    # 403 and 404 say no more than that: another organisation's object is not disclosed.
    # A refused CSRF token says so (a form left open across a sign-in: reload it).
    generic = {404: "error.404", 500: "error.500"}
    if error.code == "forbidden":
        generic[403] = "error.403"
    message = (
        i18n.gettext(lang, generic[error.status])
        if error.status in generic
        else problems.text(error, lang)
    )
    return Template(
        template_name="error.html",
        context={
            "error": error,
            "message": message,
            "request_id": rid,
            "viewer": viewer,
            "lang": lang,
            "path": request.url.path,
        },
        status_code=error.status,
        headers=problems.headers(error),
    )


def content_disposition(filename: str) -> str:
    """RFC 6266 attachment with an ASCII fallback and the UTF-8 name (RFC 5987)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
