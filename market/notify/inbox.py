"""The in-app inbox (issue 5 item 3): what the delivery job wrote for each user.

Rows are written only by delivery.py (one per user and outbox row, in the transaction
that marks the delivery sent). Here: reading them, the unread count for the page header,
marking read. Every query names the user in its WHERE, so another user's message is
NotFound, never shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg
import msgspec

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
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid(f"limit: 1–{PAGE_MAX}", field="limit")
    if before is not None and before < 1:
        raise Invalid("before: a message id", field="before")
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


async def mark_read(pool: asyncpg.Pool, at: datetime, user_id: int, item_id: int) -> bool:
    """Mark one of the user's messages read; True if it was unread. Another's: NotFound."""
    async with pool.acquire() as conn:
        if await conn.fetchval(Q.inbox_mark_read, user_id, item_id, at) is not None:
            return True
        if await conn.fetchval(Q.inbox_exists, user_id, item_id) is None:
            raise NotFound("no such message")
    return False


async def mark_all_read(pool: asyncpg.Pool, at: datetime, user_id: int) -> int:
    async with pool.acquire() as conn:
        status = await conn.execute(Q.inbox_mark_all_read, user_id, at)
    return int(status.rsplit(" ", 1)[1])
