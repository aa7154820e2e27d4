"""Reconciliation: bank statements of the transfers a pool or a bank actually received,
matched to the payouts the waterfall said it would receive (issue 6 item 4). This module
holds what the API answers, the import and the manual match (the writes), and the reads
behind the pages and the exports.

The flow of an import: read the file (market.pools.statement_csv) → if any line is bad,
reject the whole file with (line, column, reason) and write nothing → otherwise, in ONE
transaction, record the statement and its lines, each classified (market.pools.matching:
matched, amount_mismatch, reference_typo or unknown). A matched line's payout is marked
received (market.pools.services.mark_payout_received posts the ledger entry) in the same
transaction. The CSV files handed out (a statement of payouts, the example statement to
import) are written by market.pools.statement_export.

Exceptions (everything but matched) wait for a person, who matches a line by hand to an
expected payout of their own organisation with the same amount (status manual); that is
audited and marks the payout received. A line that is no expected recovery at all (bank
interest, a payment for something else, a duplicate to send back) is set aside with the
reason (status set_aside), audited, settling nothing; it can still be matched by hand
later, should it turn out to be a recovery after all.

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
Lock order: org import lock, statement line, payout, then the audit chain head — no
path takes them the other way round, so these writers cannot deadlock on each other.
A payout belongs to exactly one organisation, so a pool's and a bank's imports never
compete for one.
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

from market import audit, i18n
from market.cases.policy import CHINA
from market.cases.services import china_today
from market.collateral.csv_import import check_upload, clean_filename
from market.collateral.locks import xact_lock
from market.db import Conn, Queries, returned
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.money import format_cny
from market.pools import services
from market.pools.matching import (
    Expected,
    LineStatus,
    classify,
    reason,
    reason_parts,
    reference_tokens,
)
from market.pools.statement_csv import (
    MAX_FILE_BYTES,
    MAX_LINES,
    StatementLine,
    control_character,
    parse_statement,
)

Q = Queries("reconciliation")

OPEN_STATUSES: Final = ("amount_mismatch", "reference_typo", "unknown")
MATCHABLE_STATUSES: Final = (*OPEN_STATUSES, "set_aside")  # a set-aside line may be a recovery

# The Chinese part of a message: a text field's or date's name; statuses as the pages
# name them (the UI's catalogue).
_TEXT_ZH: Final = {
    "reference": "转账编号",
    "note": "备注",
    "since": "起始日期",
    "until": "截止日期",
}
_zh = i18n.translator("zh")
IMPORT_LOCK: Final = 7_240_006  # first key of the two-key advisory lock (see locks.py)
DEFAULT_FILENAME: Final = "statement.csv"
MAX_MATCH_REFERENCE: Final = 100  # what a person types to name a payout
MAX_NOTE: Final = 500


# --- what the API answers ----------------------------------------------------------------------


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
    reason_zh: str
    reason_en: str
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
    reason: str


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
    """Which expected payout a statement line is: its id or its reference."""

    payout_id: int | None = None
    reference: Annotated[str, Meta(max_length=MAX_MATCH_REFERENCE)] | None = None
    note: Annotated[str, Meta(max_length=MAX_NOTE)] = ""


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
    payee: str
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


def _line_out(r: asyncpg.Record) -> LineOut:
    zh, en = reason_parts(r["reason"])
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
        reason_zh=zh,
        reason_en=en,
        payout_id=r["payout_id"],
        payout_reference=r["payout_reference"],
        candidate_id=r["candidate_id"],
        candidate_reference=r["candidate_reference"],
        candidate_amount_fen=r["candidate_amount_fen"],
        matched_by=r["matched_by_name"],
        matched_at=r["matched_at"],
        note=r["note"],
    )


def _statement_out(r: asyncpg.Record) -> StatementOut:
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
    name = str(r["payee_org_name"] or "")
    return f"{name} ({r['party']})" if r["payee_kind"] == "party" and r["party"] else name


def _payout_out(r: asyncpg.Record) -> PayoutOut:
    return PayoutOut(
        id=r["id"],
        reference=r["reference"],
        amount_fen=r["amount_fen"],
        status=r["status"],
        payee_kind=r["payee_kind"],
        payee=_payee(r),
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


# --- who reconciles -------------------------------------------------------------------------


def require_reconciler(org_kind: str, org_status: str) -> None:
    """Pools and banks import statements of what they received; nobody else does."""
    if org_kind not in ("pool", "bank") or org_status != "approved":
        raise Forbidden(
            "只有已审核通过的资金池和银行可以进行银行流水对账 / "
            "only approved pools and banks reconcile bank statements"
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


async def import_statement(
    conn: Conn,
    *,
    at: datetime,
    org_id: int,
    user_id: int,
    filename: str | None,
    data: bytes,
) -> ImportOut:
    """Import a statement in the caller's transaction (see the module docstring).

    ImportRejected (422, every bad line and column) or Conflict (409, the same file again)
    with nothing written; otherwise the statement, its classified lines, the payouts it
    settles (with their ledger entries) and one audit row, all in that transaction."""
    if not conn.is_in_transaction():
        raise RuntimeError("import_statement runs inside one transaction")
    org = returned(await conn.fetchrow(Q.org_of, org_id))
    require_reconciler(org["kind"], org["status"])
    name = clean_filename(filename or DEFAULT_FILENAME)
    check_upload(data, max_bytes=MAX_FILE_BYTES)
    parsed = parse_statement(data, today=china_today(at), filename=name)
    await xact_lock(conn, IMPORT_LOCK, org_id)
    sha = hashlib.sha256(data).digest()
    total = len(parsed.lines)
    statement = await conn.fetchrow(Q.insert_statement, org_id, name, sha, total, user_id, at)
    if statement is None:
        first = returned(await conn.fetchrow(Q.statement_by_sha, org_id, sha))
        raise Conflict(
            f"{name} 已作为对账单 {first['id']} 导入过（{first['filename']}，"
            f"{china_today(first['imported_at']).isoformat()}），本次未写入任何数据 / "
            f"{name} was imported already as statement {first['id']} "
            f"({first['filename']}, {china_today(first['imported_at']).isoformat()}); "
            "nothing was written",
            field="file",
            code="duplicate_statement",
        )
    txns = [ln.bank_txn_id for ln in parsed.lines if ln.bank_txn_id]
    known = {
        r["bank_txn_id"]: (r["statement_id"], r["line_no"])
        for r in await conn.fetch(Q.known_txns, org_id, txns)
    }
    skipped: list[SkippedLine] = []
    lines: list[StatementLine] = []
    for ln in parsed.lines:
        if ln.bank_txn_id in known:
            s, n = known[ln.bank_txn_id]
            skipped.append(
                SkippedLine(
                    line_no=ln.line_no,
                    reason=reason(
                        f"流水号 {ln.bank_txn_id} 已在对账单 {s} 第 {n} 行导入",
                        f"transaction {ln.bank_txn_id} was imported already "
                        f"(statement {s}, line {n})",
                    ),
                )
            )
        else:
            lines.append(ln)
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
        at,
        [ln.line_no for ln in lines],
        [ln.value_date for ln in lines],
        [ln.amount_fen for ln in lines],
        [ln.reference for ln in lines],
        [ln.counterparty for ln in lines],
        [ln.bank_txn_id for ln in lines],
        [o.status for o in outcomes],
        [o.reason for o in outcomes],
        [o.payout_id for o in outcomes],
        [o.candidate_id for o in outcomes],
    )
    settled: list[str] = []
    for outcome in outcomes:
        counts[outcome.status] += 1
        if outcome.payout_id is not None:
            paid = await services.mark_payout_received(conn, at=at, payout_id=outcome.payout_id)
            settled.append(paid["reference"])
    await audit.append(
        conn,
        at=at,
        chain_org_id=org_id,
        actor_user_id=user_id,
        actor_org_id=org_id,
        action="statement.import",
        object_kind="statement",
        object_id=statement["id"],
        after={
            "filename": name,
            "sha256": sha.hex(),
            "encoding": parsed.encoding,
            "lines": total,
            "counts": counts,
            "skipped": len(skipped),
            "outgoing_skipped": parsed.outgoing,
            "settled": settled,
        },
    )
    detail = await statement_detail(conn, org_id, statement["id"])
    return ImportOut(
        statement=detail.statement,
        encoding=parsed.encoding,
        counts=counts,
        skipped=skipped,
        outgoing_skipped=parsed.outgoing,
        lines=detail.lines,
    )


def normalise_reference(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).upper()


async def match_line(
    conn: Conn,
    *,
    at: datetime,
    org_id: int,
    user_id: int,
    line_id: int,
    payout_id: int | None = None,
    reference: str | None = None,
    note: str = "",
) -> LineOut:
    """A person settles an open statement line with an expected payout of their own
    organisation, of the same amount (named by its id or its reference, not both); audited,
    the payout marked received. In the caller's transaction: line lock, then payout lock
    (see the module docstring)."""
    if not conn.is_in_transaction():
        raise RuntimeError("match_line runs inside one transaction")
    _check_text("reference", reference or "", MAX_MATCH_REFERENCE)
    _check_text("note", note, MAX_NOTE)
    line = await _locked_line(conn, org_id, line_id, MATCHABLE_STATUSES)
    ref = normalise_reference(reference or "")
    if payout_id is not None and ref:
        raise Invalid(
            "请用 payout_id 或转账编号之一指明应收转账，不能同时填写 / "
            "name the expected transfer by its payout_id or by its reference, not both",
            field="payout_id",
        )
    if payout_id is None and not ref:
        raise Invalid(
            "请填写该行对应的应收转账编号 / "
            "say which expected transfer this line is: its reference",
            field="reference",
        )
    field = "payout_id" if payout_id is not None else "reference"
    payout = await conn.fetchrow(Q.owned_payout, org_id, payout_id, ref)
    if payout is None:
        raise NotFound(f"you have no transfer {ref or f'#{payout_id}'}", field=field)
    if payout["status"] != "expected":
        where = await conn.fetchrow(Q.line_of_payout, payout["id"])
        extra = f" (statement {where['statement_id']}, line {where['line_no']})" if where else ""
        extra_zh = f"（对账单 {where['statement_id']} 第 {where['line_no']} 行）" if where else ""
        status_zh = _zh(f"recon.payout.{payout['status']}")
        raise Conflict(
            f"转账 {payout['reference']} 的状态已是“{status_zh}”{extra_zh} / "
            f"transfer {payout['reference']} is {payout['status']} already{extra}",
            field=field,
            code="not_expected",
        )
    if payout["amount_fen"] != line["amount_fen"]:
        raise Invalid(
            f"第 {line['line_no']} 行到账 {format_cny(line['amount_fen'])}，但 "
            f"{payout['reference']} 应收 {format_cny(payout['amount_fen'])}；一行只能核销一笔"
            "金额相同的转账，差额请与付款方另行结清 / "
            f"line {line['line_no']} received {format_cny(line['amount_fen'])} but "
            f"{payout['reference']} expects {format_cny(payout['amount_fen'])}; a line settles "
            "one transfer of the same amount — settle a difference with the payer",
            field=field,
            code="amount_differs",
        )
    try:
        settled = returned(
            await conn.fetchrow(Q.settle_line, line_id, payout["id"], user_id, at, note.strip())
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"转账 {payout['reference']} 已由另一行核销 / "
            f"transfer {payout['reference']} is settled by another line already",
            field=field,
            code="not_expected",
        ) from None
    await services.mark_payout_received(conn, at=at, payout_id=payout["id"])
    after = {
        "status": "manual",
        "payout_id": payout["id"],
        "reference": payout["reference"],
        "amount_fen": payout["amount_fen"],
        "note": note.strip(),
    }
    return await _audited(conn, at, user_id, "statement_line.match", line, settled, after)


async def set_aside_line(
    conn: Conn, *, at: datetime, org_id: int, user_id: int, line_id: int, note: str
) -> LineOut:
    """A person takes an open line out of the exceptions as no expected recovery, saying
    why; audited, no payout touched, no money moved. In the caller's transaction, under
    the line's lock (as a manual match), so a line is matched or set aside, once."""
    if not conn.is_in_transaction():
        raise RuntimeError("set_aside_line runs inside one transaction")
    _check_text("note", note, MAX_NOTE)
    if not note.strip():
        raise Invalid(
            "请说明该行为何不是应收回款（如银行结息、其他款项、待退回的重复转账） / "
            "say why this line is no expected recovery (for example: bank interest, a payment "
            "for something else, a duplicate sent back)",
            field="note",
        )
    line = await _locked_line(conn, org_id, line_id, OPEN_STATUSES)
    aside = returned(await conn.fetchrow(Q.set_aside_line, line_id, user_id, at, note.strip()))
    after = {"status": "set_aside", "note": note.strip()}
    return await _audited(conn, at, user_id, "statement_line.set_aside", line, aside, after)


async def _audited(
    conn: Conn,
    at: datetime,
    user_id: int,
    action: str,
    line: asyncpg.Record,
    changed: asyncpg.Record,
    after: dict[str, Any],
) -> LineOut:
    """Audit a person's change of a line (`line` as it was, `changed` as written) in the
    organisation's chain; the line as the API shows it."""
    org_id = line["org_id"]
    await audit.append(
        conn,
        at=at,
        chain_org_id=org_id,
        actor_user_id=user_id,
        actor_org_id=org_id,
        action=action,
        object_kind="statement_line",
        object_id=line["id"],
        before={
            "status": line["status"],
            "reason": line["reason"],
            "candidate_id": line["candidate_id"],
        },
        after=after,
    )
    return _line_out(returned(await conn.fetchrow(Q.lines, org_id, None, None, 1, changed["id"])))


def _check_text(name: str, text: str, most: int) -> None:
    """The API's schema checks the lengths; a form does not."""
    label = _TEXT_ZH.get(name, name)
    if len(text) > most:
        raise Invalid(
            f"{label}最多 {most} 个字符 / the {name} has at most {most} characters", field=name
        )
    if why := control_character(text):
        raise Invalid(f"{label}含不可见的控制字符 / the {name} {why}", field=name)


async def _locked_line(
    conn: Conn, org_id: int, line_id: int, allowed: tuple[str, ...]
) -> asyncpg.Record:
    """The organisation's line, locked; 409 unless its status is one of `allowed`."""
    line = await conn.fetchrow(Q.line_locked, line_id, org_id)
    if line is None:
        raise NotFound("no such statement line")
    if line["status"] not in allowed:
        status = line["status"]
        done = "set aside already" if status == "set_aside" else f"settled already ({status})"
        status_zh = _zh(f"recon.line.{status}")
        done_zh = f"已{status_zh}" if status == "set_aside" else f"已对账（{status_zh}）"
        raise Conflict(
            f"对账单 {line['statement_id']} 第 {line['line_no']} 行{done_zh} / "
            f"line {line['line_no']} of statement {line['statement_id']} is {done}",
            code="settled_already",
        )
    return line


# --- reading -----------------------------------------------------------------------------------


async def list_statements(conn: Conn, org_id: int, limit: int = 100) -> list[StatementOut]:
    return [_statement_out(r) for r in await conn.fetch(Q.statements_of_org, org_id, None, limit)]


async def statement_detail(conn: Conn, org_id: int, statement_id: int) -> StatementDetail:
    """Another organisation's statement is 404."""
    row = await conn.fetchrow(Q.statements_of_org, org_id, statement_id, 1)
    if row is None:
        raise NotFound("no such statement")
    lines = await conn.fetch(Q.lines, org_id, statement_id, None, MAX_LINES, None)
    return StatementDetail(statement=_statement_out(row), lines=[_line_out(r) for r in lines])


async def open_lines(conn: Conn, org_id: int, limit: int = 500) -> list[LineOut]:
    """The exceptions waiting for a person."""
    return await _lines_in(conn, org_id, OPEN_STATUSES, limit)


async def set_aside_lines(conn: Conn, org_id: int, limit: int = 500) -> list[LineOut]:
    return await _lines_in(conn, org_id, ("set_aside",), limit)


async def _lines_in(
    conn: Conn, org_id: int, statuses: tuple[str, ...], limit: int
) -> list[LineOut]:
    rows = await conn.fetch(Q.lines, org_id, None, list(statuses), limit, None)
    return [_line_out(r) for r in rows]


async def org_payouts(
    conn: Conn, org_id: int, status: str | None = None, limit: int = 1000
) -> list[PayoutOut]:
    """The organisation's own payouts (a pool's pools', a bank's), oldest first."""
    rows = await conn.fetch(
        Q.payout_rows, org_id, None, False, None, status, False, limit, None, None
    )
    return [_payout_out(r) for r in rows]


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
        raise Invalid(
            f"截止日期（{last}）早于起始日期（{first}） / "
            f"the period ends ({last}) before it starts ({first})",
            field="until",
        )
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
        raise Invalid(
            f"{_TEXT_ZH.get(name, name)}：日期格式为 YYYY-MM-DD，如 2026-01-31；"
            f"收到的是 {text!r} / "
            f"{name}: a date as YYYY-MM-DD, e.g. 2026-01-31; got {text!r}",
            field=name,
        ) from None


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
    return found["code"], [_payout_out(r) for r in rows]


async def bank_statement(
    conn: Conn, org_id: int, org_kind: str, within: Period = ALL_TIME
) -> list[PayoutOut]:
    """Every payout to the bank in the period (costs repaid, its part of each recovery)."""
    if org_kind != "bank":
        raise Forbidden(
            "本行回款对账表仅供银行导出；资金池请按资金池导出 / "
            "a bank's statement is for banks; a pool exports per pool"
        )
    rows = await conn.fetch(
        Q.payout_rows, org_id, None, True, None, None, True, EXPORT_LIMIT, *within.bounds()
    )
    return [_payout_out(r) for r in rows]


async def case_statement(
    conn: Conn, org_id: int, case_id: int, within: Period = ALL_TIME
) -> tuple[str, list[PayoutOut]]:
    """The payouts of one case in the period: all of them for the bank owning the case
    (its waterfall); only its own for anyone else, and 404 if it has none there at all."""
    case = await conn.fetchrow(Q.case_owner, case_id)
    if case is None:
        raise NotFound("no such case")
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
        raise NotFound("no such case")
    return case["reference"], [_payout_out(r) for r in rows]
