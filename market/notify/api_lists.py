"""The notifications of the user behind a token, a page at a time with filters
(market/paging.py): the messages the inbox page shows, as structured fields."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, get
from litestar.params import FromQuery

from market.accounts.permissions import OWN_ACCOUNT, allow
from market.db import Queries
from market.deps import CallerDep, PoolDep
from market.notify.inbox import InboxItem
from market.paging import DEFAULT_LIMIT, Cursor, Keyset, Limit, Page, rows_as

Q = Queries("api")
NOTIFICATIONS: Keyset[tuple[datetime, int]] = Keyset(
    "notifications", tuple[datetime, int], "created_at", "id"
)


class NotificationsApi(Controller):
    path = "/api/v1/notifications"
    tags = ["notifications"]
    guards = [allow(OWN_ACCOUNT)]

    @get(
        "", operation_id="list_notifications", summary="List the user's notifications", cache=False
    )
    async def notifications(
        self,
        caller: CallerDep,
        pool: PoolDep,
        unread_only: FromQuery[bool] = False,
        event: FromQuery[str | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[InboxItem]:
        """The messages of the user who created the token, newest first: event (e.g.
        `outbid`, `won`, `deposit_confirmed`), title, body, lot, when, and when read.
        Filters: `unread_only`, `event`."""
        return await NOTIFICATIONS.read(
            pool,
            Q.page_notifications,
            caller.user_id,
            unread_only,
            event,
            cursor=cursor,
            limit=limit,
            item=rows_as(InboxItem),
        )
