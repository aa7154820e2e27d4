"""What the pages and the API read of payments out: an organisation's refunds and payouts,
the operator's instructions with their payees' accounts (docs/rules.md §Payments out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from market.paging import Keyset, Page
from market.payments.files import Held, held_reason
from market.payments.instructions import PayeeKind, Purpose, Status, payments_queries

Q = payments_queries()
OWED: Keyset[tuple[datetime, int]] = Keyset(
    "payments_owed", tuple[datetime, int], "created_at", "id"
)
INSTRUCTIONS: Keyset[tuple[datetime, int]] = Keyset(
    "payments_out", tuple[datetime, int], "due_at", "id"
)


class OwedOut(msgspec.Struct, frozen=True, kw_only=True):
    """A refund or payout the exchange owes the organisation, and where it stands."""

    id: int
    purpose: Purpose
    reference: str  # written on the transfer: the 附言 the organisation's statement shows
    amount_fen: int
    due_at: datetime
    status: Status
    payee_kind: PayeeKind
    pool_id: int | None
    payout_id: int | None
    created_at: datetime
    paid_at: datetime | None
    cancelled_reason: str | None


class InstructionOut(msgspec.Struct, frozen=True, kw_only=True):
    """An instruction as the operator sees it: the payee, its account (or why it is held
    back from a payment file), the file it went out in, the statement line proving it paid."""

    id: int
    purpose: Purpose
    reference: str
    amount_fen: int
    due_at: datetime
    status: Status
    payee_kind: PayeeKind
    payee_name: str | None
    account_name: str | None
    account_number: str | None
    bank_name: str | None
    held: Held | None  # pending but kept out of a payment file: why
    file_id: int | None
    file_line: int | None
    paid_at: datetime | None
    paid_statement_id: int | None
    paid_line_no: int | None
    cancelled_reason: str | None
    created_at: datetime


def instruction_out(row: Any) -> InstructionOut:
    held = held_reason(row) if row["status"] == "pending" else None
    return msgspec.convert({**dict(row), "held": held}, InstructionOut)


def owed_out(row: Any) -> OwedOut:
    return msgspec.convert(dict(row), OwedOut)


async def page_owed(
    pool: asyncpg.Pool,
    org_id: int,
    *,
    purpose: Purpose | None,
    status: Status | None,
    cursor: str | None,
    limit: int,
) -> Page[OwedOut]:
    return await OWED.read(
        pool, Q.page_owed, org_id, purpose, status, cursor=cursor, limit=limit, item=owed_out
    )


async def page_instructions(
    pool: asyncpg.Pool, *, status: Status | None, cursor: str | None, limit: int
) -> Page[InstructionOut]:
    return await INSTRUCTIONS.read(
        pool, Q.page_instructions, status, cursor=cursor, limit=limit, item=instruction_out
    )
