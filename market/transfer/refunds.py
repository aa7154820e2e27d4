"""Every refund to a buyer, through one function (docs/rules.md §Transfer of title, §Money).

`refund_buyer` moves money the exchange received on a sale (the sale's receivable, in
credit once the sale is unwound) to what the exchange owes the buyer back
(`refund:org:{buyer}`, auctions/deposits.refund_account) — the account the exchange pays
refunds from — and makes it a payment instruction to the buyer, due within the payouts'
period (market/payments/instructions.py; docs/rules.md §Payments out). Idempotent by
`source`: the ledger's unique (source kind, source id) and the instruction's unique source.
"""

from __future__ import annotations

from auctions.deposits import refund_account, sale_receivable_account
from market import ledger
from market.commands import UnitOfWork
from market.db import Queries
from market.money import format_cny
from market.payments.instructions import Payee, owe
from market.payments.policy import POLICY

Q = Queries("transfer")


async def refund_buyer(
    uow: UnitOfWork, *, sale_id: int, buyer_org_id: int, amount_fen: int, source: str
) -> None:
    """Owe the buyer `amount_fen` back out of what it paid on `sale_id`; runs in the unit
    of work of the change that decided the refund (a replay of `source` posts nothing)."""
    if amount_fen <= 0:
        return
    lot_id = await uow.conn.fetchval(Q.sale_lot, sale_id)
    await uow.post(
        source_kind="sale_refund",
        source_id=source,
        legs=[
            ledger.debit(sale_receivable_account(sale_id, lot_id, buyer_org_id), amount_fen),
            ledger.credit(refund_account(buyer_org_id), amount_fen),
        ],
        memo=f"成交 {sale_id} 退还买受人 {format_cny(amount_fen)}",
    )
    await owe(
        uow,
        source=f"sale_refund:{source}",
        purpose="sale_refund",
        payee=Payee(kind="org", org_id=buyer_org_id),
        amount_fen=amount_fen,
        due_at=uow.at + POLICY.payout_within,
    )
