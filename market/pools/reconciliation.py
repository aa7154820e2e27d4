"""Reconciliation: bank statements of the transfers a pool or a bank actually received,
matched to the payouts the waterfall said it would receive (docs/rules.md §Reconciliation).
This module holds what the API answers, the commands that write (import a statement,
match a line, set a line aside) and the reads behind the pages and the exports.

The flow of an import: read the file (market.pools.statement_csv) → if any line is bad,
reject the whole file with its problems by line and column and write nothing → otherwise,
in ONE transaction, record the statement and its lines, each classified
(market.pools.matching: matched, amount_mismatch, reference_typo or unknown, with the
reason as a code and parameters). A matched line's payout is marked received
(market.pools.services.mark_payout_received posts the ledger entry) in the same
transaction. The CSV files handed out (a statement of payouts, the example statement to
import) are written by market.pools.statement_export.

Exceptions (everything but matched) wait for a person, who matches a line by hand to an
expected payout of their own organisation with the same amount (status manual), or a
little less with the reason the difference is missing (a short receipt: the shortfall
stays outstanding until a further line settles it or it is written off,
market.pools.shortfalls); that is audited and marks the payout received. A line that
is no expected recovery at all (bank interest, a payment for something else, a duplicate
to send back) is set aside with the reason (status set_aside), audited, settling nothing;
it can still be matched by hand later, should it turn out to be a recovery after all.

Commands return what they did without words (`Imported`, `LineDone`); the API and the
pages then read the lines in their reader's language (`import_out`, `line_out`).

Idempotency: a file is imported once per organisation (`UNIQUE (org_id, sha256)`: the
second upload is 409, naming the first statement); a transfer is recorded once per
organisation by the bank's transaction id (流水号; `statement_lines_txn`): a line already
on an earlier statement is skipped and listed as such, so overlapping statements can be
imported one after the other. Outgoing payments in the file (a debit column filled, or a
negative amount) are skipped and counted.

Concurrency — only one of several racing writers settles a payout:
* the imports of one organisation take `pg_advisory_xact_lock(7240006, org id)` first, so
  they run one after the other (the second sees the first's lines and payouts, and a
  second upload of the same file waits and then gets its 409);
* an import locks the payouts whose references its file mentions (FOR UPDATE, in id
  order) before classifying, and reads their status under that lock;
* a manual match locks the statement line, then the payout (FOR UPDATE), and checks the
  payout is still expected; setting a line aside locks the line too, so a line is either
  matched or set aside, once; mark_payout_received locks the payout again (same
  transaction) and refuses anything but expected;
* the unique index `statement_lines_one_per_payout` makes it impossible for two lines to
  settle one payout even if a code path forgot a lock.
So an import racing a manual match, or two manual matches of two lines to one payout:
the first to lock the payout settles it; the other waits, then sees it received (the
import then classifies its line unknown, "received already"; the manual match is 409).
Lock order: org import lock, statement line, payout, then the audit chain head (the unit
of work writes the audit rows at its end) — no path takes them the other way round, so
these writers cannot deadlock on each other. A payout belongs to exactly one
organisation, so a pool's and a bank's imports never compete for one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Final, Literal

import asyncpg
import msgspec
from msgspec import Meta

from market import i18n
from market.accounts.permissions import WRITE_RECONCILIATION
from market.cases.policy import CHINA
from market.cases.services import china_today
from market.collateral.csv_import import clean_filename
from market.collateral.locks import xact_lock
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.pools import services, shortfalls
from market.pools.matching import (
    Expected,
    LineStatus,
    Reason,
    classify,
    decode_reason,
    encode_reason,
    reason,
    reason_text,
    reference_tokens,
)
from market.pools.shortfalls import DEFAULT_POLICY as DEFAULT_SHORT_POLICY
from market.pools.shortfalls import SHORT_REASONS, ShortReason, ShortReceiptPolicy
from market.pools.statement_csv import (
    MAX_LINES,
    StatementLine,
    check_size,
    control_character,
    parse_statement,
)

Q = Queries("reconciliation")

OPEN_STATUSES: Final = ("amount_mismatch", "reference_typo", "unknown")
MATCHABLE_STATUSES: Final = (*OPEN_STATUSES, "set_aside")  # a set-aside line may be a recovery
IMPORT_LOCK: Final = 7_240_006  # first key of the two-key advisory lock (see locks.py)
DEFAULT_FILENAME: Final = "statement.csv"
MAX_MATCH_REFERENCE: Final = 100  # what a person types to name a payout
MAX_NOTE: Final = 500
PARTY_PREFIX: Final = "reconciliation.party."


# --- what the API answers ----------------------------------------------------------------------


class ReasonOut(msgspec.Struct, frozen=True, kw_only=True):
    """Why a line was classified as it was: `code` and `params` for programs, `detail` in
    the reader's language."""

    code: str
    detail: str
    params: dict[str, Any]


class LineOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    statement_id: int
    line_no: int  # as the spreadsheet numbers it (header = 1)
    value_date: date
    amount_fen: int
    reference: str
    counterparty: str
    bank_txn_id: str | None
    status: LineStatus
    reason: ReasonOut | None  # how the import classified the line
    payout_id: int | None
    payout_reference: str | None
    candidate_id: int | None
    candidate_reference: str | None
    candidate_amount_fen: int | None
    matched_by: str | None  # a person's name for a manual match or a line set aside
    matched_at: datetime | None
    note: str  # the person's words: why a line was set aside, or a manual match's note


class SkippedLine(msgspec.Struct, frozen=True, kw_only=True):
    line_no: int
    reason: ReasonOut


class StatementOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    filename: str
    imported_at: datetime
    imported_by: str
    line_count: int  # transfers received in the file
    lines_recorded: int  # without those already on an earlier statement
    matched: int
    manual: int
    set_aside: int  # no expected recovery: set aside by a person, with the reason
    open: int  # amount mismatches, reference typos and unknowns waiting for a person


class StatementDetail(msgspec.Struct, frozen=True, kw_only=True):
    statement: StatementOut
    lines: list[LineOut]


class ImportOut(msgspec.Struct, frozen=True, kw_only=True):
    statement: StatementOut
    encoding: str
    counts: dict[str, int]  # by line status
    skipped: list[SkippedLine]  # already on an earlier statement (same 流水号)
    outgoing_skipped: int
    lines: list[LineOut]


class MatchIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which expected payout a statement line is: its id or its reference. A line a little
    short of the payout (bank charges deducted in transit) is matched with `short_reason`
    (`other` with words in `short_note`); the difference stays outstanding."""

    payout_id: int | None = None
    reference: Annotated[str, Meta(max_length=MAX_MATCH_REFERENCE)] | None = None
    note: Annotated[str, Meta(max_length=MAX_NOTE)] = ""
    short_reason: ShortReason | None = None
    short_note: Annotated[str, Meta(max_length=MAX_NOTE)] = ""


class SetAsideIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why a statement line is no expected recovery (bank interest, a payment for
    something else, a duplicate sent back…)."""

    note: Annotated[str, Meta(min_length=1, max_length=MAX_NOTE)]


class PayoutOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    amount_fen: int
    status: Literal["expected", "received", "reversed"]
    payee_kind: str
    payee: str  # a name: the pool's code, the organisation's or the pledgor's name
    party: str | None  # for a party's payout: its name in the pool's rule (`insurer`)
    pool_id: int | None
    pool_code: str | None
    case_id: int
    case_reference: str
    receipt_kind: str
    created_at: datetime
    received_at: datetime | None
    statement_id: int | None  # the viewer's own statement line that settled it
    line_no: int | None
    value_date: date | None
    matched: Literal["matched", "manual"] | None


# --- what the commands take and give -----------------------------------------------------------


class ImportStatement(msgspec.Struct, frozen=True, kw_only=True):
    """A bank statement file as uploaded."""

    data: bytes
    filename: str | None = None


class Skipped(msgspec.Struct, frozen=True, kw_only=True):
    line_no: int
    reason: Reason


class Imported(msgspec.Struct, frozen=True, kw_only=True):
    statement_id: int
    encoding: str
    counts: dict[str, int]  # by line status
    skipped: list[Skipped]  # already on an earlier statement (same 流水号)
    outgoing_skipped: int


class MatchLine(msgspec.Struct, frozen=True, kw_only=True):
    """A statement line and the expected payout it is, named by id or by reference. A line
    short of the payout (within the policy's tolerance) needs `short_reason` (and words in
    `short_note` for `other`): the shortfall stays outstanding (market/pools/shortfalls.py)."""

    line_id: int
    payout_id: int | None = None
    reference: str | None = None
    note: str = ""
    short_reason: str = ""
    short_note: str = ""
    policy: ShortReceiptPolicy = DEFAULT_SHORT_POLICY


class SetAsideLine(msgspec.Struct, frozen=True, kw_only=True):
    """A statement line and why it is no expected recovery."""

    line_id: int
    note: str


class LineDone(msgspec.Struct, frozen=True, kw_only=True):
    """A line a person matched or set aside."""

    id: int
    statement_id: int
    line_no: int
    status: LineStatus


# --- in words ------------------------------------------------------------------------------------


def reason_out(lang: i18n.Lang, why: Reason) -> ReasonOut:
    return ReasonOut(code=why.code, detail=reason_text(lang, why), params=why.params)


def party_label(lang: i18n.Lang, party: str) -> str:
    """A party of a pool's rule as people call it; a party the catalog does not know is
    shown by the name the rule gives it."""
    key = PARTY_PREFIX + party
    return i18n.gettext(lang, key) if i18n.has(key) else party


def payee_text(lang: i18n.Lang, p: PayoutOut) -> str:
    """Who a payout is to, in words: the name, and a party's role in the pool's rule."""
    if p.payee_kind == "party" and p.party:
        return (
            f"{p.payee} ({party_label(lang, p.party)})" if p.payee else party_label(lang, p.party)
        )
    return p.payee


def _line_out(r: asyncpg.Record, lang: i18n.Lang) -> LineOut:
    why = decode_reason(r["reason"])
    return LineOut(
        id=r["id"],
        statement_id=r["statement_id"],
        line_no=r["line_no"],
        value_date=r["value_date"],
        amount_fen=r["amount_fen"],
        reference=r["reference"],
        counterparty=r["counterparty"],
        bank_txn_id=r["bank_txn_id"],
        status=r["status"],
        reason=reason_out(lang, why) if why is not None else None,
        payout_id=r["payout_id"],
        payout_reference=r["payout_reference"],
        candidate_id=r["candidate_id"],
        candidate_reference=r["candidate_reference"],
        candidate_amount_fen=r["candidate_amount_fen"],
        matched_by=r["matched_by_name"],
        matched_at=r["matched_at"],
        note=r["note"],
    )


def statement_out(r: asyncpg.Record) -> StatementOut:
    return StatementOut(
        id=r["id"],
        filename=r["filename"],
        imported_at=r["imported_at"],
        imported_by=r["imported_by_name"],
        line_count=r["line_count"],
        lines_recorded=r["lines"],
        matched=r["matched"],
        manual=r["manual"],
        set_aside=r["set_aside"],
        open=r["open"],
    )


def _payee(r: asyncpg.Record) -> str:
    if r["payee_kind"] == "pool":
        return str(r["pool_code"])
    if r["payee_kind"] == "pledgor":
        return str(r["pledgor_name"] or "")
    return str(r["payee_org_name"] or "")


def payout_out(r: asyncpg.Record) -> PayoutOut:
    return PayoutOut(
        id=r["id"],
        reference=r["reference"],
        amount_fen=r["amount_fen"],
        status=r["status"],
        payee_kind=r["payee_kind"],
        payee=_payee(r),
        party=r["party"] if r["payee_kind"] == "party" else None,
        pool_id=r["pool_id"],
        pool_code=r["pool_code"],
        case_id=r["case_id"],
        case_reference=r["case_reference"],
        receipt_kind=r["receipt_kind"],
        created_at=r["created_at"],
        received_at=r["received_at"],
        statement_id=r["statement_id"],
        line_no=r["line_no"],
        value_date=r["value_date"],
        matched=r["line_status"],
    )


# --- writing ---------------------------------------------------------------------------------


def _expected(r: asyncpg.Record) -> Expected:
    return Expected(
        id=r["id"],
        reference=r["reference"],
        amount_fen=r["amount_fen"],
        status=r["status"],
        created_on=china_today(r["created_at"]),
        received_on=china_today(r["received_at"]) if r["received_at"] else None,
    )


class Opened(msgspec.Struct, frozen=True, kw_only=True):
    """A statement recorded once: its row, the parsed file, the lines new to this
    organisation and those on an earlier statement already (same 流水号)."""

    statement: Any
    parsed: Any  # statement_csv.Parsed
    lines: list[StatementLine]
    skipped: list[Skipped]


async def open_statement(uow: UnitOfWork, raw: bytes, filename: str | None) -> Opened:
    """Read a bank statement and record it once for the actor's organisation, under its
    import lock (module docstring): Invalid with every problem by line and column, or
    Conflict for the same file again, with nothing written. The pools' and banks' imports
    and the operator's clearing account (market/exchange_account/statement.py) both start here."""
    conn, org_id = uow.conn, uow.actor.org
    name = clean_filename(filename or DEFAULT_FILENAME)
    check_size(raw)
    parsed = parse_statement(raw, today=china_today(uow.at), filename=name)
    await xact_lock(conn, IMPORT_LOCK, org_id)
    sha = hashlib.sha256(raw).digest()
    statement = await conn.fetchrow(
        Q.insert_statement, org_id, name, sha, len(parsed.lines), uow.actor.user, uow.at
    )
    if statement is None:
        first = returned(await conn.fetchrow(Q.statement_by_sha, org_id, sha))
        raise Conflict(
            "duplicate_statement",
            field="file",
            filename=name,
            statement_id=first["id"],
            first_filename=first["filename"],
            imported_on=china_today(first["imported_at"]).isoformat(),
        )
    txns = [ln.bank_txn_id for ln in parsed.lines if ln.bank_txn_id]
    known = {
        r["bank_txn_id"]: (r["statement_id"], r["line_no"])
        for r in await conn.fetch(Q.known_txns, org_id, txns)
    }
    skipped: list[Skipped] = []
    lines: list[StatementLine] = []
    for ln in parsed.lines:
        if ln.bank_txn_id in known:
            s, n = known[ln.bank_txn_id]
            why = reason("txn_imported_already", txn=ln.bank_txn_id, statement_id=s, line=n)
            skipped.append(Skipped(line_no=ln.line_no, reason=why))
        else:
            lines.append(ln)
    return Opened(statement=statement, parsed=parsed, lines=lines, skipped=skipped)


@command(WRITE_RECONCILIATION)
async def import_statement(uow: UnitOfWork, data: ImportStatement) -> Imported:
    """Import a statement for the actor's organisation (see the module docstring).

    Invalid (422, every problem by line and column) or Conflict (409, the same file again)
    with nothing written; otherwise the statement, its classified lines, the payouts it
    settles (with their ledger entries) and one audit row, all in one transaction.
    Concurrent imports of one organisation run one after the other under its advisory
    lock; the payouts the file names are locked (in id order) before they are classified."""
    conn, org_id = uow.conn, uow.actor.org
    opened = await open_statement(uow, data.data, data.filename)
    statement, parsed, lines, skipped = (
        opened.statement,
        opened.parsed,
        opened.lines,
        opened.skipped,
    )
    total = len(parsed.lines)
    tokens = sorted({t for ln in lines for t in reference_tokens(ln.reference)})
    mentioned = [
        _expected(r) for r in await conn.fetch(Q.lock_payouts_by_reference, org_id, tokens)
    ]
    received = [p.id for p in mentioned if p.status == "received"]
    received_where = {
        r["payout_id"]: (r["statement_id"], r["line_no"])
        for r in await conn.fetch(Q.lines_of_payouts, received)
    }
    payouts = {p.id: p for p in map(_expected, await conn.fetch(Q.open_payouts, org_id))}
    payouts.update({p.id: p for p in mentioned})
    outcomes = classify(lines, list(payouts.values()), received_where)
    counts = dict.fromkeys(("matched", *OPEN_STATUSES, "manual"), 0)
    await conn.execute(
        Q.insert_lines,
        statement["id"],
        org_id,
        uow.at,
        *line_columns(lines),
        [o.status for o in outcomes],
        [encode_reason(o.reason) for o in outcomes],
        [o.payout_id for o in outcomes],
        [o.candidate_id for o in outcomes],
    )
    settled: list[str] = []
    for outcome in outcomes:
        counts[outcome.status] += 1
        if outcome.payout_id is not None:
            paid = await services.mark_payout_received(conn, at=uow.at, payout_id=outcome.payout_id)
            settled.append(paid["reference"])
    uow.audit(
        "statement.import",
        "statement",
        statement["id"],
        after={
            "filename": statement["filename"],
            "sha256": bytes(statement["sha256"]).hex(),
            "encoding": parsed.encoding,
            "lines": total,
            "counts": counts,
            "skipped": len(skipped),
            "outgoing_skipped": parsed.outgoing,
            "settled": settled,
        },
    )
    return Imported(
        statement_id=statement["id"],
        encoding=parsed.encoding,
        counts=counts,
        skipped=skipped,
        outgoing_skipped=parsed.outgoing,
    )


def line_columns(lines: list[StatementLine]) -> tuple[list[Any], ...]:
    """The statement lines as the INSERT … SELECT FROM unnest(…) of their rows takes them:
    line_no, value_date, amount_fen, reference, counterparty, bank_txn_id."""
    return (
        [ln.line_no for ln in lines],
        [ln.value_date for ln in lines],
        [ln.amount_fen for ln in lines],
        [ln.reference for ln in lines],
        [ln.counterparty for ln in lines],
        [ln.bank_txn_id for ln in lines],
    )


def normalise_reference(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).upper()


@command(WRITE_RECONCILIATION)
async def match_line(uow: UnitOfWork, data: MatchLine) -> LineDone:
    """A person settles an open (or set-aside) statement line with an expected payout of
    their own organisation (named by its id or its reference, not both); audited, the
    payout marked received. The same amount, or — with a reason — a line short of it by
    no more than the tolerance (`ShortReceiptPolicy`): the payout is received for the
    amount seen and the shortfall stays outstanding (market/pools/shortfalls.py). More
    than the payout, or shorter than the tolerance allows: refused, naming the amounts.
    The line is locked, then the payout (FOR UPDATE), and the payout's status is read
    under its lock: of two people matching one line, or two lines to one payout, or a
    match racing an import naming it, one settles it and the other is told it is settled
    or received already."""
    conn, org_id = uow.conn, uow.actor.org
    check_text("reference", data.reference or "", MAX_MATCH_REFERENCE)
    check_text("note", data.note, MAX_NOTE)
    check_text("short_note", data.short_note, MAX_NOTE)
    if data.short_reason and data.short_reason not in SHORT_REASONS:
        raise Invalid("not_a_short_reason", field="short_reason", reason=data.short_reason)
    line = await locked_line(conn, org_id, data.line_id, MATCHABLE_STATUSES)
    ref = normalise_reference(data.reference or "")
    if data.payout_id is not None and ref:
        raise Invalid("transfer_named_twice", field="payout_id")
    if data.payout_id is None and not ref:
        raise Invalid("transfer_not_named", field="reference")
    field = "payout_id" if data.payout_id is not None else "reference"
    payout = await conn.fetchrow(Q.owned_payout, org_id, data.payout_id, ref)
    if payout is None:
        raise NotFound("no_such_transfer", field=field, transfer=ref or f"#{data.payout_id}")
    reference = payout["reference"]
    if payout["status"] == "received":
        where = await conn.fetchrow(Q.line_of_payout, payout["id"])
        if where is not None:
            raise Conflict(
                "transfer_received_on_line",
                field=field,
                reference=reference,
                statement_id=where["statement_id"],
                line=where["line_no"],
            )
        raise Conflict(
            "transfer_received_already",
            field=field,
            reference=reference,
            received_at=payout["received_at"],
        )
    if payout["status"] != "expected":
        raise Conflict("transfer_reversed", field=field, reference=reference)
    short = shortfalls.check_short(
        data.policy,
        line_no=line["line_no"],
        got_fen=line["amount_fen"],
        reference=reference,
        expected_fen=payout["amount_fen"],
        field=field,
    )
    short_note = data.short_note.strip()
    if short and not data.short_reason:
        raise Invalid(
            "short_reason_needed",
            field="short_reason",
            line=line["line_no"],
            got_fen=line["amount_fen"],
            reference=reference,
            expected_fen=payout["amount_fen"],
            short_fen=short,
        )
    if short and data.short_reason == "other" and not short_note:
        raise Invalid("short_note_needed", field="short_note")
    note = data.note.strip()
    try:
        settled = returned(
            await conn.fetchrow(
                Q.settle_line, line["id"], payout["id"], uow.actor.user, uow.at, note
            )
        )
    except asyncpg.UniqueViolationError:
        raise Conflict("transfer_on_another_line", field=field, reference=reference) from None
    await services.mark_payout_received(
        conn, at=uow.at, payout_id=payout["id"], received_fen=line["amount_fen"]
    )
    after: dict[str, Any] = {
        "status": "manual",
        "payout_id": payout["id"],
        "reference": reference,
        "amount_fen": payout["amount_fen"],
        "note": note,
    }
    if short:
        gap = await shortfalls.record_short(
            uow, payout=payout, line=line, reason=data.short_reason, note=short_note
        )
        after |= {
            "received_fen": line["amount_fen"],
            "shortfall": {
                "id": gap["id"],
                "shortfall_fen": short,
                "reason": data.short_reason,
                "note": short_note,
            },
        }
    return audited_line(uow, "statement_line.match", line, settled, after)


@command(WRITE_RECONCILIATION)
async def set_aside_line(uow: UnitOfWork, data: SetAsideLine) -> LineDone:
    """A person takes an open line out of the exceptions as no expected recovery, saying
    why; audited, no payout touched, no money moved. Under the line's lock (as a manual
    match), so a line is matched or set aside, once."""
    check_text("note", data.note, MAX_NOTE)
    note = data.note.strip()
    if not note:
        raise Invalid("set_aside_reason_needed", field="note")
    line = await locked_line(uow.conn, uow.actor.org, data.line_id, OPEN_STATUSES)
    aside = returned(
        await uow.conn.fetchrow(Q.set_aside_line, line["id"], uow.actor.user, uow.at, note)
    )
    after = {"status": "set_aside", "note": note}
    return audited_line(uow, "statement_line.set_aside", line, aside, after)


def audited_line(
    uow: UnitOfWork,
    action: str,
    line: asyncpg.Record,
    changed: asyncpg.Record,
    after: dict[str, Any],
) -> LineDone:
    """Audit a person's change of a line (`line` as it was, `changed` as written) in the
    organisation's chain."""
    why = decode_reason(line["reason"])
    uow.audit(
        action,
        "statement_line",
        line["id"],
        before={
            "status": line["status"],
            "reason": msgspec.to_builtins(why) if why is not None else None,
            "candidate_id": line["candidate_id"],
        },
        after=after,
    )
    return LineDone(
        id=changed["id"],
        statement_id=changed["statement_id"],
        line_no=changed["line_no"],
        status=changed["status"],
    )


def check_text(name: str, text: str, most: int) -> None:
    """What a person typed: the API's schema checks the lengths, a form does not."""
    if len(text) > most:
        raise Invalid("too_long", field=name, max=most)
    if char := control_character(text):
        raise Invalid("control_character_in_text", field=name, char=char)


async def locked_line(
    conn: Conn, org_id: int, line_id: int, allowed: tuple[str, ...]
) -> asyncpg.Record:
    """The organisation's line, locked; 409 unless its status is one of `allowed`."""
    line = await conn.fetchrow(Q.line_locked, line_id, org_id)
    if line is None:
        raise NotFound("no_such_statement_line")
    if line["status"] not in allowed:
        raise Conflict(
            "set_aside_already" if line["status"] == "set_aside" else "settled_already",
            statement_id=line["statement_id"],
            line=line["line_no"],
            status=line["status"],
        )
    return line


# --- reading -----------------------------------------------------------------------------------


async def import_out(conn: Conn, org_id: int, done: Imported, lang: i18n.Lang) -> ImportOut:
    """What the API answers for an import: the statement as it is now, its lines and the
    lines skipped, the reasons in `lang`."""
    detail = await statement_detail(conn, org_id, done.statement_id, lang)
    return ImportOut(
        statement=detail.statement,
        encoding=done.encoding,
        counts=done.counts,
        skipped=[
            SkippedLine(line_no=s.line_no, reason=reason_out(lang, s.reason)) for s in done.skipped
        ],
        outgoing_skipped=done.outgoing_skipped,
        lines=detail.lines,
    )


async def line_out(conn: Conn, org_id: int, line_id: int, lang: i18n.Lang) -> LineOut:
    """One line of the organisation (another's: 404)."""
    row = await conn.fetchrow(Q.lines, org_id, None, None, 1, line_id)
    if row is None:
        raise NotFound("no_such_statement_line")
    return _line_out(row, lang)


async def list_statements(conn: Conn, org_id: int, limit: int = 100) -> list[StatementOut]:
    return [statement_out(r) for r in await conn.fetch(Q.statements_of_org, org_id, None, limit)]


async def statement_detail(
    conn: Conn, org_id: int, statement_id: int, lang: i18n.Lang
) -> StatementDetail:
    """Another organisation's statement is 404."""
    row = await conn.fetchrow(Q.statements_of_org, org_id, statement_id, 1)
    if row is None:
        raise NotFound("no_such_statement")
    lines = await conn.fetch(Q.lines, org_id, statement_id, None, MAX_LINES, None)
    return StatementDetail(statement=statement_out(row), lines=[_line_out(r, lang) for r in lines])


async def open_lines(conn: Conn, org_id: int, lang: i18n.Lang, limit: int = 500) -> list[LineOut]:
    """The exceptions waiting for a person."""
    return await _lines_in(conn, org_id, OPEN_STATUSES, lang, limit)


async def set_aside_lines(
    conn: Conn, org_id: int, lang: i18n.Lang, limit: int = 500
) -> list[LineOut]:
    return await _lines_in(conn, org_id, ("set_aside",), lang, limit)


async def _lines_in(
    conn: Conn, org_id: int, statuses: tuple[str, ...], lang: i18n.Lang, limit: int
) -> list[LineOut]:
    rows = await conn.fetch(Q.lines, org_id, None, list(statuses), limit, None)
    return [_line_out(r, lang) for r in rows]


async def org_payouts(
    conn: Conn, org_id: int, status: str | None = None, limit: int = 1000
) -> list[PayoutOut]:
    """The organisation's own payouts (a pool's pools', a bank's), oldest first."""
    rows = await conn.fetch(
        Q.payout_rows, org_id, None, False, None, status, False, limit, None, None
    )
    return [payout_out(r) for r in rows]


async def cases_with_payouts(conn: Conn, org_id: int, limit: int = 200) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q.cases_with_payouts, org_id, limit))


EXPORT_LIMIT: Final = 100_000


class Period(msgspec.Struct, frozen=True, kw_only=True):
    """Calendar days in China, both ends included; an open end is None. A statement of a
    period lists the payouts expected or received in it."""

    since: date | None = None
    until: date | None = None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """[from, to) as instants: midnight in China of `since`, of the day after `until`."""
        lo = datetime.combine(self.since, time(), CHINA) if self.since else None
        hi = datetime.combine(self.until + timedelta(days=1), time(), CHINA) if self.until else None
        return lo, hi

    def filename_part(self) -> str:
        if self.since is None and self.until is None:
            return ""
        return f"-{self.since or 'start'}-to-{self.until or 'now'}"

    def query(self) -> str:
        """The period as export links carry it ('' for all time)."""
        parts = [f"since={self.since}"] if self.since else []
        return "&".join(parts + ([f"until={self.until}"] if self.until else []))


def period(since: date | str | None, until: date | str | None) -> Period:
    """A period from the API's dates or a form's text (YYYY-MM-DD, blank for open)."""
    first, last = _day("since", since), _day("until", until)
    if first and last and first > last:
        raise Invalid("period_ends_before_start", field="until", since=first, until=last)
    return Period(since=first, until=last)


def _day(name: str, value: date | str | None) -> date | None:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid("not_a_date", field=name) from None


ALL_TIME: Final = Period()


async def pool_statement(
    conn: Conn, org_id: int, pool_id: int, within: Period = ALL_TIME
) -> tuple[str, list[PayoutOut]]:
    """(pool code, every payout to the pool in the period) for its manager (another's
    pool: 404)."""
    found = await services.own_pool(conn, org_id, pool_id)
    rows = await conn.fetch(
        Q.payout_rows, org_id, pool_id, False, None, None, True, EXPORT_LIMIT, *within.bounds()
    )
    return found["code"], [payout_out(r) for r in rows]


async def bank_statement(
    conn: Conn, org_id: int, org_kind: str, within: Period = ALL_TIME
) -> list[PayoutOut]:
    """Every payout to the bank in the period (costs repaid, its part of each recovery).
    Who may read is the route's permission; which statement is whose is this rule: a
    bank's statement is of a bank, a pool's payouts are exported per pool."""
    if org_kind != "bank":
        raise Forbidden("bank_statement_for_banks")
    rows = await conn.fetch(
        Q.payout_rows, org_id, None, True, None, None, True, EXPORT_LIMIT, *within.bounds()
    )
    return [payout_out(r) for r in rows]


async def case_statement(
    conn: Conn, org_id: int, case_id: int, within: Period = ALL_TIME
) -> tuple[str, list[PayoutOut]]:
    """The payouts of one case in the period: all of them for the bank owning the case
    (its waterfall); only its own for anyone else, and 404 if it has none there at all."""
    case = await conn.fetchrow(Q.case_owner, case_id)
    if case is None:
        raise NotFound("no_payouts_on_case")
    owner = case["bank_org_id"] == org_id
    rows = await conn.fetch(
        Q.payout_rows, org_id, None, False, case_id, None, owner, EXPORT_LIMIT, *within.bounds()
    )
    # None of one's own in the period: 404 only if there are none at all (all time).
    none_at_all = (
        not owner
        and not rows
        and (
            within == ALL_TIME
            or not await conn.fetch(
                Q.payout_rows, org_id, None, False, case_id, None, False, 1, None, None
            )
        )
    )
    if none_at_all:
        raise NotFound("no_payouts_on_case")
    return case["reference"], [payout_out(r) for r in rows]
