"""The home page sells: a search box, lots ending soon and newly listed, the live lots by
technology field and by region, and the exchange's figures (market/catalogue/home.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.web import LANG_COOKIE
from tests.catalogue.factories import make_bank_case, make_lot

Client = AsyncTestClient[Any]


def _between(html: str, start: str, end: str) -> str:
    return html.split(start, 1)[1].split(end, 1)[0]


async def test_home_shows_shelves_fields_regions_and_figures(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    at = clock.now()
    bank = await make_bank_case(pool, at)
    soon = await make_lot(
        pool,
        at,
        bank,
        title="一种光伏组件清洗机器人",
        status="bidding",
        ends_in=timedelta(hours=3),
        ipc=("B08B 1/00",),
        region="四川省成都市",
    )
    later = await make_lot(
        pool,
        at,
        bank,
        title="车载激光雷达点云检测方法",
        status="bidding",
        ends_in=timedelta(days=3),
        ipc=("G01S 17/89", "G06V 20/58"),
        region="四川省绵阳市",
    )
    new = await make_lot(
        pool,
        at,
        bank,
        title="一种锂电池正极材料",
        status="announced",
        published_ago=timedelta(minutes=5),
        ipc=("H01M 4/525",),
        region="广东省深圳市",
    )
    sold = await make_lot(pool, at, bank, title="已成交的专利", status="sold")
    draft = await make_lot(pool, at, bank, title="尚未公告的草稿", status="draft")

    html = (await client.get("/")).text
    assert 'action="/lots"' in html and 'name="q"' in html  # the search box
    ending = _between(html, 'data-testid="shelf-ending"', "</section>")
    # bidding lots, the one ending first first; an announced lot is not ending
    assert ending.index(soon.reference) < ending.index(later.reference)
    assert new.reference not in ending
    newest = _between(html, 'data-testid="shelf-newest"', "</section>")
    assert newest.index(new.reference) < newest.index(soon.reference)
    assert sold.reference not in newest and draft.reference not in html
    # live lots by IPC section: B 1, G 1 (one lot with two G codes counts once), H 1
    sections = _between(html, 'data-testid="shelf-sections"', "</section>")
    assert 'href="/lots?ipc=G"' in sections
    assert re.findall(r'ipc=([A-H])">', sections) == ["B", "G", "H"]
    assert re.findall(r"<small>(\d+)</small>", sections) == ["1", "1", "1"]
    regions = unquote(_between(html, 'data-testid="shelf-regions"', "</section>"))
    assert "region=四川省" in regions and "region=广东省" in regions
    assert regions.index("四川省") < regions.index("广东省")  # two lots before one
    figures = _between(html, 'data-testid="figures"', "</ul>")
    assert "<strong>3</strong>" in figures  # live: two bidding, one announced
    assert "<strong>1</strong>" in figures  # sold

    # each shelf's link is a catalogue search that finds what the shelf showed
    listing = (await client.get("/lots?status=bidding&sort=ending")).text
    assert listing.index(soon.reference) < listing.index(later.reference)
    by_field = (await client.get("/lots?ipc=G")).text
    assert later.reference in by_field and soon.reference not in by_field
    by_region = (await client.get("/lots", params={"region": "四川省"})).text
    assert soon.reference in by_region and new.reference not in by_region


async def test_home_in_english_and_empty(client: Client) -> None:
    client.cookies.set(LANG_COOKIE, "en")
    html = (await client.get("/")).text
    assert "Ending soon" in html and "By technology field" in html
    assert "¥0.00" in html  # nothing recovered yet, said as an amount
