"""The inbox over the API: the messages of the user who created the calling token."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery

from market.accounts.permissions import OWN_ACCOUNT, allow
from market.deps import ActDep, CallerDep, PoolDep
from market.notify import inbox
from market.notify.inbox import InboxPage


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
