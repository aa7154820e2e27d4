"""The in-app inbox (docs/rules.md §Notifications): what the delivery job wrote for each user.

Rows are written only by delivery.py (one per user and outbox row, in the transaction
that marks the delivery sent). Here: reading them, the unread count for the page header,
marking read (commands of the user's own account, OWN_ACCOUNT). Every query names the
user in its WHERE, so another user's message is NotFound, never shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg
import msgspec

from market.accounts.permissions import OWN_ACCOUNT
from market.commands import UnitOfWork, command
from market.db import Queries
from market.errors import Invalid, NotFound

Q = Queries("notify")

PAGE_MAX: Final = 200


class InboxItem(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    event: str
    title: str
    body: str
    lot_id: int | None
    lot_reference: str | None
    created_at: datetime
    read_at: datetime | None


class InboxPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[InboxItem]
    unread: int
    # Pass as `before` for the next (older) page; null on the last page.
    next_before: int | None


async def unread_count(pool: asyncpg.Pool, user_id: int) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(Q.inbox_unread_count, user_id))


async def list_items(
    pool: asyncpg.Pool,
    user_id: int,
    *,
    before: int | None = None,
    unread_only: bool = False,
    limit: int = 50,
) -> InboxPage:
    """The user's messages, newest first, `limit` at a time (older ones via `before`)."""
    if limit < 1:
        raise Invalid("too_small", field="limit", min=1)
    if limit > PAGE_MAX:
        raise Invalid("too_large", field="limit", max=PAGE_MAX)
    if before is not None and before < 1:
        raise Invalid("too_small", field="before", min=1)
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.inbox_list, user_id, before, unread_only, limit + 1)
        unread = int(await conn.fetchval(Q.inbox_unread_count, user_id))
    items = [
        InboxItem(
            id=r["id"],
            event=r["event"],
            title=r["title"],
            body=r["body"],
            lot_id=r["lot_id"],
            lot_reference=r["lot_reference"],
            created_at=r["created_at"],
            read_at=r["read_at"],
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return InboxPage(items=items, unread=unread, next_before=items[-1].id if more else None)


@command(OWN_ACCOUNT)
async def mark_inbox_read(uow: UnitOfWork, item_id: int) -> bool:
    """Mark one of the acting user's messages read; True if it was unread. Another's:
    NotFound. Idempotent: the UPDATE changes only an unread row, so of two concurrent
    marks one changes it and the other finds it read."""
    user_id = uow.actor.user
    if await uow.conn.fetchval(Q.inbox_mark_read, user_id, item_id, uow.at) is not None:
        return True
    if await uow.conn.fetchval(Q.inbox_exists, user_id, item_id) is None:
        raise NotFound("no_such_message")
    return False


@command(OWN_ACCOUNT)
async def mark_inbox_all_read(uow: UnitOfWork, _: None) -> int:
    """Mark every unread message of the acting user read; returns how many. One UPDATE:
    concurrent calls each mark what is still unread."""
    status = await uow.conn.execute(Q.inbox_mark_all_read, uow.actor.user, uow.at)
    return int(status.rsplit(" ", 1)[1])
