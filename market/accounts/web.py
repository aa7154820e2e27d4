"""The accounts pages: sign in and out, buyer registration, account and tokens, operator review."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market import i18n
from market.accounts import services, sessions
from market.accounts.models import SCOPES_BY_KIND, NewToken, RegisterBuyer, Viewer
from market.db import Queries
from market.deps import ClockDep, PoolDep, RedisDep, SettingsDep, ViewerDep
from market.errors import AppError, Forbidden, Invalid, RateLimited, Unauthorized
from market.web import LANG_COOKIE, form_error, page, require

Q = Queries("accounts")


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would help phishing."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return urlsplit(target).path or "/"


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items() if k != "_csrf_token"}


class AccountPages(Controller):
    include_in_schema = False

    @get("/login", operation_id="web_login_form")
    async def login_form(
        self,
        request: Request[Any, Any, State],
        viewer: ViewerDep,
        next: FromQuery[str | None] = None,
    ) -> Template:
        return page(request, "accounts/login.html", viewer, next=_safe_next(next), error=None)

    @post("/login", operation_id="web_login")
    async def login(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        form = await _form(request)
        _ = i18n.translator(i18n.pick(request.cookies.get(LANG_COOKIE)))
        next_path = _safe_next(form.get("next"))
        try:
            token = await services.sign_in(
                pool,
                redis,
                settings,
                email=form.get("email", ""),
                password=form.get("password", ""),
                client=_client(request),
            )
        except RateLimited as exc:
            return page(
                request,
                "accounts/login.html",
                None,
                status_code=429,
                next=next_path,
                error=_("login.locked", minutes=max(1, exc.retry_after // 60)),
                email=form.get("email", ""),
            )
        except Unauthorized:
            return page(
                request,
                "accounts/login.html",
                None,
                status_code=401,
                next=next_path,
                error=_("login.failed"),
                email=form.get("email", ""),
            )
        response = Redirect(next_path)
        response.set_cookie(
            sessions.COOKIE,
            token,
            max_age=settings.session_ttl_seconds,
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies,
        )
        return response

    @post("/logout", operation_id="web_logout")
    async def logout(self, request: Request[Any, Any, State], redis: RedisDep) -> Redirect:
        token = request.cookies.get(sessions.COOKIE)
        if token:
            await sessions.destroy(redis, token)
        response = Redirect("/")
        response.delete_cookie(sessions.COOKIE)
        return response

    @post("/lang", operation_id="web_set_language")
    async def set_language(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        settings: SettingsDep,
    ) -> Redirect:
        form = await _form(request)
        lang = i18n.pick(form.get("lang"))
        if viewer is not None:
            async with pool.acquire() as conn:
                await conn.execute(Q.set_language, viewer.user_id, lang)
        response = Redirect(_safe_next(form.get("next")))
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", secure=settings.secure_cookies
        )
        return response

    @get("/register", operation_id="web_register_form")
    async def register_form(self, request: Request[Any, Any, State], viewer: ViewerDep) -> Template:
        return page(request, "accounts/register.html", viewer, errors={}, values={}, done=False)

    @post("/register", operation_id="web_register")
    async def register(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template:
        form = await _form(request)
        values = {k: v for k, v in form.items() if k != "password"}
        try:
            data = msgspec.convert(
                {**form, "language": i18n.pick(request.cookies.get(LANG_COOKIE))}, RegisterBuyer
            )
            await services.register_buyer(pool, clock.now(), data)
        except msgspec.ValidationError as exc:
            field, message = form_error(exc)
            return page(
                request,
                "accounts/register.html",
                viewer,
                status_code=422,
                errors={field or "form": message},
                values=values,
                done=False,
            )
        except AppError as exc:
            return page(
                request,
                "accounts/register.html",
                viewer,
                status_code=exc.status,
                errors={exc.field or "form": exc.message},
                values=values,
                done=False,
            )
        return page(request, "accounts/register.html", viewer, errors={}, values={}, done=True)

    @get("/account", operation_id="web_account")
    async def account(
        self, request: Request[Any, Any, State], pool: PoolDep, viewer: ViewerDep
    ) -> Template:
        me = require(viewer)
        async with pool.acquire() as conn:
            users = await conn.fetch(Q.org_users, me.org_id)
        tokens = await services.list_tokens(pool, me.org_id) if me.role == "admin" else []
        return page(
            request,
            "accounts/account.html",
            me,
            users=users,
            tokens=tokens,
            scopes=sorted(SCOPES_BY_KIND[me.org_kind]),
            new_secret=None,
            errors={},
        )

    @post("/account/tokens", operation_id="web_create_token")
    async def create_token(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template:
        me = require(viewer)
        form = await request.form()
        scopes = [str(s) for s in form.getall("scopes", [])]
        days = str(form.get("expires_in_days") or "").strip()
        errors: dict[str, str] = {}
        new_secret = None
        try:
            data = msgspec.convert(
                {
                    "name": str(form.get("name", "")),
                    "scopes": scopes,
                    "expires_in_days": int(days) if days.isdigit() else None,
                },
                NewToken,
            )
            new_secret = (await services.create_token(pool, clock.now(), me, data)).secret
        except msgspec.ValidationError as exc:
            field, message = form_error(exc)
            errors["form"] = message if field is None else f"{field}: {message}"
        except (Invalid, Forbidden) as exc:
            errors[exc.field or "form"] = exc.message
        async with pool.acquire() as conn:
            users = await conn.fetch(Q.org_users, me.org_id)
        return page(
            request,
            "accounts/account.html",
            me,
            status_code=422 if errors else 201,
            users=users,
            tokens=await services.list_tokens(pool, me.org_id),
            scopes=sorted(SCOPES_BY_KIND[me.org_kind]),
            new_secret=new_secret,
            errors=errors,
        )

    @post("/account/tokens/{token_id:int}/revoke", operation_id="web_revoke_token")
    async def revoke_token(
        self, pool: PoolDep, clock: ClockDep, viewer: ViewerDep, token_id: FromPath[int]
    ) -> Redirect:
        await services.revoke_token(pool, clock.now(), require(viewer), token_id)
        return Redirect("/account")


class OperatorPages(Controller):
    path = "/operator"
    include_in_schema = False

    @get("/organisations", operation_id="web_operator_orgs")
    async def queue(
        self, request: Request[Any, Any, State], pool: PoolDep, viewer: ViewerDep
    ) -> Template:
        me = _operator(viewer)
        async with pool.acquire() as conn:
            pending = await conn.fetch(Q.orgs_by_status, ["pending"])
        return page(request, "operator/organisations.html", me, pending=pending)

    @post("/organisations/{org_id:int}/{decision:str}", operation_id="web_operator_decide")
    async def decide(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        org_id: FromPath[int],
        decision: FromPath[str],
    ) -> Redirect:
        me = _operator(viewer)
        if decision not in ("approve", "reject"):
            raise Invalid("decision is approve or reject", field="decision")
        form = await _form(request)
        await services.decide_organisation(
            pool,
            clock.now(),
            me.user_id,
            me.org_id,
            org_id,
            approve=decision == "approve",
            reason=form.get("reason", ""),
        )
        return Redirect("/operator/organisations")


def _operator(viewer: ViewerDep) -> Viewer:
    me = require(viewer)
    if me.org_kind != "operator":
        raise Forbidden("only the exchange operator reviews organisations")
    return me
