"""Notification pages: the inbox, the header's unread count, preferences, and the
operator's failed deliveries with their replay button."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.accounts.permissions import OPERATE, OWN_ACCOUNT, READ_WEBHOOKS, allow, refusal
from market.db import Queries
from market.deps import ActDep, MeDep, PoolDep, RedisDep, SettingsDep, ViewerDep
from market.notify import delivery, inbox, preferences
from market.notify.delivery import Replay
from market.notify.preferences import SavePreferences
from market.web import LANG_COOKIE, Form, page

Q = Queries("notify")


def _sees_webhooks(me: Viewer) -> bool:
    """Whether the preferences page links to the webhook page (READ_WEBHOOKS)."""
    return refusal(READ_WEBHOOKS, me.org_kind, me.org_status, me.role) is None


FAILED_SHOWN = 500


class InboxPages(Controller):
    include_in_schema = False

    @get("/inbox", operation_id="web_inbox", cache=False, guards=[allow(OWN_ACCOUNT)])
    async def list(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        before: FromQuery[int | None] = None,
        unread: FromQuery[str | None] = None,
    ) -> Template:
        unread_only = unread in ("1", "true", "on")
        items = await inbox.list_items(pool, me.user_id, before=before, unread_only=unread_only)
        return page(request, "notify/inbox.html", me, inbox=items, unread_only=unread_only)

    @get("/inbox/count", operation_id="web_inbox_count", cache=False)
    async def count(
        self, request: Request[Any, Any, State], pool: PoolDep, viewer: ViewerDep
    ) -> Template | Response[str]:
        """The header's inbox link with its unread count, for htmx to poll (every 15 s).
        Public: a stranger gets nothing, a signed-in user their own count."""
        if viewer is None:
            return Response("", media_type=MediaType.HTML, headers={"Cache-Control": "no-store"})
        n = await inbox.unread_count(pool, viewer.user_id)
        response = page(request, "notify/_inbox_count.html", viewer, unread=n)
        response.headers["Cache-Control"] = "no-store"
        return response

    @post(
        "/inbox/{item_id:int}/read",
        operation_id="web_inbox_mark_read",
        guards=[allow(OWN_ACCOUNT)],
    )
    async def mark_read(self, act: ActDep, item_id: FromPath[int]) -> Redirect:
        await act(inbox.mark_inbox_read, item_id)
        return Redirect("/inbox")

    @post("/inbox/read-all", operation_id="web_inbox_mark_all_read", guards=[allow(OWN_ACCOUNT)])
    async def mark_all_read(self, act: ActDep) -> Redirect:
        await act(inbox.mark_inbox_all_read, None)
        return Redirect("/inbox")


class PreferencePages(Controller):
    path = "/account/notifications"
    include_in_schema = False
    guards = [allow(OWN_ACCOUNT)]

    @get("", operation_id="web_notification_preferences", cache=False)
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        saved: FromQuery[str | None] = None,
    ) -> Template:
        prefs = await preferences.load(pool, me.user_id, me.org_kind, me.language)
        return page(
            request,
            "notify/preferences.html",
            me,
            prefs=prefs,
            saved=saved == "1",
            errors={},
            sees_webhooks=_sees_webhooks(me),
        )

    @post("", operation_id="web_save_notification_preferences")
    async def save(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        data = {"language": form.text("language"), "email": form.lists.get("email", [])}
        prefs = await form.submit(
            lambda: act(preferences.save_preferences, msgspec.convert(data, SavePreferences))
        )
        if prefs is None:
            current = await preferences.load(pool, me.user_id, me.org_kind, me.language)
            return page(
                request,
                "notify/preferences.html",
                me,
                status_code=form.status,
                prefs=current,
                saved=False,
                errors=form.errors,
                sees_webhooks=_sees_webhooks(me),
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


class FailedNotificationPages(Controller):
    path = "/operator/notifications"
    include_in_schema = False
    guards = [allow(OPERATE)]

    @get("", operation_id="web_operator_notifications", cache=False)
    async def failed(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        replayed: FromQuery[int | None] = None,
    ) -> Template:
        async with pool.acquire() as conn:
            rows = await conn.fetch(Q.failed_deliveries, FAILED_SHOWN)
        return page(request, "notify/failed.html", me, failed=rows, replayed=replayed)

    @post("/{delivery_id:int}/replay", operation_id="web_operator_replay_notification")
    async def replay_one(
        self, act: ActDep, redis: RedisDep, delivery_id: FromPath[int]
    ) -> Redirect:
        replayed = await act(delivery.replay_deliveries, Replay(delivery_ids=[delivery_id]))
        await delivery.queue_replayed(redis, replayed)
        return Redirect(f"/operator/notifications?replayed={replayed.count}")

    @post("/replay-failed", operation_id="web_operator_replay_all_notifications")
    async def replay_all(self, act: ActDep, redis: RedisDep) -> Redirect:
        replayed = await act(delivery.replay_deliveries, Replay(all_failed=True))
        await delivery.queue_replayed(redis, replayed)
        return Redirect(f"/operator/notifications?replayed={replayed.count}")
