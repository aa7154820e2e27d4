"""The catalogue shows a listing beside the auctions (docs/rules.md §Listing): marked as a
listing, with its state and its period's end, on the page in both languages and in the
catalogue API; an auction beside it carries neither mark."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.lots.models import LotDraft, PublishInput
from market.lots.terms import TermsInput
from market.settings import Settings
from market.web import LANG_COOKIE
from tests.factories import viewer
from tests.listing.scene import PERIOD_END, make_listing
from tests.lots.factories import draft_lot, lot_action, make_case


def _row(html: str, reference: str) -> str:
    found = re.search(rf'<tr data-reference="{re.escape(reference)}">(.*?)</tr>', html, re.S)
    assert found, reference
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))


async def test_the_catalogue_shows_a_listing_with_its_state_and_period_end(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_listing(pool, clock, settings)
    # An auction of the same bank beside it.
    me = await viewer(pool, scene.bank.user_id)
    case_id, _ = await make_case(pool, clock.now(), scene.bank.org_id, scene.bank.user_id)
    starts = clock.now() + timedelta(days=31)
    auction = await draft_lot(
        pool,
        clock.now(),
        scene.policy,
        me,
        case_id,
        LotDraft(
            title="电池隔膜专利（拍卖）",
            terms=TermsInput(
                start_price_fen=700_000_00,
                deposit_fen=70_000_00,
                bidding_starts_at=starts,
                bidding_ends_at=starts + timedelta(days=1),
            ),
        ),
    )
    auction = await lot_action(pool, clock.now(), scene.policy, me, auction.id, PublishInput())

    for lang, badge, state, ends in (
        ("zh", "挂牌", "公告中", "挂牌期满：2026-10-11 00:00"),
        ("en", "Listing", "Announced", "Listing period ends: 2026-10-11 00:00"),
    ):
        client.cookies.set(LANG_COOKIE, lang)
        r = await client.get("/lots")
        assert r.status_code == 200
        listed = _row(r.text, scene.lot.reference)
        assert badge in listed and state in listed and ends in listed, listed
        other = _row(r.text, auction.reference)
        assert state in other and badge not in other and ends.split("2026")[0] not in other

    r = await client.get("/api/v1/lots")
    cards = {c["reference"]: c for c in r.json()["items"]}
    listing, auctioned = cards[scene.lot.reference], cards[auction.reference]
    assert (listing["mode"], listing["status"]) == ("listing", "announced")
    assert _instant(listing["listing_ends_at"]) == PERIOD_END
    assert (auctioned["mode"], auctioned["listing_ends_at"]) == ("auction", None)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
