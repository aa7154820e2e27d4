"""Payment instructions: every amount the exchange owes out, once each (docs/rules.md
§Payments out).

    pending ──export──▶ in_file ──outgoing statement line──▶ paid
       └──────────────── cancelled (with a reason) ◀──────────┘ (never once paid)

`owe(...)` is how any part of the exchange records that it owes money: a released deposit
(auctions/deposits.py), a refund of a sale (market/transfer/refunds.py), each payout of the
waterfall (market/pools/services.py route_receipt). It runs inside the caller's unit of
work, so the instruction exists iff the change that caused it committed.

Idempotency and concurrency: an instruction is keyed by its `source` (`UNIQUE (source)`);
a second `owe` of one source — a replay, or a concurrent run whose insert waited for the
first's commit — inserts nothing and returns the first instruction's id. Its `reference`
(what the exchange writes on the transfer, `UNIQUE`) is drawn afresh on the rare clash, or
given by the caller (a payout's own transfer reference, which the payee's statement
matches). The amount of one source never changes: owing another amount for a used source
is a Conflict.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import msgspec

from auctions.registration import draw
from market.commands import UnitOfWork
from market.db import Queries, returned
from market.errors import Conflict

Q = Queries("payments")


def payments_queries() -> Queries:
    """The named queries of payments out (sql/queries/payments.sql), loaded once."""
    return Q


Purpose = Literal["deposit_refund", "sale_refund", "payout"]
PayeeKind = Literal["org", "pool", "pledgor", "party"]
Status = Literal["pending", "in_file", "paid", "cancelled"]
REFUNDS: Final[tuple[Purpose, ...]] = ("deposit_refund", "sale_refund")
REFERENCE_PREFIX: Final = "TK"  # 退款: a refund's transfer reference (a payout's is HK…)
REFERENCE_BODY: Final = 10
_DRAWS: Final = 8


class Payee(msgspec.Struct, frozen=True, kw_only=True):
    """Whom an instruction pays: an organisation, a pool (its own account or its manager's),
    a pledgor of the registry (its organisation's account if onboarded, else the one the
    bank records), or a party named in a pool's rule that has no organisation here."""

    kind: PayeeKind
    org_id: int | None = None
    pool_id: int | None = None
    pledgor_id: int | None = None
    party: str | None = None

    def __post_init__(self) -> None:
        named = {
            "org": self.org_id,
            "pool": self.pool_id,
            "pledgor": self.pledgor_id,
            "party": self.party,
        }[self.kind]
        if named is None:
            raise ValueError(f"a payee of kind {self.kind} names it")


def new_reference() -> str:
    """A refund's transfer reference: read aloud, so no 0/O, 1/I (auctions/registration)."""
    return REFERENCE_PREFIX + draw(REFERENCE_BODY)


async def owe(
    uow: UnitOfWork,
    *,
    source: str,
    purpose: Purpose,
    payee: Payee,
    amount_fen: int,
    due_at: datetime,
    reference: str | None = None,
    payout_id: int | None = None,
) -> int:
    """Record that the exchange owes `amount_fen` to `payee` by `due_at`; the instruction's
    id. Once per `source` (module docstring); a refund owed to an organisation tells it."""
    if amount_fen <= 0:
        raise ValueError("an instruction pays a positive amount")
    conn = uow.conn
    for _ in range(_DRAWS):
        row = await conn.fetchrow(
            Q.insert_instruction,
            source,
            purpose,
            payee.kind,
            payee.org_id,
            payee.pool_id,
            payee.pledgor_id,
            payee.party,
            payout_id,
            amount_fen,
            reference or new_reference(),
            due_at,
            uow.at,
        )
        if row is not None:
            if purpose in REFUNDS and payee.org_id is not None:
                await uow.emit(
                    Q.insert_outbox,
                    "refund_instructed",
                    payee.org_id,
                    {
                        "instruction_id": row["id"],
                        "reference": row["reference"],
                        "amount_fen": amount_fen,
                        "purpose": purpose,
                        "path": "/payments",
                        "due_at": due_at.isoformat(),
                    },
                    f"refund_instructed:{row['id']}",
                    uow.at,
                )
            return int(row["id"])
        first = await conn.fetchrow(Q.instruction_by_source, source)
        if first is not None:
            if first["amount_fen"] != amount_fen or first["purpose"] != purpose:
                raise Conflict("instruction_source_reused", field="source", source=source)
            return int(first["id"])
        if reference is not None:  # the caller's reference is another instruction's
            raise Conflict("instruction_reference_taken", field="reference", reference=reference)
    raise RuntimeError(f"no free transfer reference after {_DRAWS} draws")


async def withdraw_payouts(uow: UnitOfWork, payout_ids: list[int], reason: str) -> int:
    """A reversed receipt's payouts are owed no more: their pending instructions are
    cancelled with the reason; the number cancelled. Conflict `receipt_paid_out` when one
    already went out in a payment file or was paid — the money may have left. The caller
    holds the payouts locked; the instructions are locked here, after them (paying.py:
    lock order)."""
    found = await uow.conn.fetch(Q.lock_instructions_of_payouts, payout_ids)
    if any(r["status"] in ("in_file", "paid") for r in found):
        raise Conflict("receipt_paid_out")
    await uow.conn.execute(Q.cancel_instructions, [r["id"] for r in found], reason)
    return sum(1 for r in found if r["status"] == "pending")


async def status_of(uow: UnitOfWork, source: str) -> Status | None:
    row = await uow.conn.fetchrow(Q.instruction_by_source, source)
    return None if row is None else returned(row)["status"]
