"""The inbox over the API: the messages of the user who created the calling token; that
user's notification preferences; and the operator's failed deliveries with their replay
(the operator's failed-notifications page)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post, put
from litestar.params import FromPath, FromQuery

from market import api_docs
from market.accounts.permissions import OPERATE, OWN_ACCOUNT, allow
from market.db import Queries
from market.deps import ActDep, CallerDep, PoolDep, RedisDep
from market.notify import delivery, inbox, preferences
from market.notify.delivery import Replay
from market.notify.inbox import InboxPage
from market.notify.preferences import Preferences, SavePreferences
from market.notify.web import FAILED_SHOWN  # the newest failures, as many as the page shows

Q = Queries("notify")

SAVE_PREFERENCES = api_docs.body(
    SavePreferences,
    {"language": "zh", "email": ["outbid", "won"]},
    {"language": "en", "email": []},
)


class MarkedRead(msgspec.Struct, frozen=True, kw_only=True):
    marked: int  # how many messages were unread and are read now


class FailedDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """A notification that could not be delivered after every try."""

    id: int
    outbox_id: int
    event: str
    channel: str
    target: str
    attempts: int
    last_error: str | None
    lot_reference: str | None
    event_at: datetime
    created_at: datetime


class ReplayOut(msgspec.Struct, frozen=True, kw_only=True):
    replayed: int  # how many failed deliveries are pending again


class InboxApi(Controller):
    path = "/api/v1/inbox"
    tags = ["notifications"]
    guards = [allow(OWN_ACCOUNT)]

    @get("", operation_id="list_inbox", summary="List the user's inbox", cache=False)
    async def list_inbox(
        self,
        caller: CallerDep,
        pool: PoolDep,
        before: FromQuery[int | None] = None,
        unread_only: FromQuery[bool] = False,
        limit: FromQuery[int] = 50,
    ) -> InboxPage:
        """The inbox of the token's user, newest first: `limit` messages (1–200) older
        than message `before`, with the unread count and `next_before` for the next page."""
        return await inbox.list_items(
            pool, caller.user_id, before=before, unread_only=unread_only, limit=limit
        )

    @post(
        "/{item_id:int}/read",
        operation_id="mark_inbox_read",
        summary="Mark an inbox message read",
        status_code=204,
    )
    async def mark_read(self, act: ActDep, item_id: FromPath[int]) -> None:
        """Mark one message read (idempotent); another user's message: 404."""
        await act(inbox.mark_inbox_read, item_id)

    @post(
        "/read-all",
        operation_id="mark_inbox_all_read",
        summary="Mark every inbox message read",
        status_code=200,
    )
    async def mark_all_read(self, act: ActDep) -> MarkedRead:
        """Mark every unread message of the token's user read; `marked` says how many
        were unread. Again: 0, nothing changes."""
        return MarkedRead(marked=await act(inbox.mark_inbox_all_read, None))


class PreferencesApi(Controller):
    path = "/api/v1/notification-preferences"
    tags = ["notifications"]
    guards = [allow(OWN_ACCOUNT)]

    @get(
        "",
        operation_id="get_notification_preferences",
        summary="Read the user's notification preferences",
        cache=False,
    )
    async def show(self, caller: CallerDep, pool: PoolDep) -> Preferences:
        """The token's user's language and, for every event their organisation's kind
        can receive, whether it comes by e-mail (their choice, else the default). The
        inbox gets every event whatever is chosen."""
        return await preferences.load(pool, caller.user_id, caller.org_kind, caller.language)

    @put(
        "",
        operation_id="save_notification_preferences",
        summary="Save the user's notification preferences",
    )
    async def save(
        self, act: ActDep, data: Annotated[SavePreferences, SAVE_PREFERENCES]
    ) -> Preferences:
        """Replace the token's user's choices: the language of every message and page,
        and the events to receive by e-mail (every other event of theirs is off). A
        language or event that is not one: 422 naming the field."""
        return await act(preferences.save_preferences, data)


class FailedDeliveriesApi(Controller):
    path = "/api/v1/operator/deliveries"
    tags = ["notifications"]
    guards = [allow(OPERATE)]

    @get(
        "/failed",
        operation_id="list_failed_deliveries",
        summary="List the notifications that failed",
        cache=False,
    )
    async def failed(self, pool: PoolDep) -> list[FailedDelivery]:
        """Deliveries that failed after every try (e-mail, webhook), newest first, the
        latest 500: event, channel, target, tries and the last error."""
        async with pool.acquire() as conn:
            rows = await conn.fetch(Q.failed_deliveries, FAILED_SHOWN)
        return [msgspec.convert(dict(r), FailedDelivery) for r in rows]

    @post(
        "/{delivery_id:int}/replay",
        operation_id="replay_delivery",
        summary="Try a failed notification again",
        status_code=200,
    )
    async def replay_one(
        self, act: ActDep, redis: RedisDep, delivery_id: FromPath[int]
    ) -> ReplayOut:
        """Put one failed delivery back to pending, due now; `replayed` is 1, or 0 if it
        is not a failed delivery (a sent one is never sent again)."""
        replayed = await act(delivery.replay_deliveries, Replay(delivery_ids=[delivery_id]))
        await delivery.queue_replayed(redis, replayed)
        return ReplayOut(replayed=replayed.count)

    @post(
        "/replay-failed",
        operation_id="replay_failed_deliveries",
        summary="Try every failed notification again",
        status_code=200,
    )
    async def replay_all(self, act: ActDep, redis: RedisDep) -> ReplayOut:
        """Put every failed delivery back to pending, due now; `replayed` says how many."""
        replayed = await act(delivery.replay_deliveries, Replay(all_failed=True))
        await delivery.queue_replayed(redis, replayed)
        return ReplayOut(replayed=replayed.count)
