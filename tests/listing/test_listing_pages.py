"""The listing's pages at each step, as the public, the bank, the intending buyer and the
operator read them, in both languages: every text translated (no message id shown), the
state and the forms each reader may use (docs/rules.md §Listing)."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market import i18n
from market.clock import FrozenClock
from market.settings import Settings
from market.web import LANG_COOKIE
from tests.factories import sign_in
from tests.listing.scene import PERIOD_END, make_listing

KEYS = re.compile(
    r"\b(?:" + "|".join(sorted({k.split(".")[0] for k in i18n.message_ids()})) + r")\.[a-z_.]+"
)


async def _read(client: AsyncTestClient[Any], url: str, lang: str) -> str:
    client.cookies.set(LANG_COOKIE, lang)
    r = await client.get(url)
    assert r.status_code == 200, (url, r.status_code)
    shown = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", r.text, flags=re.S)
    shown = re.sub(r'(href|action|src|data-[a-z-]+|name|class|id)="[^"]*"', "", shown)
    assert not KEYS.findall(re.sub(r"<[^>]+>", " ", shown)), (url, lang, KEYS.findall(shown))
    return r.text


async def _as(client: AsyncTestClient[Any], pool: asyncpg.Pool, user_id: int) -> None:
    client.cookies.clear()
    email = await pool.fetchval("SELECT email FROM users WHERE id = $1", user_id)
    assert (await sign_in(client, email)).status_code in (302, 303)


async def test_each_reader_sees_the_listing_translated_with_its_own_forms(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_listing(pool, clock, settings)
    ref = scene.lot.reference
    buyer, _ = await scene.buyer()
    for lang in ("zh", "en"):
        page = await _read(client, f"/listings/{ref}", lang)
        assert 'data-state="listed"' in page
        assert ("挂牌中" in page) == (lang == "zh") and ("Listed" in page) == (lang == "en")
        catalogue = await _read(client, "/lots", lang)
        assert 'data-testid="listing-ends"' in catalogue
        await _read(client, f"/lots/{ref}", lang)
    await scene.advance(PERIOD_END)
    for lang in ("zh", "en"):
        client.cookies.clear()
        public = await _read(client, f"/listings/{ref}", lang)
        assert 'data-state="negotiation"' in public and "buyer-confirm-form" not in public
        await _read(client, f"/lots/{ref}", lang)
        await _as(client, pool, buyer.user_id)
        mine = await _read(client, f"/listings/{ref}", lang)
        assert "buyer-confirm-form" in mine and "bank-confirm-form" not in mine
        await _as(client, pool, scene.bank.user_id)
        bank = await _read(client, f"/listings/{ref}", lang)
        assert "buyer-confirm-form" not in bank and "bank-confirm-form" not in bank
        await _read(client, f"/bank/lots/{scene.lot.id}", lang)
        await _as(client, pool, scene.operator.user_id)
        listed = await _read(client, "/operator/listings", lang)
        assert ref in listed
        # Each listing leads to its case's paths.
        paths = f'href="/operator/cases/{scene.lot.case_id}/paths"'
        assert paths in listed
        await _read(client, f"/operator/cases/{scene.lot.case_id}/paths", lang)
    other = await _read(client, "/listings/NO-SUCH-LOT", "zh")
    assert 'data-testid="not-a-listing"' in other
