"""The accounts pages: sign in and out, buyer registration, account and tokens, operator review."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market import csrf, i18n
from market.accounts import services, sessions
from market.accounts.models import NewToken, Viewer
from market.accounts.permissions import (
    MANAGE_TOKENS,
    OWN_ACCOUNT,
    SCOPES_BY_KIND,
    allow,
    refusal,
)
from market.db import Queries
from market.deps import ActDep, ClockDep, MeDep, PoolDep, RedisDep, SettingsDep, ViewerDep
from market.errors import RateLimited, Unauthorized
from market.web import LANG_COOKIE, Form, client_address, page

Q = Queries("accounts")


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would help phishing."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return urlsplit(target).path or "/"


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
        clock: ClockDep,
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
                client=client_address(request, settings),
                at=clock.now(),
                previous=request.cookies.get(settings.cookie_name(sessions.BASE_NAME)),
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
            settings.cookie_name(sessions.BASE_NAME),
            token,
            max_age=settings.session_ttl_seconds,
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies,
        )
        # The forms of the new session carry a token bound to it (market/csrf.py).
        response.set_cookie(csrf.cookie(settings, csrf.issue(settings.secret_key, token)))
        return response

    @post("/logout", operation_id="web_logout")
    async def logout(
        self, request: Request[Any, Any, State], redis: RedisDep, settings: SettingsDep
    ) -> Redirect:
        name = settings.cookie_name(sessions.BASE_NAME)
        token = request.cookies.get(name)
        if token:
            await sessions.destroy(redis, token)
        response = Redirect("/")
        # Secure even in its deletion: a browser ignores a `__Host-` cookie without it.
        response.set_cookie(name, "", max_age=0, expires=0, secure=settings.secure_cookies)
        response.set_cookie(csrf.cookie(settings, csrf.issue(settings.secret_key, None)))
        return response

    @post("/lang", operation_id="web_set_language")
    async def set_language(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        viewer: ViewerDep,
        settings: SettingsDep,
    ) -> Redirect:
        form = await _form(request)
        lang = i18n.pick(form.get("lang"))
        if viewer is not None:
            await act(services.set_language, lang)
        response = Redirect(_safe_next(form.get("next")))
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", secure=settings.secure_cookies
        )
        return response


class AccountPage(Controller):
    include_in_schema = False
    path = "/account"

    @get("/", operation_id="web_account", guards=[allow(OWN_ACCOUNT)])
    async def account(
        self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep
    ) -> Template:
        return await _account(request, pool, me)

    @post("/tokens", operation_id="web_create_token", guards=[allow(MANAGE_TOKENS)])
    async def create_token(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template:
        form = await Form.read(request, me)
        days = form.text("expires_in_days")
        token = await form.submit(
            lambda: act(
                services.create_token,
                msgspec.convert(
                    {
                        "name": form.text("name"),
                        "scopes": form.lists.get("scopes", []),
                        "expires_in_days": int(days) if days.isdigit() else None,
                    },
                    NewToken,
                ),
            )
        )
        return await _account(
            request,
            pool,
            me,
            status_code=201 if token else form.status,
            new_secret=token.secret if token else None,
            errors=form.errors,
        )

    @post(
        "/tokens/{token_id:int}/revoke",
        operation_id="web_revoke_token",
        guards=[allow(MANAGE_TOKENS)],
    )
    async def revoke_token(self, act: ActDep, token_id: FromPath[int]) -> Redirect:
        await act(services.revoke_token, token_id)
        return Redirect("/account")


async def _account(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    *,
    status_code: int = 200,
    new_secret: str | None = None,
    errors: dict[str, str] | None = None,
) -> Template:
    async with pool.acquire() as conn:
        users = await conn.fetch(Q.org_users, me.org_id)
    manages = refusal(MANAGE_TOKENS, me.org_kind, me.org_status, me.role) is None
    return page(
        request,
        "accounts/account.html",
        me,
        status_code=status_code,
        users=users,
        tokens=await services.list_tokens(pool, me.org_id) if manages else [],
        manages_tokens=manages,
        scopes=sorted(SCOPES_BY_KIND[me.org_kind]),
        new_secret=new_secret,
        errors=errors or {},
    )
