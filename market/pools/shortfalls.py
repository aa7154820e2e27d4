"""Short receipts (docs/rules.md §Reconciliation): a statement line a little less than the
payout it pays. Banks deduct their charges from a transfer in transit, so a payout of
¥51,300.00 may arrive as ¥51,280.00: matching that line records the payout as received
for the amount seen and leaves the ¥20.00 outstanding as a shortfall, with the reason the
person gives (bank charges, short paid, other with words). The shortfall is later settled
by a further statement line of exactly its amount, or written off with the reason.

How short a line may be is data (`ShortReceiptPolicy`); an over-receipt, or a line short
by more than the tolerance, is refused naming the amounts: it is no payment of that
payout less charges, and waits to be sorted out with the payer.

The ledger, for a payout to a pool: the short match posts Dr fund (received) + Dr
`pool:N:shortfall` (outstanding), Cr `pool:N:recoverable` (the payout) —
market.pools.services.mark_payout_received; settling posts Dr fund, Cr shortfall; a
write-off Dr `pool:N:written_off` (an expense), Cr shortfall. A bank's or a party's payout
is no pool money: its shortfall is tracked here, audited, without a posting.

Concurrency: matching locks the statement line, then the payout (FOR UPDATE) — the order
of every manual match (market/pools/reconciliation.py) — and `payout_shortfalls.payout_id`
is unique. Settling locks the further line, then the shortfall; writing off locks the
shortfall; each reads the shortfall's status under its lock, so of a settlement racing a
write-off (or two of either) one closes it and the other is told it is closed already.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

import asyncpg
import msgspec
from msgspec import Meta

from market import i18n
from market.accounts.permissions import WRITE_RECONCILIATION
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.ledger import credit, debit, post
from market.pools import accounts

Q = Queries("shortfalls")

BP: Final = 10_000
ShortReason = Literal["bank_charges", "short_paid", "other"]
SHORT_REASONS: Final[tuple[ShortReason, ...]] = ("bank_charges", "short_paid", "other")
MAX_NOTE: Final = 500


class ShortReceiptPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """docs/rules.md §Reconciliation, short receipts: a line may be short of its payout by
    at most `max_short_fen` and at most `max_short_bp` of the payout. Charges for an
    interbank transfer in China run from a few yuan to about ¥200 for a large remittance
    (handling fee plus postage/telegraph charge), so ¥200.00 is the default; the share
    keeps a small payout from being settled by a line a fraction of it."""

    max_short_fen: Annotated[int, Meta(ge=0, le=10_000_000)] = 20_000
    max_short_bp: Annotated[int, Meta(ge=0, le=BP)] = 500

    def tolerance_fen(self, payout_fen: int) -> int:
        """The most a line may be short of a payout of `payout_fen`."""
        return min(self.max_short_fen, payout_fen * self.max_short_bp // BP)


DEFAULT_POLICY: Final = ShortReceiptPolicy()


def check_short(
    policy: ShortReceiptPolicy,
    *,
    line_no: int,
    got_fen: int,
    reference: str,
    expected_fen: int,
    field: str,
) -> int:
    """The shortfall of a line paying a payout (0: the same amount). Refused, naming the
    amounts: more than the payout (`amount_over_payout`) or short by more than the
    tolerance (`short_beyond_tolerance`)."""
    amounts: dict[str, Any] = {
        "line": line_no,
        "got_fen": got_fen,
        "reference": reference,
        "expected_fen": expected_fen,
    }
    if got_fen > expected_fen:
        raise Invalid("amount_over_payout", field=field, over_fen=got_fen - expected_fen, **amounts)
    short = expected_fen - got_fen
    tolerance = policy.tolerance_fen(expected_fen)
    if short > tolerance:
        raise Invalid(
            "short_beyond_tolerance",
            field=field,
            short_fen=short,
            tolerance_fen=tolerance,
            **amounts,
        )
    return short


# --- what the API answers -------------------------------------------------------------------


class ShortfallOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    payout_id: int
    payout_reference: str
    case_reference: str
    expected_fen: int
    received_fen: int
    shortfall_fen: int
    reason: ShortReason
    reason_text: str  # the reason in the reader's language
    note: str
    status: Literal["outstanding", "settled", "written_off"]
    statement_id: int  # the short line
    line_no: int
    settled_statement_id: int | None
    settled_line_no: int | None
    closed_by: str | None
    closed_at: datetime | None
    close_note: str
    created_by: str
    created_at: datetime


class SettleIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The further statement line that brings what was short."""

    line_id: int
    note: Annotated[str, Meta(max_length=MAX_NOTE)] = ""


class WriteOffIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why what is outstanding will not come (bank charges the payee bears, …)."""

    note: Annotated[str, Meta(min_length=1, max_length=MAX_NOTE)]


class SettleShortfall(msgspec.Struct, frozen=True, kw_only=True):
    shortfall_id: int
    line_id: int
    note: str = ""


class WriteOffShortfall(msgspec.Struct, frozen=True, kw_only=True):
    shortfall_id: int
    note: str


class ShortfallDone(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    status: str
    shortfall_fen: int


def reason_label(lang: i18n.Lang, reason: str) -> str:
    return i18n.gettext(lang, f"recon.short.reason.{reason}")


def shortfall_out(r: asyncpg.Record, lang: i18n.Lang) -> ShortfallOut:
    return ShortfallOut(
        id=r["id"],
        payout_id=r["payout_id"],
        payout_reference=r["payout_reference"],
        case_reference=r["case_reference"],
        expected_fen=r["expected_fen"],
        received_fen=r["received_fen"],
        shortfall_fen=r["shortfall_fen"],
        reason=r["reason"],
        reason_text=reason_label(lang, r["reason"]),
        note=r["note"],
        status=r["status"],
        statement_id=r["statement_id"],
        line_no=r["line_no"],
        settled_statement_id=r["settled_statement_id"],
        settled_line_no=r["settled_line_no"],
        closed_by=r["closed_by_name"],
        closed_at=r["closed_at"],
        close_note=r["close_note"],
        created_by=r["created_by_name"],
        created_at=r["created_at"],
    )


async def list_shortfalls(
    conn: Conn, org_id: int, lang: i18n.Lang, status: str | None = None, limit: int = 500
) -> list[ShortfallOut]:
    """The organisation's shortfalls, outstanding first, oldest first."""
    rows = await conn.fetch(Q.shortfalls_of_org, org_id, status, limit, None)
    return [shortfall_out(r, lang) for r in rows]


async def get_shortfall(
    conn: Conn, org_id: int, shortfall_id: int, lang: i18n.Lang
) -> ShortfallOut:
    row = await conn.fetchrow(Q.shortfalls_of_org, org_id, None, 1, shortfall_id)
    if row is None:
        raise NotFound("no_such_shortfall")
    return shortfall_out(row, lang)


# --- writing --------------------------------------------------------------------------------


async def record_short(
    uow: UnitOfWork,
    *,
    payout: asyncpg.Record,
    line: asyncpg.Record,
    reason: str,
    note: str,
) -> asyncpg.Record:
    """The shortfall a short match leaves (the caller holds the line's and the payout's
    locks, and marks the payout received for the line's amount in the same transaction)."""
    return returned(
        await uow.conn.fetchrow(
            Q.insert_shortfall,
            payout["id"],
            uow.actor.org,
            line["id"],
            payout["amount_fen"],
            line["amount_fen"],
            payout["amount_fen"] - line["amount_fen"],
            reason,
            note,
            uow.actor.user,
            uow.at,
        )
    )


async def _locked(conn: Conn, org_id: int, shortfall_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(Q.shortfall_locked, shortfall_id, org_id)
    if row is None:
        raise NotFound("no_such_shortfall")
    if row["status"] != "outstanding":
        raise Conflict(
            "shortfall_closed_already",
            reference=row["payout_reference"],
            status=row["status"],
        )
    return row


async def _post(
    conn: Conn, row: asyncpg.Record, at: datetime, kind: str, to_written_off: bool
) -> None:
    """A pool's shortfall leaves `pool:N:shortfall` for its fund or its write-offs."""
    if row["payee_kind"] != "pool":
        return
    pid, org = row["pool_id"], row["pool_org_id"]
    fen = row["shortfall_fen"]
    target = accounts.pool_written_off(pid, org) if to_written_off else accounts.pool_fund(pid, org)
    await post(
        conn,
        source_kind=kind,
        source_id=row["id"],
        at=at,
        legs=[debit(target, fen), credit(accounts.pool_shortfall(pid, org), fen)],
        memo=f"shortfall of transfer {row['payout_reference']}",
    )


@command(WRITE_RECONCILIATION)
async def settle_shortfall(uow: UnitOfWork, data: SettleShortfall) -> ShortfallDone:
    """A further statement line (open or set aside) of exactly the amount outstanding
    settles a shortfall: the line becomes a manual match, the shortfall settled; for a pool
    the money reaches its fund. Locks the line, then the shortfall (module docstring), so a
    line settles one thing once and a shortfall is closed once. Audited."""
    from market.pools import reconciliation as recon

    conn = uow.conn
    recon.check_text("note", data.note, MAX_NOTE)
    line = await recon.locked_line(conn, uow.actor.org, data.line_id, recon.MATCHABLE_STATUSES)
    row = await _locked(conn, uow.actor.org, data.shortfall_id)
    if line["amount_fen"] != row["shortfall_fen"]:
        raise Invalid(
            "shortfall_amount_differs",
            field="line_id",
            line=line["line_no"],
            got_fen=line["amount_fen"],
            reference=row["payout_reference"],
            short_fen=row["shortfall_fen"],
        )
    note = data.note.strip()
    settled = returned(
        await conn.fetchrow(Q.settle_line_of_shortfall, line["id"], uow.actor.user, uow.at, note)
    )
    closed = returned(
        await conn.fetchrow(
            Q.close_shortfall, row["id"], "settled", line["id"], uow.actor.user, uow.at, note
        )
    )
    await _post(conn, row, uow.at, "shortfall_settled", to_written_off=False)
    after = {
        "status": "manual",
        "shortfall_id": row["id"],
        "reference": row["payout_reference"],
        "amount_fen": line["amount_fen"],
        "note": note,
    }
    recon.audited_line(uow, "statement_line.settle_shortfall", line, settled, after)
    uow.audit(
        "shortfall.settle",
        "payout_shortfall",
        row["id"],
        before={"status": "outstanding"},
        after={"status": "settled", "statement_line_id": line["id"], "note": note},
    )
    return ShortfallDone(
        id=closed["id"], status=closed["status"], shortfall_fen=row["shortfall_fen"]
    )


@command(WRITE_RECONCILIATION)
async def write_off_shortfall(uow: UnitOfWork, data: WriteOffShortfall) -> ShortfallDone:
    """The manager writes an outstanding shortfall off, saying why (charges the pool bears,
    a payer that will not pay the difference); for a pool it becomes an expense. Locks the
    shortfall, so it is written off or settled, once. Audited."""
    from market.pools import reconciliation as recon

    recon.check_text("note", data.note, MAX_NOTE)
    note = data.note.strip()
    if not note:
        raise Invalid("write_off_reason_needed", field="note")
    row = await _locked(uow.conn, uow.actor.org, data.shortfall_id)
    closed = returned(
        await uow.conn.fetchrow(
            Q.close_shortfall, row["id"], "written_off", None, uow.actor.user, uow.at, note
        )
    )
    await _post(uow.conn, row, uow.at, "shortfall_written_off", to_written_off=True)
    uow.audit(
        "shortfall.write_off",
        "payout_shortfall",
        row["id"],
        before={"status": "outstanding", "shortfall_fen": row["shortfall_fen"]},
        after={"status": "written_off", "note": note},
    )
    return ShortfallDone(
        id=closed["id"], status=closed["status"], shortfall_fen=row["shortfall_fen"]
    )
