"""Unwinding a sale whose title did not move (docs/rules.md §Transfer of title).

Why: the operator records a failed step and who caused it (`record_failure`), or a
party's deadline passed with its notice missing (the sweep, market/transfer/jobs.py:
the bank's release → cause `bank`, the buyer's recordal → cause `buyer`).

The money, in one unit of work with the sale's status:
* `sale_unwound`: the sale's closing entry is undone — the lot's proceeds (and, unless the
  buyer caused the failure, the buyer's premium) go back against the sale's receivable,
  which then holds in credit what the buyer paid (balance and deposit);
* the buyer caused it: its deposit is forfeited (`sale_deposit_forfeited`, receivable →
  `forfeit:lot:{lot}`) and routed through the waterfall as a forfeit receipt, as a 悔拍's
  is (auctions/closing.void_unpaid_sale); the premium stays earned; the buyer is barred
  from the relist of the lot's assets;
* the rest is refunded (market/transfer/refunds.refund_buyer), which empties the receivable.
Nothing stays in the lot's proceeds, the sale's receivable or the forfeit account; every
fen of the clearing account is owed to the buyer, the waterfall's payees or the exchange.

The lot goes back to the lifecycle (market.lots.services.unwind_sale): the round failed,
so the bank relists it (round 3: it returns to the bank).

Concurrency: the caller holds the sale and transfer rows' locks (market/transfer/escrow.py
lock order); the transfer's status changes only from `in_escrow` (`end_transfer`), and
every ledger entry is keyed by the sale, so an unwind happens once.
"""

from __future__ import annotations

from typing import Final

import asyncpg

from auctions.closing import PREMIUM
from auctions.closing import Q as CLOSING
from auctions.deposits import forfeit_account, proceeds_account, sale_receivable_account
from market import ledger
from market.commands import UnitOfWork
from market.db import Queries, returned
from market.invoices import requests as invoices
from market.lots import services as lots
from market.lots.terms import TermsPolicy
from market.money import format_cny
from market.pools import services as pools
from market.transfer.escrow import emit, event_payload
from market.transfer.models import Cause
from market.transfer.refunds import refund_buyer

Q = Queries("transfer")

BUYER: Final = "buyer"


async def unwind(
    uow: UnitOfWork,
    policy: TermsPolicy,
    sale: asyncpg.Record,
    *,
    cause: Cause,
    note: str,
) -> asyncpg.Record:
    """Unwind the paid sale `sale` (locked by the caller, its transfer in escrow and
    locked too); returns the ended transfer row."""
    conn, at, sale_id = uow.conn, uow.at, sale["id"]
    at_fault = cause == BUYER
    ended = returned(
        await conn.fetchrow(
            Q.end_transfer, sale_id, "unwound", at, uow.actor.user_id, cause, note, at_fault
        )
    )
    returned(await conn.fetchrow(Q.set_sale_status, sale_id, "unwound"))
    price, deposit = sale["price_fen"], sale["deposit_fen"]
    premium = sale["fee_fen"] if sale["fee_kind"] == "buyer_premium" else 0
    premium_back = 0 if at_fault else premium
    receivable = sale_receivable_account(sale_id, sale["lot_id"], sale["buyer_org_id"])
    await uow.post(
        source_kind="sale_unwound",
        source_id=sale_id,
        legs=[
            ledger.debit(proceeds_account(sale["lot_id"]), price),
            ledger.debit(PREMIUM, premium_back),
            ledger.credit(receivable, price + premium_back),
        ],
        memo=f"成交 {sale_id} 解除：权利未能转移（{cause}）",
    )
    forfeited = deposit if at_fault else 0
    if forfeited:
        await uow.post(
            source_kind="sale_deposit_forfeited",
            source_id=sale_id,
            legs=[
                ledger.debit(receivable, forfeited),
                ledger.credit(forfeit_account(sale["lot_id"]), forfeited),
            ],
            memo=f"成交 {sale_id} 解除，买受人过错，保证金没收 {format_cny(forfeited)}",
        )
        await pools.route_sale_receipt(uow, pools.SaleReceipt(sale_id=sale_id, forfeit=True))
    refund = price + premium_back - forfeited
    await refund_buyer(
        uow,
        sale_id=sale_id,
        buyer_org_id=sale["buyer_org_id"],
        amount_fen=refund,
        source=f"sale_unwound:{sale_id}",
    )
    if not (at_fault and premium):
        # The fee is not earned: a commission comes out of proceeds never routed, a premium
        # goes back with the price; its invoice is withdrawn (docs/rules.md §Invoices). A
        # buyer at fault keeps no claim on its premium, whose invoice stands.
        await invoices.cancel_for_sale(uow, sale_id, f"sale_unwound:{cause}")
    if at_fault:
        await conn.execute(CLOSING.bar_buyer, sale["buyer_org_id"], sale_id, at, sale["lot_id"])
    await lots.unwind_sale(uow, at, policy, sale["lot_id"])
    payload = event_payload(
        sale,
        cause=cause,
        buyer_at_fault=at_fault,
        refund_fen=refund,
        forfeited_fen=forfeited,
    )
    for org_id, user_id in ((sale["buyer_org_id"], sale["user_id"]), (sale["bank_org_id"], None)):
        await emit(
            uow,
            "sale_unwound",
            f"sale_unwound:{sale_id}:{org_id}",
            org_id=org_id,
            user_id=user_id,
            lot_id=sale["lot_id"],
            payload=payload,
        )
    uow.audit(
        "sale.unwind",
        "sale",
        sale_id,
        chain_org_id=sale["bank_org_id"],
        before={"status": "paid"},
        after={
            "status": "unwound",
            "cause": cause,
            "note": note,
            "buyer_at_fault": at_fault,
            "refund_fen": refund,
            "forfeited_fen": forfeited,
        },
    )
    return ended
