"""Closing on time, settlement, payment and default (docs/rules.md §After the close;
docs/bidding.md).

Close. A lot in bidding closes at its effective end (`lots.bidding_ends_at`, moved by
extensions). The command `close_lot` locks the lot row, re-checks status and end inside
the lock — a bid batch that committed meanwhile may have moved the end, and then nothing
happens — applies `rules.Close` at the effective end and, in the same unit of work, hands
the outcome to the lot lifecycle, writes the sale, posts `sale_closed`, releases every
losing deposit and writes the outbox events. Every record of the close carries the
effective end as its instant, not the (later) moment a worker got round to it, so a worker
that was down closes late but records the truth: `close_when_due` runs the command at the
end itself. Two workers or a retry close once: the second one waits for the lock and finds
the lot no longer bidding.

Registrations still `awaiting` their deposit at the close have nothing to release (no
money came) and they stay as they are. Their money can never be frozen for a round that is
over: auctions/deposits.confirm_deposit releases a deposit confirmed after its round
closed in the same transaction (it takes the lot row FOR SHARE, so it never interleaves
with a close), and the writer refuses bids on a lot that is not bidding.

Settlement (§Money): the winner owes price − deposit (+ the buyer's premium when the terms
charge one) within `Terms.payment_days` (10 days unless the terms say otherwise, §Lot
terms) of the close. Commission under the statutory brackets (market.lots.terms.fee_fen)
is a disposal cost the creditor side bears in the waterfall (§The waterfall), so it is
recorded on the sale but not charged to the buyer. The operator records the buyer's
transfer against the sale's payment reference (`record_payment`); the winner's deposit is
then applied to the price, and the sale is `paid`: held in escrow until the title has
moved (market/transfer, docs/rules.md §Transfer of title).

Default (悔拍, §After the close): unpaid by the deadline, the sale is void
(`void_unpaid_sale`) — the deposit is forfeited into `forfeit:lot:{lot}`, `sale_closed` is
reversed by `sale_voided`, the defaulter is barred from every asset of the lot, and the lot
goes back to the lifecycle (`market.lots.services.default_sale`) to be relisted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from msgspec import Meta

from auctions import registration, rules, state
from auctions.deposits import (
    CLEARING,
    apply_deposit,
    forfeit_deposit,
    proceeds_account,
    release_deposit,
    sale_receivable_account,
)
from market import ledger
from market.accounts.permissions import OPERATE
from market.clock import FrozenClock
from market.commands import SYSTEM, Context, UnitOfWork, command, run
from market.db import Queries, returned
from market.documents.issue import issue_certificate, issue_confirmation
from market.errors import Conflict, Invalid, NotFound
from market.exchange_account.proof import StatementProof
from market.invoices import requests as invoices
from market.licensing import awaiting
from market.lots import services as lots
from market.lots.terms import Terms, TermsPolicy, fee_fen
from market.money import MAX_FEN, format_cny
from market.pools import services as pools
from market.transfer.escrow import open_transfer

Q = Queries("closing")
_BEIJING = ZoneInfo("Asia/Shanghai")  # the books' dates are Beijing time
log = logging.getLogger("auctions.closing")

REFERENCE_LENGTH = 10  # after JK: what the buyer writes on the transfer
_REFERENCE_ATTEMPTS = 5

PREMIUM = ledger.Account("income:buyer_premium", "income", "买方佣金收入")


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
    status: Literal["awaiting_payment", "paid", "completed", "unwound", "defaulted"]
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
    # deciding: licence offers stand, the bank decides (docs/rules.md §Licence offers and
    # decision); winner and price are then the top bid's.
    status: Literal["sold", "failed", "deciding"]
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
    return "JK" + registration.draw(REFERENCE_LENGTH)


async def _outbox(
    uow: UnitOfWork,
    at: datetime,
    event: str,
    dedupe_key: str,
    *,
    org_id: int | None,
    user_id: int | None,
    lot_id: int,
    payload: dict[str, Any],
) -> None:
    await uow.emit(Q.insert_outbox, event, org_id, user_id, lot_id, payload, dedupe_key, at)


def _sale_payload(sale: SaleOut) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(sale)
    data["sale_id"] = data.pop("id")
    return data


# --- close -------------------------------------------------------------------------------


class CloseLot(msgspec.Struct, frozen=True, kw_only=True):
    lot_id: int
    policy: TermsPolicy  # the exchange's terms policy (market.lots.services.policy_for)


@command(None)
async def close_lot(uow: UnitOfWork, data: CloseLot) -> CloseResult | None:
    """Close one lot if it is bidding and its effective end is at or before `uow.at`.

    Returns None when there is nothing to close (not bidding any more, an extension moved
    the end past `uow.at`, or no such lot). The lot row is locked first (FOR UPDATE), so of
    concurrent closes one closes and the others find it closed; a bid batch that committed
    first may have moved the end. The close is recorded at the effective end; the exchange
    runs it at that instant (`close_when_due`), so its audit row is there too.
    """
    conn, lot_id = uow.conn, data.lot_id
    loaded = await state.load_locked(conn, lot_id)
    if loaded is None:
        return None
    row, auction = loaded
    end: datetime | None = row["bidding_ends_at"]
    if row["status"] != "bidding" or end is None or end > uow.at:
        return None
    result = rules.apply(auction, rules.Close(at=end)).result
    assert result is not None
    sold = result.status == "sold"
    lot_terms = msgspec.convert(row["terms"], Terms)
    offers = (
        await awaiting.standing_offers(conn, lot_id, row["round"])
        if lot_terms.offers.takes_licences
        else []
    )
    keep: set[int] = set()
    if offers:
        # Licence offers stand: no sale yet, the bank decides (market/licensing/awaiting.py).
        keep = await awaiting.hand_over_at_close(
            uow, end, data.policy, row, lot_terms, result.winner, result.price_fen, offers
        )
    else:
        await lots.close_round(uow, end, data.policy, lot_id, sold=sold)
    registrations = await conn.fetch(Q.round_registrations, lot_id, row["round"])
    sale: SaleOut | None = None
    if sold and not offers:
        assert result.winner is not None and result.price_fen is not None
        winner = next((r for r in registrations if r["id"] == result.winner), None)
        if winner is None:
            raise RuntimeError(f"lot {lot_id}: the leader {result.winner} is not registered")
        sale = await _record_sale(uow, end, row, winner, result.price_fen)
    released: list[int] = []
    for reg in registrations:
        if (
            reg["deposit_status"] != "confirmed"
            or (sale is not None and reg["id"] == sale.registration_id)
            or reg["id"] in keep
        ):
            continue
        # Losing deposits go back at once (§After the close); the winner's waits to be
        # applied to the price.
        await release_deposit(uow, end, reg["id"])
        released.append(reg["id"])
        if sold:
            await _outbox(
                uow,
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
        status="deciding" if offers else result.status,
        closed_at=end,
        winner=result.winner,
        price_fen=result.price_fen,
        sale=sale,
        released=tuple(released),
        bidders=bidders,
    )


async def _record_sale(
    uow: UnitOfWork, end: datetime, lot: Any, winner: asyncpg.Record, price: int
) -> SaleOut:
    conn = uow.conn
    terms = msgspec.convert(lot["terms"], Terms)
    fee = fee_fen(terms.fee, price)
    premium = fee if terms.fee.kind == "buyer_premium" else 0
    # A bid needs a confirmed deposit; should one ever be missing, nothing is credited.
    deposit = winner["deposit_fen"] if winner["deposit_status"] == "confirmed" else 0
    balance = price + premium - deposit
    due = end + timedelta(days=terms.payment_days)  # §Lot terms: 10 days by default
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
        memo=f"拍品 {sale.lot_id} 第 {sale.round} 轮成交，成交价 {format_cny(price)}",
    )
    payload = _sale_payload(sale)
    for event in ("won", "payment_due"):
        await _outbox(
            uow,
            end,
            event,
            f"{event}:{sale.id}",
            org_id=sale.buyer_org_id,
            user_id=winner["user_id"],
            lot_id=sale.lot_id,
            payload=payload,
        )
    uow.audit(
        "sale.close",
        "sale",
        sale.id,
        chain_org_id=lot["bank_org_id"],
        after=msgspec.to_builtins(sale),
    )
    await issue_confirmation(uow, sale.id)
    return sale


async def close_when_due(
    pool: asyncpg.Pool, until: datetime, policy: TermsPolicy, lot_id: int
) -> CloseResult | None:
    """Close the lot if it is bidding and its effective end is at or before `until`; None
    if there is nothing to close.

    The close runs as the exchange, at the effective end itself: however late a worker
    gets here, every record of the close is at that instant. An extension that commits
    between reading the end and locking the lot makes the command find nothing; the end is
    then read again.
    """
    while True:
        async with pool.acquire() as conn:
            end: datetime | None = await conn.fetchval(Q.bidding_end, lot_id)
        if end is None or end > until:
            return None
        ctx = Context(pool=pool, clock=FrozenClock(end))
        result = await run(close_lot, CloseLot(lot_id=lot_id, policy=policy), ctx=ctx, actor=SYSTEM)
        if result is not None:
            return result


async def close_due(
    pool: asyncpg.Pool, at: datetime, policy: TermsPolicy, batch: int = 100
) -> list[int]:
    """Close every lot whose effective end is at or before `at`; returns the closed ids.

    Catches up after downtime: everything due is closed, each at its own effective end,
    one lot per unit of work so a lot that cannot close (logged) holds up no other.
    """

    async def close(lot_id: int) -> object:
        return await close_when_due(pool, at, policy, lot_id)

    return await _sweep(pool, Q.due_to_close, at, batch, close, "lot %s could not be closed")


async def lots_ending_before(
    pool: asyncpg.Pool, before: datetime, limit: int = 1000
) -> list[tuple[int, int, datetime]]:
    """(lot, round, effective end) of the lots bidding that end before `before`."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.ending_before, before, limit)
    return [(r["id"], r["round"], r["bidding_ends_at"]) for r in rows]


# --- payment -----------------------------------------------------------------------------


class RecordPayment(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The transfer the operator saw arrive: its payment reference and amount in fen."""

    payment_reference: Annotated[str, Meta(min_length=1, max_length=40)]
    amount_fen: Annotated[int, Meta(gt=0, le=MAX_FEN)]


@command(OPERATE)
async def record_payment(uow: UnitOfWork, data: RecordPayment) -> SaleOut:
    """The operator saw the buyer's transfer of the balance arrive under this reference.

    The amount must be exactly the balance due (else 422, nothing written). Recorded once:
    the sale row is locked (FOR UPDATE) before its status is read, so of concurrent
    recordings one marks it paid and the others find it paid and answer it, writing
    nothing. A transfer that arrives after the deadline is still accepted until the
    default sweep has voided the sale; after that it is refused (409) and the operator
    returns the money.
    """
    return await pay_sale(uow, data)


async def pay_sale(
    uow: UnitOfWork, data: RecordPayment, proof: StatementProof | None = None
) -> SaleOut:
    """`record_payment`'s work, also for a line of the exchange's statement (`proof`, named
    in the audit row; the exchange's act when the import matched it)."""
    conn, at = uow.conn, uow.at
    reference = data.payment_reference.strip().upper()
    sale = await conn.fetchrow(Q.sale_by_reference_locked, reference)
    if sale is None:
        raise NotFound("no_such_payment_reference", field="payment_reference", reference=reference)
    if sale["status"] in ("paid", "completed", "unwound"):
        if data.amount_fen == sale["balance_due_fen"]:
            return _sale_out(sale)
        raise Conflict(
            "sale_already_paid",
            field="amount_fen",
            reference=reference,
            balance_due_fen=sale["balance_due_fen"],
        )
    if sale["status"] == "defaulted":
        raise Conflict("sale_defaulted", field="payment_reference", reference=reference)
    if data.amount_fen != sale["balance_due_fen"]:
        raise Invalid(
            "balance_amount_mismatch",
            field="amount_fen",
            reference=reference,
            balance_due_fen=sale["balance_due_fen"],
            received_fen=data.amount_fen,
        )
    paid = returned(await conn.fetchrow(Q.mark_paid, sale["id"], at))
    if sale["balance_due_fen"] > 0:
        await uow.post(
            source_kind="sale_payment",
            source_id=sale["id"],
            legs=[
                ledger.debit(CLEARING, sale["balance_due_fen"]),
                ledger.credit(_receivable(sale), sale["balance_due_fen"]),
            ],
            memo=f"成交价款到账 {reference}",
        )
    if sale["deposit_fen"] > 0:
        await apply_deposit(uow, at, sale["registration_id"], sale["id"])
    # The price is held in escrow until the title has moved (docs/rules.md §Transfer of
    # title): market/transfer routes it through the waterfall when the transfer completes.
    await open_transfer(uow, paid)
    await issue_certificate(uow, sale["id"])
    await invoices.request_for_sale(uow, sale["id"])  # the fee is earned (§Invoices)
    out = _sale_out(paid)
    uow.audit(
        "sale.pay",
        "sale",
        sale["id"],
        chain_org_id=sale["bank_org_id"],
        before={"status": sale["status"]},
        after={
            "status": out.status,
            "amount_fen": data.amount_fen,
            "reference": reference,
            **(proof.audited() if proof is not None else {}),
        },
        by=SYSTEM if proof is not None and not proof.by_hand else None,
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


class VoidSale(msgspec.Struct, frozen=True, kw_only=True):
    sale_id: int
    policy: TermsPolicy  # the exchange's terms policy (market.lots.services.policy_for)


@command(None)
async def void_unpaid_sale(uow: UnitOfWork, data: VoidSale) -> SaleOut | None:
    """Void one sale left unpaid past its deadline (悔拍); None when it is not (or no longer)
    due.

    The sale row is locked first (FOR UPDATE), so a payment recorded at the same moment
    either comes first (then nothing happens here) or is refused.
    """
    conn, at, sale_id = uow.conn, uow.at, data.sale_id
    sale = await conn.fetchrow(Q.sale_locked, sale_id)
    if sale is None or sale["status"] != "awaiting_payment" or sale["due_at"] > at:
        return None
    out = _sale_out(returned(await conn.fetchrow(Q.mark_defaulted, sale_id)))
    if sale["deposit_fen"] > 0:
        await forfeit_deposit(uow, at, sale["registration_id"], sale["lot_id"])
        await pools.route_sale_receipt(uow, pools.SaleReceipt(sale_id=sale_id, forfeit=True))
    closed_entry = await conn.fetchval(ledger.Q.existing_entry, "sale_closed", str(sale_id))
    if closed_entry is None:
        raise RuntimeError(f"sale {sale_id} has no sale_closed posting to reverse")
    due = sale["due_at"].astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M")
    await ledger.reverse(
        conn,
        entry_id=closed_entry,
        source_kind="sale_voided",
        source_id=sale_id,
        at=at,
        memo=f"成交 {sale_id} 作废：未于 {due} 前付清价款（悔拍）",
    )
    await conn.execute(Q.bar_buyer, sale["buyer_org_id"], sale_id, at, sale["lot_id"])
    payload = _sale_payload(out)
    for event in ("payment_overdue", "defaulted"):
        await _outbox(
            uow,
            at,
            event,
            f"{event}:{sale_id}",
            org_id=sale["buyer_org_id"],
            user_id=sale["user_id"],
            lot_id=sale["lot_id"],
            payload=payload,
        )
    await lots.default_sale(uow, at, data.policy, sale["lot_id"])
    uow.audit(
        "sale.default",
        "sale",
        sale_id,
        chain_org_id=sale["bank_org_id"],
        before={"status": sale["status"]},
        after={"status": out.status, "due_at": sale["due_at"].isoformat()},
    )
    return out


async def default_overdue(
    pool: asyncpg.Pool, at: datetime, policy: TermsPolicy, batch: int = 100
) -> list[int]:
    """Void every sale unpaid at its deadline (due_at ≤ at), as the exchange at `at`;
    returns the sale ids."""
    ctx = Context(pool=pool, clock=FrozenClock(at))

    async def void(sale_id: int) -> object:
        data = VoidSale(sale_id=sale_id, policy=policy)
        return await run(void_unpaid_sale, data, ctx=ctx, actor=SYSTEM)

    return await _sweep(pool, Q.overdue_sales, at, batch, void, "sale %s could not be defaulted")


async def _sweep(
    pool: asyncpg.Pool,
    query: str,
    at: datetime,
    batch: int,
    act: Callable[[int], Awaitable[object]],
    failure: str,
) -> list[int]:
    """Run `act` (a command in a unit of work of its own) on every row `query` finds due,
    so a row that fails (logged, skipped until the next sweep) holds up no other; returns
    the ids acted on."""
    done: list[int] = []
    broken: list[int] = []
    while True:
        async with pool.acquire() as conn:
            ids = [r["id"] for r in await conn.fetch(query, at, broken, batch)]
        for row_id in ids:
            try:
                if await act(row_id) is not None:
                    done.append(row_id)
            except Exception:
                log.exception(failure + "; the next sweep retries", row_id)
                broken.append(row_id)
        if len(ids) < batch:
            return done
