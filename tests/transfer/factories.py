"""Carrying a paid sale's transfer through as its parties do (market/transfer): the bank
uploads the pledge's release, the buyer each recordal the lot needs, the operator confirms.
"""

from __future__ import annotations

from datetime import date

import asyncpg

from market.cases.services import china_today
from market.clock import FrozenClock
from market.transfer import checking, notices
from market.transfer.models import ConfirmTransfer, NoticeKind, TransferOut, UploadNotice
from tests.factories import act_as

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def notice(
    sale_id: int, kind: NoticeKind, number: str, issued_on: date, content: bytes = PDF
) -> UploadNotice:
    return UploadNotice(
        sale_id=sale_id,
        kind=kind,
        number=number,
        issued_on=issued_on,
        filename=f"{kind}.pdf",
        content=content,
    )


async def upload_release(
    pool: asyncpg.Pool, clock: FrozenClock, bank_user: int, sale_id: int, number: str = ""
) -> TransferOut:
    act = await act_as(pool, clock.now(), bank_user)
    data = notice(sale_id, "pledge_release", number or f"ZX{sale_id:08d}", china_today(clock.now()))
    return await act(notices.upload_release, data)


async def upload_recordals(
    pool: asyncpg.Pool, clock: FrozenClock, buyer_user: int, sale_id: int
) -> TransferOut:
    """Every recordal the lot's assets need, numbered after the sale."""
    act = await act_as(pool, clock.now(), buyer_user)
    out: TransferOut | None = None
    async with pool.acquire() as conn:
        needed = [k for k in (await _view(conn, sale_id)).missing if k != "pledge_release"]
    for i, kind in enumerate(needed):
        data = notice(sale_id, kind, f"BG{sale_id:06d}{i}", china_today(clock.now()))
        out = await act(notices.upload_recordal, data)
    assert out is not None
    return out


async def _view(conn: asyncpg.Connection, sale_id: int) -> TransferOut:
    from market.transfer.escrow import view

    return await view(conn, sale_id)


async def confirm(
    pool: asyncpg.Pool, clock: FrozenClock, operator_user: int, sale_id: int
) -> TransferOut:
    act = await act_as(pool, clock.now(), operator_user)
    return await act(checking.confirm_transfer, ConfirmTransfer(sale_id=sale_id))


async def complete_transfer(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    sale_id: int,
    *,
    bank_user: int,
    buyer_user: int,
    operator_user: int,
) -> TransferOut:
    """The whole transfer at the clock's instant: release, recordals, the operator's
    confirmation — the sale is completed and its price routed through the waterfall."""
    await upload_release(pool, clock, bank_user, sale_id)
    await upload_recordals(pool, clock, buyer_user, sale_id)
    done = await confirm(pool, clock, operator_user, sale_id)
    assert done.status == "completed"
    return done
