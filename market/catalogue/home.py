"""The home page's shelves, as the big judicial-auction sites lay theirs out: lots ending
soon, lots newly listed, the live lots by technology field (IPC section) and by region, and
the exchange's figures (lots live and sold, amounts recovered). Read with the catalogue's
own search (market/catalogue/services.py), so a shelf and the catalogue it links to agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg
import msgspec

from market.catalogue import services
from market.catalogue.models import CatalogueQuery, LotCard
from market.db import Queries, returned

Q = Queries("home")
SHELF: Final = 6  # cards per shelf: two rows of three on a desktop, a short scroll on a phone
REGIONS: Final = 12


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    live: int  # announced or bidding
    sold: int  # sold or licensed
    recovered_fen: int  # every receipt routed back to banks and pools
    buyers: int  # approved buyers


class Count(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # an IPC section letter, or a province
    lots: int


class Home(msgspec.Struct, frozen=True, kw_only=True):
    figures: Figures
    ending: list[LotCard]
    newest: list[LotCard]
    sections: list[Count]
    regions: list[Count]


async def home(pool: asyncpg.Pool, now: datetime) -> Home:
    ending = await services.search(
        pool, CatalogueQuery(statuses=("bidding",), sort="ending", page_size=SHELF), now
    )
    newest = await services.search(pool, CatalogueQuery(sort="newest", page_size=SHELF), now)
    async with pool.acquire() as conn:
        figures = Figures(**dict(returned(await conn.fetchrow(Q.figures))))
        sections = [Count(key=r["section"], lots=r["lots"]) for r in await conn.fetch(Q.by_section)]
        regions = [
            Count(key=r["province"], lots=r["lots"]) for r in await conn.fetch(Q.by_region, REGIONS)
        ]
    return Home(
        figures=figures,
        ending=ending.items,
        newest=newest.items,
        sections=sections,
        regions=regions,
    )
