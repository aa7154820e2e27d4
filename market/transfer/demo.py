"""The demo's transfers of title (market/lots/demo.py sells its lots through them): the
bank uploads the pledge's release, the buyer the recordal, the operator confirms — each
through its command, at its own instant, so the demo's sales read as real ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from market.accounts.models import Viewer
from market.cases.services import china_today
from market.clock import FrozenClock
from market.commands import Act, Actor, Context
from market.transfer import checking, escrow, notices
from market.transfer.models import RELEASE, ConfirmTransfer, NoticeKind, UploadNotice

# A one-page PDF standing in for a scanned notice.
_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
_FILENAMES: dict[str, str] = {
    "pledge_release": "质押登记注销通知书.pdf",
    "patent_recordal": "著录项目变更手续合格通知书.pdf",
    "trademark_assignment": "商标转让核准通知.pdf",
    "software_registration": "软件著作权转让登记证明.pdf",
}


@dataclass(frozen=True)
class Parties:
    bank: Viewer
    buyer: Viewer
    operator: Viewer


def _act(pool: asyncpg.Pool, at: datetime, who: Viewer) -> Act:
    return Act(Context(pool=pool, clock=FrozenClock(at)), Actor.of(who))


def _notice(sale_id: int, kind: NoticeKind, at: datetime, n: int) -> UploadNotice:
    prefix = "ZX" if kind == RELEASE else "BG"
    return UploadNotice(
        sale_id=sale_id,
        kind=kind,
        number=f"{prefix}{china_today(at):%Y%m%d}{sale_id:04d}{n}",
        issued_on=china_today(at),
        filename=_FILENAMES[kind],
        content=_PDF,
    )


async def release_demo_pledge(pool: asyncpg.Pool, at: datetime, sale_id: int, who: Parties) -> None:
    """The bank uploads the release of the pledge registration at `at`."""
    await _act(pool, at, who.bank)(notices.upload_release, _notice(sale_id, RELEASE, at, 0))


async def complete_demo_transfer(
    pool: asyncpg.Pool, at: datetime, sale_id: int, who: Parties
) -> None:
    """Release at `at`, the recordals a week later, the operator's confirmation two days
    after: the sale completes and its price is routed."""
    await release_demo_pledge(pool, at, sale_id, who)
    recorded = at + timedelta(days=7)
    async with pool.acquire() as conn:
        missing = (await escrow.view(conn, sale_id)).missing
    for n, kind in enumerate(missing, start=1):
        await _act(pool, recorded, who.buyer)(
            notices.upload_recordal, _notice(sale_id, kind, recorded, n)
        )
    await _act(pool, recorded + timedelta(days=2), who.operator)(
        checking.confirm_transfer, ConfirmTransfer(sale_id=sale_id)
    )
