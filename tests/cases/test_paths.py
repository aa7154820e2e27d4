"""One case, many tries (docs/rules.md §Moving between paths): the case's history in order
with each outcome, through the API; the next paths open with their deadlines; a move after
its deadline refused, naming why, with nothing written; every kind and outcome labelled."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from auctions.closing import default_overdue
from market import i18n
from market.cases import paths
from market.clock import FrozenClock
from market.licensing import deciding
from market.listing import period
from market.lots import services as lots
from market.lots.lifecycle import IllegalTransition
from market.lots.models import LotDraft, PublishInput, RelistLot, WithdrawInput
from market.lots.services import relist_lot
from market.lots.terms import ListingInput, TermsInput
from market.settings import Settings
from market.web import LANG_COOKIE
from tests.cases.paths_scene import (
    EXPECTED,
    PERIOD_END,
    RELIST_PRICE,
    SOLD_PRICE,
    auction_unsold,
    listing_failed,
    whole_history,
)
from tests.factories import act_as, csrf, make_org, make_token, sign_in, viewer
from tests.licensing.offers_scene import BID, to_deciding
from tests.listing.scene import DEPOSIT
from tests.lots.factories import draft_lot, lot_action, make_case


async def _auth(
    pool: asyncpg.Pool, clock: FrozenClock, user_id: int, scopes: list[str]
) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token(pool, clock.now(), user_id, scopes)}"}


def _shown(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(t["kind"], t["round"], t["outcome"], t["amount_fen"]) for t in body["tries"]]


async def test_the_case_lists_every_try_in_order_with_its_outcome(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    h = await whole_history(pool, clock, settings)
    bank = await _auth(pool, clock, h.scene.bank.user_id, ["collateral:read"])
    r = await client.get(f"/api/v1/cases/{h.case_id}/paths", headers=bank)
    assert r.status_code == 200, r.text
    body = r.json()
    assert _shown(body) == EXPECTED
    assert {t["kind"] for t in body["tries"]} <= set(paths.kinds())
    assert {t["outcome"] for t in body["tries"]} <= set(paths.outcomes())
    starts = [t["started_at"] for t in body["tries"]]
    assert starts == sorted(starts)
    assert all(t["lot_reference"] == h.lot.reference for t in body["tries"])
    assert body["tries"][0]["link"] == f"/listings/{h.lot.reference}"
    assert body["next"] == []  # sold: nothing left to try

    # The operator reads the same; another bank reads nothing (404), nor a bank the
    # operator's view (403).
    op = await _auth(pool, clock, h.scene.operator.user_id, ["operator:write"])
    r = await client.get(f"/api/v1/operator/cases/{h.case_id}/paths", headers=op)
    assert r.status_code == 200 and _shown(r.json()) == EXPECTED
    assert r.json()["reference"]
    _, other, _ = await make_org(pool, clock.now(), kind="bank")
    stranger = await _auth(pool, clock, other, ["collateral:read"])
    r = await client.get(f"/api/v1/cases/{h.case_id}/paths", headers=stranger)
    assert r.status_code == 404 and r.json()["code"] == "no_such_case"
    r = await client.get(f"/api/v1/operator/cases/{h.case_id}/paths", headers=bank)
    assert r.status_code == 403


async def test_a_failed_round_shows_its_next_paths_until_their_deadline(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    h = await listing_failed(pool, clock, settings)
    bank = await _auth(pool, clock, h.scene.bank.user_id, ["collateral:read"])
    r = await client.get(f"/api/v1/cases/{h.case_id}/paths", headers=bank)
    body = r.json()
    assert _shown(body) == [("listing", 1, "no_intent", None)]
    moves = {n["move"]: n for n in body["next"]}
    assert set(moves) == {"relist_auction", "relist_listing", "extend_listing"}
    until = PERIOD_END + timedelta(days=settings_days())
    assert all(_instant(n["until"]) == until for n in body["next"])
    assert moves["extend_listing"]["link"] == f"/listings/{h.lot.reference}"
    assert moves["relist_listing"]["link"] == f"/bank/lots/{h.lot.id}#move-relist"
    # The listing unsold as an auction: no extension any more, the relists stay open.
    await auction_unsold(h)
    async with pool.acquire() as conn:
        found = await paths.next_paths(conn, h.case_id, clock.now(), paths.MovesPolicy())
    assert {n.move for n in found} == {"relist_auction", "relist_listing"}
    # A second past the window: nothing open.
    late = found[0].until + timedelta(seconds=1)
    async with pool.acquire() as conn:
        assert await paths.next_paths(conn, h.case_id, late, paths.MovesPolicy()) == []


def settings_days() -> int:
    return paths.MovesPolicy().retry_within_days


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _written(pool: asyncpg.Pool) -> dict[str, int]:
    return {
        t: await pool.fetchval(f"SELECT count(*) FROM {t}")
        for t in ("lot_transitions", "lot_rounds", "audit_log", "outbox", "listing_periods")
    }


async def test_a_move_after_its_deadline_is_refused_naming_why_and_writes_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    h = await listing_failed(pool, clock, settings)
    until = PERIOD_END + timedelta(days=settings_days())
    clock.set(until + timedelta(seconds=1))
    token = await _auth(pool, clock, h.scene.bank.user_id, ["lots:write"])
    relist = {
        "action": "relist",
        "terms": {
            "start_price_fen": RELIST_PRICE,
            "deposit_fen": DEPOSIT // 2,
            "mode": "listing",
            "listing": {"period_working_days": 20},
        },
    }
    before = await _written(pool)
    lot_before = await pool.fetchrow("SELECT * FROM lots WHERE id = $1", h.lot.id)
    r = await client.post(f"/api/v1/bank/lots/{h.lot.id}/actions", json=relist, headers=token)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["code"] == "move_deadline_passed"
    assert problem["params"]["action"] == "relist_listing"
    assert problem["params"]["days"] == 30
    assert "30" in problem["detail"]
    r = await client.post(
        f"/api/v1/bank/listings/{h.lot.reference}/extension", headers=token, json={}
    )
    assert r.status_code == 409 and r.json()["code"] == "move_deadline_passed", r.text
    assert await _written(pool) == before
    assert dict(await pool.fetchrow("SELECT * FROM lots WHERE id = $1", h.lot.id)) == dict(
        lot_before
    )

    # One second earlier the same relist is taken.
    clock.set(until)
    r = await client.post(f"/api/v1/bank/lots/{h.lot.id}/actions", json=relist, headers=token)
    assert r.status_code == 200, r.text
    assert (r.json()["round"], r.json()["terms"]["mode"]) == (2, "listing")


async def test_a_move_the_round_does_not_allow_is_refused_too(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """A fixed-price sale straight after a failed first round: the lifecycle's 409."""
    h = await listing_failed(pool, clock, settings)
    token = await _auth(pool, clock, h.scene.bank.user_id, ["lots:write"])
    before = await _written(pool)
    ends = (clock.now() + timedelta(days=10)).isoformat()
    r = await client.post(
        f"/api/v1/bank/lots/{h.lot.id}/actions",
        json={"action": "fixed_price", "ends_at": ends},
        headers=token,
    )
    assert r.status_code == 409 and r.json()["code"] == "fixed_price_needs_failed_relist"
    assert await _written(pool) == before


NUMBERS = {"round": 1, "retry_days": 30, "fixed_days": 30, "max_pct": 20, "working_days": 5}


def test_every_kind_outcome_and_move_has_a_label_in_both_languages() -> None:
    for lang in i18n.LANGS:
        for prefix, values in (
            ("paths.kind", paths.kinds()),
            ("paths.outcome", paths.outcomes()),
            ("paths.move", paths.MOVES),
        ):
            for value in values:
                assert i18n.has(f"{prefix}.{value}")
                text = i18n.gettext(lang, f"{prefix}.{value}", **NUMBERS)
                assert text != f"{prefix}.{value}" and "%(" not in text


async def test_the_lot_page_relists_as_a_listing_and_the_case_page_shows_the_paths(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    h = await listing_failed(pool, clock, settings)
    email = await pool.fetchval("SELECT email FROM users WHERE id = $1", h.scene.bank.user_id)
    assert (await sign_in(client, email)).status_code in (302, 303)
    client.cookies.set(LANG_COOKIE, "zh")

    # The case page: the listing's try and the next paths open, with their deadline.
    page = (await client.get(f"/bank/cases/{h.case_id}")).text
    assert 'data-kind="listing" data-outcome="no_intent"' in page
    assert "期满无合格意向受让方" in page
    for move in ("relist_auction", "relist_listing", "extend_listing"):
        assert f'data-move="{move}"' in page
    assert "截止 2026-11-10 00:00" in page  # 30 days after 24:00 on Saturday 10 October
    assert "再次拍卖（起拍价最多降低 20%）" in page and "延长挂牌期 5 个工作日" in page
    assert "后 30 日内可再次拍卖" in page

    # The lot page's relist form chooses a listing or an auction.
    lot_page = (await client.get(f"/bank/lots/{h.lot.id}")).text
    assert 'id="move-relist"' in lot_page and 'data-testid="relist-mode"' in lot_page
    r = await client.post(
        f"/bank/lots/{h.lot.id}/actions/relist",
        data={
            "_csrf_token": await csrf(client),
            "mode": "listing",
            "listing_period_days": "20",
            "start_price": f"{RELIST_PRICE / 100:.2f}",
            "deposit": f"{DEPOSIT // 2 / 100:.2f}",
            "bidding_starts_at": "",
            "bidding_ends_at": "",
        },
        follow_redirects=False,
    )
    assert r.status_code in (302, 303), r.text
    lot = await pool.fetchrow("SELECT round, status, terms FROM lots WHERE id = $1", h.lot.id)
    assert (lot["round"], lot["status"], lot["terms"]["mode"]) == (2, "announced", "listing")
    page = (await client.get(f"/bank/cases/{h.case_id}")).text
    assert 'data-kind="listing" data-outcome="relisted"' in page
    assert 'data-kind="listing" data-outcome="in_progress"' in page
    assert 'data-testid="no-next-path"' in page


async def test_two_next_paths_taken_at_once_make_one_move(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The extension and a relist of one failed listing, at the same instant: each command
    locks the lot row first and checks the round and its window on it, so one moves the
    lot and the other finds it moved (409); one transition is written."""
    h = await listing_failed(pool, clock, settings)
    clock.set(PERIOD_END + timedelta(days=29))
    bank = await act_as(pool, clock, h.scene.bank.user_id)
    relist = TermsInput(
        start_price_fen=RELIST_PRICE,
        deposit_fen=DEPOSIT // 2,
        mode="listing",
        listing=ListingInput(period_working_days=20),
    )
    before = await pool.fetchval("SELECT count(*) FROM lot_transitions")
    done = await asyncio.gather(
        bank(
            period.extend_listing,
            period.ExtendListingPeriod(reference=h.lot.reference, policy=h.scene.policy),
        ),
        bank(relist_lot, RelistLot(lot_id=h.lot.id, policy=h.scene.policy, terms=relist)),
        return_exceptions=True,
    )
    refused = [d for d in done if isinstance(d, IllegalTransition)]
    moved = [d for d in done if not isinstance(d, BaseException)]
    assert len(refused) == 1 and len(moved) == 1, done
    assert await pool.fetchval("SELECT count(*) FROM lot_transitions") == before + 1


async def test_a_licence_decision_is_a_try_of_its_own(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """A round closed with licence offers standing: the auction round awaits the bank's
    decision, then the deadline lets the hammer stand (docs/rules.md §Licence offers and
    decision); both show, in order, the decision with the price that stands."""
    d = await to_deciding(pool, clock, settings)
    async with pool.acquire() as conn:
        shown = [
            (t.kind, t.outcome, t.amount_fen) for t in await paths.tries_of(conn, d.scene.case_id)
        ]
    assert shown == [("auction", "deciding", None), ("licence_decision", "deciding", None)]
    deadline = d.end + timedelta(days=10)
    assert await deciding.decide_due(pool, deadline, lots.policy_for(settings)) == [d.scene.lot.id]
    async with pool.acquire() as conn:
        found = await paths.tries_of(conn, d.scene.case_id)
    assert [(t.kind, t.outcome, t.amount_fen) for t in found] == [
        ("auction", "sold", BID),
        ("licence_decision", "hammer_stands", BID),
    ]
    assert found[1].started_at == d.end and found[1].ended_at == deadline
    assert found[1].link == f"/bank/lots/{d.scene.lot.id}/offers"


async def test_a_winner_who_defaults_opens_the_fixed_price_sale(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The relist's winner does not pay (悔拍): that round shows defaulted at its price, the
    fixed-price sale opens for 30 days from the default, and the bank moves to it."""
    h = await whole_history(pool, clock, settings)
    due = await pool.fetchval("SELECT due_at FROM sales WHERE lot_id = $1", h.lot.id)
    policy = lots.policy_for(settings)
    assert len(await default_overdue(pool, due, policy)) == 1
    clock.set(due + timedelta(hours=1))
    bank = await _auth(pool, clock, h.scene.bank.user_id, ["collateral:read", "lots:write"])
    body = (await client.get(f"/api/v1/cases/{h.case_id}/paths", headers=bank)).json()
    assert _shown(body)[-1] == ("auction", 2, "defaulted", SOLD_PRICE)
    assert [(n["move"], _instant(n["until"])) for n in body["next"]] == [
        ("fixed_price", due + timedelta(days=30))
    ]
    ends = (clock.now() + timedelta(days=20)).isoformat()
    r = await client.post(
        f"/api/v1/bank/lots/{h.lot.id}/actions",
        json={"action": "fixed_price", "ends_at": ends},
        headers=bank,
    )
    assert r.status_code == 200, r.text
    body = (await client.get(f"/api/v1/cases/{h.case_id}/paths", headers=bank)).json()
    assert _shown(body)[-1] == ("fixed_price", 3, "in_progress", None)
    assert body["next"] == []


async def test_a_lot_withdrawn_before_it_opened_is_a_try_from_its_announcement(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    at = clock.now()
    bank_org, bank_user, _ = await make_org(pool, at, kind="bank")
    me = await viewer(pool, bank_user)
    policy = lots.policy_for(settings)
    case_id, _ = await make_case(pool, at, bank_org, bank_user)
    starts = at + timedelta(days=31)
    draft = LotDraft(
        title="电池隔膜专利",
        terms=TermsInput(
            start_price_fen=700_000_00,
            deposit_fen=70_000_00,
            bidding_starts_at=starts,
            bidding_ends_at=starts + timedelta(days=1),
        ),
    )
    lot = await draft_lot(pool, at, policy, me, case_id, draft)
    async with pool.acquire() as conn:
        assert await paths.tries_of(conn, case_id) == []  # a draft is no try
    await lot_action(pool, at, policy, me, lot.id, PublishInput())
    async with pool.acquire() as conn:
        (scheduled,) = await paths.tries_of(conn, case_id)
    assert (scheduled.outcome, scheduled.started_at, scheduled.ended_at) == (
        "scheduled",
        starts,
        None,
    )
    withdrawn_at = at + timedelta(days=3)
    await lot_action(pool, withdrawn_at, policy, me, lot.id, WithdrawInput(reason="借款人已清偿"))
    async with pool.acquire() as conn:
        (withdrawn,) = await paths.tries_of(conn, case_id)
    assert (withdrawn.kind, withdrawn.outcome) == ("auction", "withdrawn")
    assert (withdrawn.started_at, withdrawn.ended_at) == (at, withdrawn_at)
