"""Notification pages: the inbox, the header's unread count, preferences, and the
operator's failed deliveries with their replay button."""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.db import Queries
from market.deps import ClockDep, PoolDep, RedisDep, SettingsDep, ViewerDep
from market.errors import Forbidden, Invalid
from market.notify import delivery, inbox, preferences
from market.web import LANG_COOKIE, page, require

Q = Queries("notify")

FAILED_SHOWN = 500


def _page_number(value: str | None, field: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise Invalid(f"{field}: a message id", field=field)
    return int(value)


class InboxPages(Controller):
    include_in_schema = False

    @get("/inbox", operation_id="web_inbox", cache=False)
    async def list(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        before: FromQuery[str | None] = None,
        unread: FromQuery[str | None] = None,
    ) -> Template:
        me = require(viewer)
        unread_only = unread in ("1", "true", "on")
        items = await inbox.list_items(
            pool, me.user_id, before=_page_number(before, "before"), unread_only=unread_only
        )
        return page(request, "notify/inbox.html", me, inbox=items, unread_only=unread_only)

    @get("/inbox/count", operation_id="web_inbox_count", cache=False)
    async def count(
        self, request: Request[Any, Any, State], pool: PoolDep, viewer: ViewerDep
    ) -> Template | Response[str]:
        """The header's inbox link with its unread count, for htmx to poll (every 15 s)."""
        if viewer is None:
            return Response("", media_type=MediaType.HTML, headers={"Cache-Control": "no-store"})
        n = await inbox.unread_count(pool, viewer.user_id)
        response = page(request, "notify/_inbox_count.html", viewer, unread=n)
        response.headers["Cache-Control"] = "no-store"
        return response

    @post("/inbox/{item_id:int}/read", operation_id="web_inbox_mark_read")
    async def mark_read(
        self, pool: PoolDep, clock: ClockDep, viewer: ViewerDep, item_id: FromPath[int]
    ) -> Redirect:
        me = require(viewer)
        await inbox.mark_read(pool, clock.now(), me.user_id, item_id)
        return Redirect("/inbox")

    @post("/inbox/read-all", operation_id="web_inbox_mark_all_read")
    async def mark_all_read(self, pool: PoolDep, clock: ClockDep, viewer: ViewerDep) -> Redirect:
        me = require(viewer)
        await inbox.mark_all_read(pool, clock.now(), me.user_id)
        return Redirect("/inbox")


class PreferencePages(Controller):
    path = "/account/notifications"
    include_in_schema = False

    @get("", operation_id="web_notification_preferences", cache=False)
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        saved: FromQuery[str | None] = None,
    ) -> Template:
        me = require(viewer)
        prefs = await preferences.load(pool, me.user_id, me.org_kind, me.language)
        return page(
            request, "notify/preferences.html", me, prefs=prefs, saved=saved == "1", errors={}
        )

    @post("", operation_id="web_save_notification_preferences")
    async def save(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        me = require(viewer)
        form = await request.form()
        language = str(form.get("language") or "")
        email_on = [str(e) for e in form.getall("email", [])]
        try:
            prefs = await preferences.save(
                pool, clock.now(), me, language=language, email_on=email_on
            )
        except Invalid as exc:
            current = await preferences.load(pool, me.user_id, me.org_kind, me.language)
            return page(
                request,
                "notify/preferences.html",
                me,
                status_code=422,
                prefs=current,
                saved=False,
                errors={exc.field or "form": exc.message},
            )
        # Every page after this answers in the language just chosen (the cookie wins).
        response = Redirect("/account/notifications?saved=1")
        response.set_cookie(
            LANG_COOKIE,
            prefs.language,
            max_age=365 * 86400,
            samesite="lax",
            secure=settings.secure_cookies,
        )
        return response


def _operator(viewer: Viewer | None) -> Viewer:
    me = require(viewer)
    if me.org_kind != "operator":
        raise Forbidden("only the exchange operator sees failed notifications")
    return me


class FailedNotificationPages(Controller):
    path = "/operator/notifications"
    include_in_schema = False

    @get("", operation_id="web_operator_notifications", cache=False)
    async def failed(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        replayed: FromQuery[int | None] = None,
    ) -> Template:
        me = _operator(viewer)
        async with pool.acquire() as conn:
            rows = await conn.fetch(Q.failed_deliveries, FAILED_SHOWN)
        return page(request, "notify/failed.html", me, failed=rows, replayed=replayed)

    @post("/{delivery_id:int}/replay", operation_id="web_operator_replay_notification")
    async def replay_one(
        self,
        pool: PoolDep,
        clock: ClockDep,
        redis: RedisDep,
        viewer: ViewerDep,
        delivery_id: FromPath[int],
    ) -> Redirect:
        me = _operator(viewer)
        n = await delivery.replay(
            pool,
            clock.now(),
            [delivery_id],
            redis=redis if isinstance(redis, ArqRedis) else None,
            actor_user_id=me.user_id,
            actor_org_id=me.org_id,
        )
        return Redirect(f"/operator/notifications?replayed={n}")

    @post("/replay-failed", operation_id="web_operator_replay_all_notifications")
    async def replay_all(
        self, pool: PoolDep, clock: ClockDep, redis: RedisDep, viewer: ViewerDep
    ) -> Redirect:
        me = _operator(viewer)
        n = await delivery.replay(
            pool,
            clock.now(),
            all_failed=True,
            redis=redis if isinstance(redis, ArqRedis) else None,
            actor_user_id=me.user_id,
            actor_org_id=me.org_id,
        )
        return Redirect(f"/operator/notifications?replayed={n}")
