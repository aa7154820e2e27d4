"""An approved acquisition institution as the taker of an agreed acquisition (docs/rules.md
§Acquisition and pledge-to-equity, "By an acquisition institution"), on an injected clock:
the bank names it, it accepts, the pools' window passes, the failed lot is sold to it at the
agreed price and the sale goes through the after-the-hammer steps — the balance paid by its
JK reference on the exchange statement, escrow, release, recordal and the operator's check
— and only then is the cash routed through the waterfall, once, as the sale's receipt."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from market.acquisition import agreement, paths
from market.cases.paths import Try, tries_of
from market.clock import FrozenClock
from market.errors import Conflict, Invalid, NotFound
from market.lots import services as lots
from market.settings import Settings
from tests.acquisition.scene import balance_of, import_lines, object_as
from tests.acquisition.taker_scene import PRICE, answer_as, make_taker_scene, propose_to
from tests.factories import make_org
from tests.transfer.factories import complete_transfer

DAY = timedelta(days=1)


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    """What a refused step must not write."""
    tables = ("agreed_disposals", "sales", "registrations", "outbox", "audit_log", "ledger_legs")
    return {t: int(await pool.fetchval(f"SELECT count(*) FROM {t}")) for t in tables}


async def tries(pool: asyncpg.Pool, case_id: int) -> list[Try]:
    """The case's agreed disposals as tries of its history of paths."""
    async with pool.acquire() as conn:
        return await paths.tries(conn, case_id)


async def test_the_acquirer_accepts_buys_pays_and_the_cash_is_routed_once_at_the_transfer(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    t = await make_taker_scene(pool, clock, settings)
    acquirer_org, acquirer_user = t.acquirer
    terms = lots.policy_for(settings)
    proposed = await propose_to(pool, clock.now(), t, acquirer_org)
    assert (proposed.status, proposed.taker_org_id, proposed.lot_id) == (
        "pending",
        acquirer_org,
        t.lot_id,
    )
    assert proposed.accept_by == proposed.objection_until == clock.now() + 10 * DAY
    offered = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event = 'agreed_disposal_offered'"
        " AND recipient_org_id = $1",
        acquirer_org,
    )
    assert offered == 1

    clock.advance(days=3)
    accepted = await answer_as(pool, clock.now(), acquirer_user, proposed.id)
    assert accepted.accepted_at == clock.now() and accepted.status == "pending"
    assert await answer_as(pool, clock.now(), acquirer_user, proposed.id) == accepted  # once
    told = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event = 'agreed_disposal_accepted'"
        " AND recipient_org_id = $1",
        t.s.loan.bank_org,
    )
    assert told == 1
    # Not before the window's end.
    assert await agreement.sweep(pool, clock.now(), terms=terms) == []

    clock.advance(days=7)
    assert await agreement.sweep(pool, clock.now(), terms=terms) == [proposed.id]
    assert await agreement.sweep(pool, clock.now(), terms=terms) == []  # once
    sale = await pool.fetchrow("SELECT * FROM sales WHERE lot_id = $1", t.lot_id)
    assert (sale["buyer_org_id"], sale["price_fen"], sale["status"]) == (
        acquirer_org,
        PRICE,
        "awaiting_payment",
    )
    assert (sale["deposit_fen"], sale["balance_due_fen"]) == (0, PRICE)
    assert sale["payment_reference"].startswith("JK")
    lot = await pool.fetchrow("SELECT status, round FROM lots WHERE id = $1", t.lot_id)
    assert (lot["status"], lot["round"]) == ("sold", 1)
    step = await pool.fetchval(
        "SELECT action FROM lot_transitions WHERE lot_id = $1 ORDER BY id DESC LIMIT 1", t.lot_id
    )
    assert step == "sell_by_agreement"
    confirmation = await pool.fetchval(
        "SELECT count(*) FROM sale_documents WHERE sale_id = $1", sale["id"]
    )
    assert confirmation >= 1  # the sale confirmation (成交确认书)
    [attempt] = await tries(pool, t.s.loan.case_id)
    assert (attempt.kind, attempt.outcome, attempt.lot_id, attempt.round, attempt.amount_fen) == (
        "acquisition",
        "sold",
        t.lot_id,
        1,
        PRICE,
    )
    async with pool.acquire() as conn:
        history = await tries_of(conn, t.s.loan.case_id)
    # The listing's period found no intent; the sale is the agreed disposal's try.
    assert [(h.kind, h.outcome) for h in history][-1] == ("acquisition", "sold")
    assert ("auction", "sold") not in [(h.kind, h.outcome) for h in history]
    # Not a bank debt: no receivable, no receipt, no settlement reference.
    assert await balance_of(pool, f"receivable:agreement:{proposed.id}") == 0
    assert await pool.fetchval("SELECT count(*) FROM receipts") == 0
    done = await pool.fetchrow("SELECT * FROM agreed_disposals WHERE id = $1", proposed.id)
    assert (done["status"], done["receipt_id"], done["settlement_reference"]) == (
        "completed",
        None,
        None,
    )

    # The balance arrives on the exchange statement with its JK reference.
    clock.advance(days=2)
    await import_lines(
        pool, clock.now(), t.s, (PRICE, f"收储价款 {sale['payment_reference']}", "K1")
    )
    assert await pool.fetchval("SELECT status FROM sales WHERE id = $1", sale["id"]) == "paid"
    assert await pool.fetchval("SELECT count(*) FROM receipts") == 0  # held in escrow

    clock.advance(days=5)
    await complete_transfer(
        pool,
        clock,
        sale["id"],
        bank_user=t.s.loan.bank_user,
        buyer_user=acquirer_user,
        operator_user=t.operator_user,
    )
    receipts = await pool.fetch("SELECT * FROM receipts")
    assert [(r["source"], r["amount_fen"]) for r in receipts] == [(f"sale:{sale['id']}", PRICE)]
    payees = {
        r["payee_org_id"]
        for r in await pool.fetch(
            "SELECT payee_org_id FROM distributions WHERE receipt_id = $1", receipts[0]["id"]
        )
    }
    assert {t.s.pool_a.org_id, t.s.pool_b.org_id} <= payees
    assert await pool.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs") == 0
    assert await balance_of(pool, f"receivable:agreement:{proposed.id}") == 0
    [attempt] = await tries(pool, t.s.loan.case_id)
    assert (attempt.outcome, attempt.amount_fen) == ("sold", PRICE)


async def test_a_pool_objection_stops_it_even_after_the_acquirer_accepted(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    t = await make_taker_scene(pool, clock, settings)
    proposed = await propose_to(pool, clock.now(), t, t.acquirer[0])
    clock.advance(days=1)
    await answer_as(pool, clock.now(), t.acquirer[1], proposed.id)
    clock.advance(days=5)
    objected = await object_as(pool, clock.now(), t.s.pool_b, proposed.id)
    assert objected.status == "objected" and objected.accepted_at is not None
    clock.advance(days=30)
    assert await agreement.sweep(pool, clock.now(), terms=lots.policy_for(settings)) == []
    assert await pool.fetchval("SELECT count(*) FROM sales") == 0
    assert await pool.fetchval("SELECT status FROM lots WHERE id = $1", t.lot_id) == "failed"
    [attempt] = await tries(pool, t.s.loan.case_id)
    assert (attempt.outcome, attempt.amount_fen) == ("objected", None)
    # Ended: the acquirer's answer now finds it so.
    with pytest.raises(Conflict) as ended:
        await answer_as(pool, clock.now(), t.acquirer[1], proposed.id, "decline")
    assert (ended.value.code, ended.value.field) == ("agreement_ended", "decision")


async def test_declined_or_not_accepted_in_time_it_ends_without_a_sale(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    t = await make_taker_scene(pool, clock, settings)
    terms = lots.policy_for(settings)
    first = await propose_to(pool, clock.now(), t, t.acquirer[0])
    declined = await answer_as(pool, clock.now(), t.acquirer[1], first.id, "decline")
    assert (declined.status, declined.ended_at) == ("declined", clock.now())
    told = await pool.fetch(
        "SELECT recipient_org_id FROM outbox WHERE event = 'agreed_disposal_declined'"
    )
    assert t.s.loan.bank_org in {r["recipient_org_id"] for r in told}
    # The bank proposes again; nobody answers; the window passes: it lapses.
    second = await propose_to(pool, clock.now(), t, t.acquirer[0])
    clock.advance(days=10)
    assert await agreement.sweep(pool, clock.now(), terms=terms) == []
    lapsed = await pool.fetchval("SELECT status FROM agreed_disposals WHERE id = $1", second.id)
    assert lapsed == "lapsed"
    assert await pool.fetchval("SELECT count(*) FROM sales") == 0
    assert [a.outcome for a in await tries(pool, t.s.loan.case_id)] == ["declined", "lapsed"]


async def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    t = await make_taker_scene(pool, clock, settings)
    buyer, _, _ = await make_org(pool, clock.now(), kind="buyer")
    pending, _, _ = await make_org(pool, clock.now(), kind="acquirer", status="pending")
    before = await counts(pool)
    for taker, code in (
        (buyer, "agreement_taker_not_acquirer"),
        (10**12, "agreement_taker_not_acquirer"),
        (pending, "agreement_taker_not_approved"),
    ):
        with pytest.raises(Invalid) as refused:
            await propose_to(pool, clock.now(), t, taker)
        assert (refused.value.code, refused.value.field) == (code, "taker_org_id")
    # The acquirer path keeps the bank's guards: the price floor.
    with pytest.raises(Invalid) as low:
        await propose_to(pool, clock.now(), t, t.acquirer[0], PRICE - 1)
    assert (low.value.code, low.value.field) == ("agreement_below_auction_start", "amount_fen")
    assert await counts(pool) == before

    proposed = await propose_to(pool, clock.now(), t, t.acquirer[0])
    _, other_user, _ = await make_org(pool, clock.now(), kind="acquirer")
    before = await counts(pool)
    with pytest.raises(NotFound) as stranger:
        await answer_as(pool, clock.now(), other_user, proposed.id)
    assert stranger.value.code == "no_such_agreed_disposal"
    clock.advance(days=10)
    with pytest.raises(Invalid) as late:
        await answer_as(pool, clock.now(), t.acquirer[1], proposed.id)
    assert (late.value.code, late.value.field) == ("agreement_acceptance_closed", "decision")
    assert await counts(pool) == before


async def test_the_acceptance_and_the_completing_sweep_at_once_give_one_outcome(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The acquirer's acceptance a second before the deadline and the sweep at the
    window's end, run together, again and again: accepted then sold, or lapsed and the
    acceptance refused — never a sale without an acceptance, nor an acceptance left
    dangling on a lapsed attempt."""
    t = await make_taker_scene(pool, clock, settings)
    terms = lots.policy_for(settings)
    outcomes = set()
    for _ in range(3):
        proposed = await propose_to(pool, clock.now(), t, t.acquirer[0])
        end = proposed.objection_until
        accepted, swept = await asyncio.gather(
            answer_as(pool, end - timedelta(seconds=1), t.acquirer[1], proposed.id),
            agreement.sweep(pool, end, terms=terms),
            return_exceptions=True,
        )
        row = await pool.fetchrow("SELECT * FROM agreed_disposals WHERE id = $1", proposed.id)
        sales = await pool.fetchval("SELECT count(*) FROM sales WHERE lot_id = $1", t.lot_id)
        if row["status"] == "completed":
            assert isinstance(accepted, agreement.Agreement) and swept == [proposed.id]
            assert row["accepted_at"] is not None and sales == 1
            outcomes.add("sold")
            break
        assert row["status"] == "lapsed" and row["accepted_at"] is None and sales == 0
        assert isinstance(accepted, Conflict) and accepted.code == "agreement_ended"
        outcomes.add("lapsed")
        clock.set(end + timedelta(minutes=1))
    assert outcomes
