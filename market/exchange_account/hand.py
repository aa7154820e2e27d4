"""The operator's hand decisions on the exchange statement's lines the import left
(market/exchange_account/statement.py; docs/rules.md §Reconciliation): a line is matched
by hand to the registration whose deposit it is, or set aside with the reason (a transfer
to send back, bank interest…). A royalty item or a sale's balance is recorded by hand
with the operator's own commands (payments.record_royalty_payment naming the line,
auctions/closing.record_payment).

Matching by hand confirms the deposit through auctions/deposits.confirm — the operator's
own code path — with the line as its proof: the amount must be the deposit (422), a
deposit confirmed already is 409. A deposit whose round is over is confirmed and released
at once (the buyer is owed it back), as a late confirmation always is. Audited twice: the
confirmation on the buyer's chain, the line's match on the operator's.

Concurrency: the line is locked first (FOR UPDATE; a line is matched or set aside once),
then the registration's lot FOR SHARE and the registration FOR UPDATE (auctions/deposits.py
lock order), whose status is read under its lock; an import never locks a recorded line,
so no cycle. `statement_lines_one_per_deposit` makes a second line for one deposit
impossible even past the locks (409)."""

from __future__ import annotations

from typing import Annotated

import asyncpg
import msgspec
from msgspec import Meta

from auctions import deposits
from market.accounts.permissions import OPERATE
from market.commands import UnitOfWork, command
from market.db import Queries, returned
from market.errors import Conflict
from market.exchange_account.proof import StatementProof
from market.pools import reconciliation as recon

Q = Queries("exchange_statement")


class DepositLineIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The registration a statement line is the deposit of: its transfer reference."""

    transfer_reference: Annotated[str, Meta(min_length=1, max_length=40)]
    note: Annotated[str, Meta(max_length=recon.MAX_NOTE)] = ""


class MatchDepositLine(msgspec.Struct, frozen=True, kw_only=True):
    line_id: int
    transfer_reference: str
    note: str = ""


class DepositLineMatched(msgspec.Struct, frozen=True, kw_only=True):
    line: recon.LineDone
    registration_id: int
    transfer_reference: str
    released: bool  # its round was over: confirmed and released at once


@command(OPERATE)
async def match_line_to_deposit(uow: UnitOfWork, data: MatchDepositLine) -> DepositLineMatched:
    """The operator says an open (or set-aside) line of the exchange's statement is this
    registration's deposit (module docstring)."""
    conn = uow.conn
    recon.check_text("note", data.note, recon.MAX_NOTE)
    line = await recon.locked_line(conn, uow.actor.org, data.line_id, recon.MATCHABLE_STATUSES)
    ref = deposits.checked_reference(data.transfer_reference)
    proof = StatementProof(
        line_id=line["id"],
        statement_id=line["statement_id"],
        line_no=line["line_no"],
        bank_txn_id=line["bank_txn_id"],
        by_hand=True,
    )
    done = await deposits.confirm(
        uow,
        deposits.ConfirmDeposit(transfer_reference=ref, amount_fen=line["amount_fen"]),
        proof,
    )
    if not done.changed:
        raise Conflict("deposit_confirmed_already", field="transfer_reference", reference=ref)
    note = data.note.strip()
    try:
        matched = returned(
            await conn.fetchrow(
                Q.match_line_to_deposit,
                line["id"],
                done.registration.id,
                uow.actor.user,
                uow.at,
                note,
            )
        )
    except asyncpg.UniqueViolationError:  # the locks make this unreachable; the index backs them
        raise Conflict(
            "deposit_confirmed_already", field="transfer_reference", reference=ref
        ) from None
    after = {
        "status": "manual",
        "registration_id": done.registration.id,
        "transfer_reference": ref,
        "amount_fen": line["amount_fen"],
        "released_at_once": done.released,
        "note": note,
    }
    return DepositLineMatched(
        line=recon.audited_line(uow, "statement_line.match", line, matched, after),
        registration_id=done.registration.id,
        transfer_reference=ref,
        released=done.released,
    )


@command(OPERATE)
async def set_aside_exchange_line(uow: UnitOfWork, data: recon.SetAsideLine) -> recon.LineDone:
    """The operator takes a line of the exchange's statement out of the exceptions, saying
    why (reconciliation.set_aside_line: the line locked, audited, no money moved)."""
    return await recon.set_aside_line(uow, data)
