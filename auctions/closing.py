"""Closing on time, settlement, payment and default (issue 4, item 5; docs/bidding.md).

Close. A lot in bidding closes at its effective end (`lots.bidding_ends_at`, moved by
extensions). `close_lot` locks the lot row, re-checks status and end inside the lock — a
bid batch that committed meanwhile may have moved the end, and then nothing happens —
applies `rules.Close` at the effective end and, in the same transaction, hands the outcome
to the lot lifecycle, writes the sale, posts `sale_closed`, releases every losing deposit
and writes the outbox events. Every record of the close carries the effective end as its
instant, not the (later) moment a worker got round to it, so a worker that was down
closes late but records the truth. Two workers or a retry close once: the second one
waits for the lock and finds the lot no longer bidding.

Registrations still `awaiting` their deposit at the close have nothing to release (no
money came) and they stay as they are. Their money can never be frozen for a round that is
over: auctions/deposits.confirm_deposit releases a deposit confirmed after its round
closed in the same transaction (it takes the lot row FOR SHARE, so it never interleaves
with a close), and the writer refuses bids on a lot that is not bidding.

Settlement (docs/bidding.md "Money"): the winner owes price − deposit (+ the buyer's
premium when the terms charge one) within `Terms.payment_days` (default 10 days, issue 3)
of the close. Commission under the statutory brackets (market.lots.terms.fee_fen) is a
disposal cost the creditor side bears in the pools issue's waterfall, so it is recorded on
the sale but not charged to the buyer. The operator records the buyer's transfer against
the sale's payment reference; the winner's deposit is then applied to the price.

Default (悔拍, issue 4): unpaid by the deadline, the sale is void — the deposit is
forfeited into `forfeit:lot:{lot}`, `sale_closed` is reversed by `sale_voided`, the
defaulter is barred from every asset of the lot, and the lot goes back to the lifecycle
(`market.lots.services.default_sale`) to be relisted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec

from auctions import registration, rules, state
from auctions.deposits import (
    CLEARING,
    apply_deposit,
    forfeit_deposit,
    proceeds_account,
    release_deposit,
    sale_receivable_account,
)
from market import audit, ledger
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.lots import services as lots
from market.lots.terms import Terms, TermsPolicy, fee_fen
from market.money import format_cny
from market.pools import services as pools

Q = Queries("closing")
log = logging.getLogger("auctions.closing")

_REFERENCE_LENGTH = 10
_REFERENCE_ATTEMPTS = 5

PREMIUM = ledger.Account("income:buyer_premium", "income", "买方佣金收入 buyer's premium")


class SaleOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    lot_id: int
    round: int
    registration_id: int
    buyer_org_id: int
    price_fen: int
    fee_kind: Literal["commission", "buyer_premium"]
    fee_fen: int
    deposit_fen: int
    balance_due_fen: int
    due_at: datetime
    payment_reference: str
    status: Literal["awaiting_payment", "paid", "defaulted"]
    paid_at: datetime | None
    closed_at: datetime


class Bidder(msgspec.Struct, frozen=True, kw_only=True):
    """Who was behind a bidder code: revealed once the round is closed."""

    registration_id: int
    bidder_code: str
    buyer_org_id: int
    org_name: str
    preemptive_rank: int | None
    deposit_status: str  # after the close


class CloseResult(msgspec.Struct, frozen=True, kw_only=True):
    lot_id: int
    round: int
    status: Literal["sold", "failed"]
    closed_at: datetime  # the effective end
    winner: int | None  # registration id
    price_fen: int | None
    sale: SaleOut | None
    released: tuple[int, ...]  # registrations whose deposits this close released
    bidders: tuple[Bidder, ...]


class PaymentDue(msgspec.Struct, frozen=True, kw_only=True):
    sale_id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    buyer_name: str
    bidder_code: str
    payment_reference: str
    price_fen: int
    fee_kind: str
    fee_fen: int
    deposit_fen: int
    balance_due_fen: int
    due_at: datetime
    closed_at: datetime
    overdue: bool


def _sale_out(row: asyncpg.Record) -> SaleOut:
    return SaleOut(**{name: row[name] for name in SaleOut.__struct_fields__})


def _receivable(sale: asyncpg.Record) -> ledger.Account:
    return sale_receivable_account(sale["id"], sale["lot_id"], sale["buyer_org_id"])


def payment_reference() -> str:
    """`JK` + 10 characters: what the buyer writes on the transfer of the balance."""
    return "JK" + registration.draw(_REFERENCE_LENGTH)


async def _outbox(
    conn: Conn,
    at: datetime,
    event: str,
    dedupe_key: str,
    *,
    org_id: int | None,
    user_id: int | None,
    lot_id: int,
    payload: dict[str, Any],
) -> None:
    await conn.execute(Q.insert_outbox, event, org_id, user_id, lot_id, payload, dedupe_key, at)


def _sale_payload(sale: SaleOut) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(sale)
    data["sale_id"] = data.pop("id")
    return data


# --- close -------------------------------------------------------------------------------


async def close_lot(
    conn: Conn, at: datetime, policy: TermsPolicy, lot_id: int
) -> CloseResult | None:
    """Close one lot if it is bidding and its effective end is at or before `at`.

    Runs in the caller's transaction; returns None when there is nothing to close (not
    bidding any more, an extension moved the end past `at`, or no such lot).
    """
    if not conn.is_in_transaction():
        raise RuntimeError("close_lot runs inside the caller's transaction")
    loaded = await state.load_locked(conn, lot_id)
    if loaded is None:
        return None
    row, auction = loaded
    end: datetime | None = row["bidding_ends_at"]
    if row["status"] != "bidding" or end is None or end > at:
        return None
    result = rules.apply(auction, rules.Close(at=end)).result
    assert result is not None
    sold = result.status == "sold"
    await lots.close_round(conn, end, policy, lot_id, sold=sold)
    registrations = await conn.fetch(Q.round_registrations, lot_id, row["round"])
    sale: SaleOut | None = None
    if sold:
        assert result.winner is not None and result.price_fen is not None
        winner = next((r for r in registrations if r["id"] == result.winner), None)
        if winner is None:
            raise RuntimeError(f"lot {lot_id}: the leader {result.winner} is not registered")
        sale = await _record_sale(conn, end, row, winner, result.price_fen)
    released: list[int] = []
    for reg in registrations:
        if reg["deposit_status"] != "confirmed" or (
            sale is not None and reg["id"] == sale.registration_id
        ):
            continue
        # Losing deposits go back at once (issue 4); the winner's waits to be applied.
        await release_deposit(conn, end, reg["id"])
        released.append(reg["id"])
        if sold:
            await _outbox(
                conn,
                end,
                "lost",
                f"lost:{lot_id}:{row['round']}:{reg['id']}",
                org_id=reg["buyer_org_id"],
                user_id=reg["user_id"],
                lot_id=lot_id,
                payload={
                    "lot_id": lot_id,
                    "round": row["round"],
                    "registration_id": reg["id"],
                    "price_fen": result.price_fen,
                },
            )
    after = {
        r["id"]: r["deposit_status"]
        for r in await conn.fetch(Q.round_registrations, lot_id, row["round"])
    }
    bidders = tuple(
        Bidder(
            registration_id=r["id"],
            bidder_code=r["bidder_code"],
            buyer_org_id=r["buyer_org_id"],
            org_name=r["org_name"],
            preemptive_rank=r["preemptive_rank"],
            deposit_status=after[r["id"]],
        )
        for r in registrations
    )
    return CloseResult(
        lot_id=lot_id,
        round=row["round"],
        status=result.status,
        closed_at=end,
        winner=result.winner,
        price_fen=result.price_fen,
        sale=sale,
        released=tuple(released),
        bidders=bidders,
    )


async def _record_sale(
    conn: Conn, end: datetime, lot: Any, winner: asyncpg.Record, price: int
) -> SaleOut:
    terms = msgspec.convert(lot["terms"], Terms)
    fee = fee_fen(terms.fee, price)
    premium = fee if terms.fee.kind == "buyer_premium" else 0
    # A bid needs a confirmed deposit; should one ever be missing, nothing is credited.
    deposit = winner["deposit_fen"] if winner["deposit_status"] == "confirmed" else 0
    balance = price + premium - deposit
    due = end + timedelta(days=terms.payment_days)  # issue 3: 10 days by default
    row = None
    for _ in range(_REFERENCE_ATTEMPTS):
        row = await conn.fetchrow(
            Q.insert_sale,
            lot["id"],
            lot["round"],
            winner["id"],
            winner["buyer_org_id"],
            price,
            terms.fee.kind,
            fee,
            deposit,
            balance,
            due,
            payment_reference(),
            end,
        )
        if row is not None:
            break
    if row is None:
        raise RuntimeError(f"lot {lot['id']} round {lot['round']}: the sale could not be saved")
    sale = _sale_out(row)
    await ledger.post(
        conn,
        source_kind="sale_closed",
        source_id=sale.id,
        at=end,
        legs=[
            ledger.debit(_receivable(row), price + premium),
            ledger.credit(proceeds_account(sale.lot_id), price),
            ledger.credit(PREMIUM, premium),
        ],
        memo=f"lot {sale.lot_id} round {sale.round} sold for {format_cny(price)}",
    )
    payload = _sale_payload(sale)
    for event in ("won", "payment_due"):
        await _outbox(
            conn,
            end,
            event,
            f"{event}:{sale.id}",
            org_id=sale.buyer_org_id,
            user_id=winner["user_id"],
            lot_id=sale.lot_id,
            payload=payload,
        )
    await audit.append(
        conn,
        at=end,
        chain_org_id=lot["bank_org_id"],
        actor_user_id=None,
        actor_org_id=None,
        action="sale.close",
        object_kind="sale",
        object_id=sale.id,
        after=msgspec.to_builtins(sale),
    )
    return sale


async def close_due(
    pool: asyncpg.Pool, at: datetime, policy: TermsPolicy, batch: int = 100
) -> list[int]:
    """Close every lot whose effective end is at or before `at`; returns the closed ids.

    Catches up after downtime: everything due is closed, each at its own effective end,
    one lot per transaction so a lot that cannot close (logged) holds up no other.
    """

    async def close(conn: Conn, lot_id: int) -> object:
        return await close_lot(conn, at, policy, lot_id)

    return await _sweep(pool, Q.due_to_close, at, batch, close, "lot %s could not be closed")


async def lots_ending_before(
    pool: asyncpg.Pool, before: datetime, limit: int = 1000
) -> list[tuple[int, int, datetime]]:
    """(lot, round, effective end) of the lots bidding that end before `before`."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.ending_before, before, limit)
    return [(r["id"], r["round"], r["bidding_ends_at"]) for r in rows]


# --- payment -----------------------------------------------------------------------------


async def record_payment(
    pool: asyncpg.Pool,
    at: datetime,
    *,
    actor_user_id: int,
    actor_org_id: int,
    payment_reference: str,
    amount_fen: int,
) -> SaleOut:
    """The operator saw the buyer's transfer of the balance arrive under this reference.

    The amount must be exactly the balance due (else 422, nothing written). Recorded once:
    the same payment again answers the paid sale and writes nothing. A transfer that
    arrives after the deadline is still accepted until the default sweep has voided the
    sale; after that it is refused (409) and the operator returns the money.
    """
    reference = payment_reference.strip().upper()
    async with pool.acquire() as conn, conn.transaction():
        sale = await conn.fetchrow(Q.sale_by_reference_locked, reference)
        if sale is None:
            raise NotFound("no sale has this payment reference", field="payment_reference")
        if sale["status"] == "paid":
            if amount_fen == sale["balance_due_fen"]:
                return _sale_out(sale)
            raise Conflict(
                f"this sale was already paid ({format_cny(sale['balance_due_fen'])})",
                field="amount_fen",
                code="already_paid",
            )
        if sale["status"] == "defaulted":
            raise Conflict(
                "the sale was voided: the buyer did not pay by the deadline (悔拍)",
                field="payment_reference",
                code="sale_defaulted",
            )
        if amount_fen != sale["balance_due_fen"]:
            raise Invalid(
                f"the balance due is {format_cny(sale['balance_due_fen'])}, not "
                f"{format_cny(amount_fen)}",
                field="amount_fen",
                code="amount_mismatch",
            )
        paid = returned(await conn.fetchrow(Q.mark_paid, sale["id"], at))
        if sale["balance_due_fen"] > 0:
            await ledger.post(
                conn,
                source_kind="sale_payment",
                source_id=sale["id"],
                at=at,
                legs=[
                    ledger.debit(CLEARING, sale["balance_due_fen"]),
                    ledger.credit(_receivable(sale), sale["balance_due_fen"]),
                ],
                memo=f"payment {reference}",
            )
        if sale["deposit_fen"] > 0:
            await apply_deposit(conn, at, sale["registration_id"], sale["id"])
        # The price is money back on the case: route it through the waterfall (issue 6).
        await pools.receipt_for_sale(conn, at=at, sale_id=sale["id"], forfeit=False)
        out = _sale_out(paid)
        await audit.append(
            conn,
            at=at,
            chain_org_id=sale["bank_org_id"],
            actor_user_id=actor_user_id,
            actor_org_id=actor_org_id,
            action="sale.pay",
            object_kind="sale",
            object_id=sale["id"],
            before={"status": sale["status"]},
            after={"status": out.status, "amount_fen": amount_fen, "reference": reference},
        )
        return out


async def payments_due(pool: asyncpg.Pool, at: datetime, limit: int = 500) -> list[PaymentDue]:
    """Sales awaiting payment, the earliest deadline first; `overdue` once due_at ≤ at."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.payments_due, limit)
    return [
        PaymentDue(
            sale_id=r["id"],
            lot_id=r["lot_id"],
            lot_reference=r["lot_reference"],
            lot_title=r["lot_title"],
            round=r["round"],
            buyer_name=r["buyer_name"],
            bidder_code=r["bidder_code"],
            payment_reference=r["payment_reference"],
            price_fen=r["price_fen"],
            fee_kind=r["fee_kind"],
            fee_fen=r["fee_fen"],
            deposit_fen=r["deposit_fen"],
            balance_due_fen=r["balance_due_fen"],
            due_at=r["due_at"],
            closed_at=r["closed_at"],
            overdue=r["due_at"] <= at,
        )
        for r in rows
    ]


# --- default (悔拍) ------------------------------------------------------------------------


async def default_sale(
    conn: Conn, at: datetime, policy: TermsPolicy, sale_id: int
) -> SaleOut | None:
    """Void one sale left unpaid past its deadline; None when it is not (or no longer) due.

    Runs in the caller's transaction. The sale row is locked first, so a payment recorded
    at the same moment either comes first (then nothing happens here) or is refused.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("default_sale runs inside the caller's transaction")
    sale = await conn.fetchrow(Q.sale_locked, sale_id)
    if sale is None or sale["status"] != "awaiting_payment" or sale["due_at"] > at:
        return None
    out = _sale_out(returned(await conn.fetchrow(Q.mark_defaulted, sale_id)))
    if sale["deposit_fen"] > 0:
        await forfeit_deposit(conn, at, sale["registration_id"], sale["lot_id"])
        await pools.receipt_for_sale(conn, at=at, sale_id=sale_id, forfeit=True)
    closed_entry = await conn.fetchval(ledger.Q.existing_entry, "sale_closed", str(sale_id))
    if closed_entry is None:
        raise RuntimeError(f"sale {sale_id} has no sale_closed posting to reverse")
    await ledger.reverse(
        conn,
        entry_id=closed_entry,
        source_kind="sale_voided",
        source_id=sale_id,
        at=at,
        memo=f"sale {sale_id} voided: unpaid by {sale['due_at'].isoformat()}",
    )
    await conn.execute(Q.bar_buyer, sale["buyer_org_id"], sale_id, at, sale["lot_id"])
    payload = _sale_payload(out)
    for event in ("payment_overdue", "defaulted"):
        await _outbox(
            conn,
            at,
            event,
            f"{event}:{sale_id}",
            org_id=sale["buyer_org_id"],
            user_id=sale["user_id"],
            lot_id=sale["lot_id"],
            payload=payload,
        )
    await lots.default_sale(conn, at, policy, sale["lot_id"])
    await audit.append(
        conn,
        at=at,
        chain_org_id=sale["bank_org_id"],
        actor_user_id=None,
        actor_org_id=None,
        action="sale.default",
        object_kind="sale",
        object_id=sale_id,
        before={"status": sale["status"]},
        after={"status": out.status, "due_at": sale["due_at"].isoformat()},
    )
    return out


async def default_overdue(
    pool: asyncpg.Pool, at: datetime, policy: TermsPolicy, batch: int = 100
) -> list[int]:
    """Void every sale unpaid at its deadline (due_at ≤ at); returns the sale ids."""

    async def void(conn: Conn, sale_id: int) -> object:
        return await default_sale(conn, at, policy, sale_id)

    return await _sweep(pool, Q.overdue_sales, at, batch, void, "sale %s could not be defaulted")


async def _sweep(
    pool: asyncpg.Pool,
    query: str,
    at: datetime,
    batch: int,
    act: Callable[[Conn, int], Awaitable[object]],
    failure: str,
) -> list[int]:
    """Run `act` on every row `query` finds due, one transaction each, so a row that fails
    (logged, skipped until the next sweep) holds up no other; returns the ids acted on."""
    done: list[int] = []
    broken: list[int] = []
    while True:
        async with pool.acquire() as conn:
            ids = [r["id"] for r in await conn.fetch(query, at, broken, batch)]
        for row_id in ids:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    if await act(conn, row_id) is not None:
                        done.append(row_id)
            except Exception:
                log.exception(failure + "; the next sweep retries", row_id)
                broken.append(row_id)
        if len(ids) < batch:
            return done
