"""The catalogue search service: every filter against a small seeded set of lots."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import asyncpg
import pytest

from market import problems
from market.catalogue import services
from market.catalogue.models import CatalogueQuery
from market.clock import FrozenClock
from market.errors import Invalid
from tests.catalogue.factories import make_bank_case, make_lot

ALL = ("announced", "bidding", "sold", "failed", "paused", "withdrawn", "returned")


async def seed(pool: asyncpg.Pool, at: datetime) -> dict[str, str]:
    """Seven lots, one a draft; returns name → reference."""
    sichuan = await make_bank_case(pool, at, region="四川省成都市")
    other = await make_bank_case(pool, at, region="广东省深圳市")
    lots = {
        "battery": await make_lot(
            pool, at, sichuan, title="一种锂电池正极材料的制备方法", status="announced",
            start_price_fen=1_000_000_00, ends_in=timedelta(days=10),
            published_ago=timedelta(days=1), ipc=("H01M 4/525",),
        ),
        "drone": await make_lot(
            pool, at, other, title="基于图像识别的无人机巡检方法", status="bidding",
            start_price_fen=200_000_00, current_price_fen=300_000_00,
            ends_in=timedelta(hours=3), published_ago=timedelta(days=3), ipc=("G06V 10/82",),
        ),
        "brand": await make_lot(
            pool, at, sichuan, title="“蜀锦”注册商标（第9类）", status="bidding",
            start_price_fen=50_000_00, ends_in=timedelta(days=2), published_ago=timedelta(days=2),
            kinds=("trademark",), ipc=(), region="四川省绵阳市",
        ),
        "chip": await make_lot(
            pool, at, other, title="半导体封装结构", status="sold", start_price_fen=5_000_000_00,
            current_price_fen=6_000_000_00, ends_in=timedelta(days=-1),
            published_ago=timedelta(days=20), ipc=("H01L 23/31",), region="江苏省苏州市",
        ),
        "draft": await make_lot(
            pool, at, sichuan, title="锂电池隔膜及其制备方法", status="draft",
            ipc=("H01M 50/409",),
        ),
        "medicine": await make_lot(
            pool, at, sichuan, title="中药组合物及其制备方法", status="failed",
            ends_in=timedelta(days=-3), published_ago=timedelta(days=30), ipc=("A61K 36/00",),
        ),
        "recycling": await make_lot(
            pool, at, sichuan, title="锂电池回收工艺", status="paused",
            published_ago=timedelta(days=5), ipc=("H01M 10/54",),
        ),
    }  # fmt: skip
    return {name: lot.reference for name, lot in lots.items()}


async def found(
    pool: asyncpg.Pool, clock: FrozenClock, refs: dict[str, str], **params: object
) -> list[str]:
    page = await services.search(pool, CatalogueQuery(**params), clock.now())  # type: ignore[arg-type]
    by_ref = {ref: name for name, ref in refs.items()}
    return [by_ref[item.reference] for item in page.items]


async def test_default_shows_live_lots_ending_soonest_first_and_never_drafts(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    refs = await seed(pool, clock.now())
    assert await found(pool, clock, refs) == ["drone", "brand", "battery"]
    everything = await found(pool, clock, refs, statuses=ALL)
    assert sorted(everything) == ["battery", "brand", "chip", "drone", "medicine", "recycling"]


async def test_status_filter(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    refs = await seed(pool, clock.now())
    assert await found(pool, clock, refs, statuses=("sold",)) == ["chip"]
    # closed states list the newest first
    assert await found(pool, clock, refs, statuses=("failed", "paused")) == [
        "recycling",
        "medicine",
    ]


async def test_keywords_in_chinese(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    refs = await seed(pool, clock.now())
    assert await found(pool, clock, refs, q="锂电池") == ["battery"]
    assert sorted(await found(pool, clock, refs, q="锂电池", statuses=ALL)) == [
        "battery",
        "recycling",
    ]
    assert await found(pool, clock, refs, q="制备", statuses=("failed",)) == ["medicine"]
    assert await found(pool, clock, refs, q="池锂", statuses=ALL) == []
    assert await found(pool, clock, refs, q="无人机 图像识别") == ["drone"]
    # the region is part of the text too
    assert await found(pool, clock, refs, q="绵阳") == ["brand"]


async def test_ipc_prefix(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    refs = await seed(pool, clock.now())
    assert await found(pool, clock, refs, ipc="H01M") == ["battery"]
    assert await found(pool, clock, refs, ipc="H01M 4/") == ["battery"]
    assert await found(pool, clock, refs, ipc="h01m 4/525") == ["battery"]
    assert sorted(await found(pool, clock, refs, ipc="H01", statuses=ALL)) == [
        "battery",
        "chip",
        "recycling",
    ]
    assert await found(pool, clock, refs, ipc="H01M 41") == []


async def test_asset_kind_and_region(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    refs = await seed(pool, clock.now())
    assert await found(pool, clock, refs, kind="trademark") == ["brand"]
    assert await found(pool, clock, refs, kind="patent") == ["drone", "battery"]
    assert await found(pool, clock, refs, region="四川") == ["brand", "battery"]
    assert await found(pool, clock, refs, region="四川省成都") == ["battery"]
    assert await found(pool, clock, refs, region="四川", kind="patent") == ["battery"]
    # LIKE wildcards typed into the box are plain characters
    assert await found(pool, clock, refs, region="%") == []
    assert await found(pool, clock, refs, region="_") == []


async def test_price_range_is_on_the_current_price(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    refs = await seed(pool, clock.now())
    # drone starts at 200,000 but its highest bid is 300,000: inside the range
    in_range = await found(pool, clock, refs, price_min_fen=250_000_00, price_max_fen=1_000_000_00)
    assert in_range == ["drone", "battery"]
    assert await found(pool, clock, refs, price_max_fen=250_000_00) == ["brand"]
    assert await found(pool, clock, refs, price_min_fen=1_000_000_01) == []


async def test_the_price_sort_and_range_catch_up_with_bidding_on_refresh(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    refs = await seed(pool, clock.now())
    # brand (start 50,000) is bid up to 1,200,000 — the way a bid batch writes it: the live
    # price only; the catalogue's price sort and range follow at the next refresh.
    await pool.execute(
        "UPDATE lots SET current_price_fen = $2 WHERE reference = $1", refs["brand"], 1_200_000_00
    )
    assert await found(pool, clock, refs, sort="price_desc") == ["battery", "drone", "brand"]
    page = await services.search(pool, CatalogueQuery(sort="price_desc"), clock.now())
    assert page.items[-1].price_fen == 1_200_000_00  # the card shows the live price at once

    async with pool.acquire() as holder, holder.transaction():
        # A row a bid batch holds is skipped, not waited for …
        await holder.execute("SELECT 1 FROM lots WHERE reference = $1 FOR UPDATE", refs["brand"])
        assert await services.refresh_prices(pool) == 0
    # … and taken by the next refresh.
    assert await services.refresh_prices(pool) == 1
    assert await found(pool, clock, refs, sort="price_desc") == ["brand", "battery", "drone"]
    assert await found(pool, clock, refs, price_min_fen=1_100_000_00) == ["brand"]
    assert await services.refresh_prices(pool) == 0  # nothing moved since
    # Many lots are refreshed a chunk per statement, every one of them.
    await pool.execute("UPDATE lots SET current_price_fen = start_price_fen + 100")
    assert await services.refresh_prices(pool, chunk=2) == 7  # all seven (a draft is harmless)
    assert await services.refresh_prices(pool, chunk=2) == 0
    with pytest.raises(ValueError, match="at least one lot"):
        await services.refresh_prices(pool, chunk=0)  # would loop for ever


async def test_ending_soon(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    refs = await seed(pool, clock.now())
    assert await found(pool, clock, refs, ending_soon=True) == ["drone"]
    clock.advance(hours=4)  # drone's end has passed
    assert await found(pool, clock, refs, ending_soon=True) == []


async def test_sorting(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    refs = await seed(pool, clock.now())
    assert await found(pool, clock, refs, sort="price_asc") == ["brand", "drone", "battery"]
    assert await found(pool, clock, refs, sort="price_desc") == ["battery", "drone", "brand"]
    assert await found(pool, clock, refs, sort="newest") == ["battery", "brand", "drone"]
    relevance = await found(pool, clock, refs, q="方法", sort="relevance")
    assert sorted(relevance) == ["battery", "drone"]


async def test_pages_and_counts(
    pool: asyncpg.Pool, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(pool, clock.now())
    first = await services.search(pool, CatalogueQuery(page_size=2), clock.now())
    assert len(first.items) == 2 and first.has_next and first.total == 3
    second = await services.search(pool, CatalogueQuery(page_size=2, page=2), clock.now())
    assert len(second.items) == 1 and not second.has_next and second.total == 3
    assert {i.reference for i in first.items}.isdisjoint(i.reference for i in second.items)
    beyond = await services.search(pool, CatalogueQuery(page_size=2, page=5), clock.now())
    assert beyond.items == [] and not beyond.has_next

    monkeypatch.setattr(services, "COUNT_CAP", 2)
    capped = await services.search(pool, CatalogueQuery(page_size=1, statuses=ALL), clock.now())
    assert capped.total_capped and capped.total == 2


async def test_cards_carry_public_fields_only(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    refs = await seed(pool, clock.now())
    page = await services.search(pool, CatalogueQuery(q="无人机"), clock.now())
    card = page.items[0]
    assert card.reference == refs["drone"]
    assert card.price_fen == 300_000_00 and card.start_price_fen == 200_000_00
    assert card.ipc_codes == ["G06V 10/82"]
    assert card.region == "广东省深圳市"
    assert not {"notes", "loan_id", "case_id", "bank_org_id"} & set(card.__struct_fields__)


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"price_min": ["500"], "price_max": ["100"]}, "price_min", "price_range_reversed"),
        ({"price_min": ["abc"]}, "price_min", "amount_not_yuan"),
        ({"price_min": ["2万3亿"]}, "price_min", "amount_in_wan"),
        ({"price_max": ["-5"]}, "price_max", "amount_negative"),
        ({"sort": ["cheapest"]}, "sort", "not_a_choice"),
        ({"sort": ["relevance"]}, "sort", "relevance_needs_keywords"),
        ({"page": ["0"]}, "page", "too_small"),
        ({"page": ["x"]}, "page", "whole_number"),
        ({"page": ["100000"]}, "page", "search_page_too_deep"),
        ({"page_size": ["101"]}, "page_size", "too_large"),
        ({"page_size": ["0"]}, "page_size", "too_small"),
        ({"ipc": ["Z12"]}, "ipc", "ipc_section_letter"),
        ({"ipc": ["H01M 4/5"]}, "ipc", "ipc_subgroup_length"),
        ({"kind": ["copyright"]}, "kind", "not_a_choice"),
        ({"status": ["draft"]}, "status", "draft_not_public"),
        ({"status": ["announced,bogus"]}, "status", "not_a_choice"),
        ({"ending_soon": ["maybe"]}, "ending_soon", "not_a_boolean"),
        ({"q": ["锂" * 201]}, "q", "too_long"),
        ({"region": ["川" * 61]}, "region", "too_long"),
        ({"q": ["a", "b"]}, "q", "parameter_repeated"),
    ],
)
async def test_bad_parameters_are_named(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    params: dict[str, list[str]],
    field: str,
    code: str,
) -> None:
    with pytest.raises(Invalid) as caught:
        await services.search(pool, services.parse_query(params), clock.now())
    assert caught.value.field == field
    assert caught.value.code == code
    assert caught.value.status == 422
    # the words exist in both languages, each alone
    zh = problems.text(caught.value, "zh")
    en = problems.text(caught.value, "en")
    assert not zh.startswith("problem.") and not en.startswith("problem.")
    assert re.search(r"[\u4e00-\u9fff]", zh) and re.search(r"[A-Za-z]{4}", en)
    assert zh not in en and en not in zh


def test_refusals_carry_their_numbers(clock: FrozenClock) -> None:
    reversed_range = services.parse_query({"price_min": ["500"], "price_max": ["100"]})
    with pytest.raises(Invalid) as caught:
        services.plan(reversed_range, clock.now())
    assert caught.value.params == {"min_fen": 500_00, "max_fen": 100_00}
    assert problems.text(caught.value, "zh") == "最低价 ¥500.00 高于最高价 ¥100.00。"
    with pytest.raises(Invalid) as caught:
        services.parse_query({"kind": ["copyright"]})
    assert caught.value.params == {
        "value": "copyright",
        "choices": ["patent", "trademark", "software_copyright"],
    }
    with pytest.raises(Invalid) as caught:
        services.plan(CatalogueQuery(page=1000), clock.now())
    assert caught.value.params == {"max": 10_000}


def test_parse_query_reads_what_a_form_sends() -> None:
    query = services.parse_query(
        {
            "q": ["  锂电池 "],
            "price_min": ["1,000,000"],
            "price_max": ["¥2000000"],
            "status": ["bidding", "sold"],
            "ending_soon": ["on"],
            "page": ["2"],
            "kind": [""],
            "sort": [""],
        }
    )
    assert query.q == "锂电池"
    assert query.price_min_fen == 1_000_000_00 and query.price_max_fen == 2_000_000_00
    assert query.statuses == ("bidding", "sold")
    assert query.ending_soon and query.page == 2
    assert query.kind is None and query.sort is None
    assert services.parse_query({}).statuses == ("announced", "bidding")
