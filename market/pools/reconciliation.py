"""Reconciliation: bank statements of the transfers a pool or a bank actually received,
matched to the payouts the waterfall said it would receive (issue 6 item 4).

The flow of an import: decode the CSV (UTF-8 with or without BOM, or GB18030 as Chinese
Excel and bank portals save it) → validate every line → if any line is bad, reject the
whole file with (line, column, reason) and write nothing → otherwise, in ONE transaction,
record the statement and its lines, each classified:

* matched — the 附言 (reference) carries the reference of one of the organisation's
  expected payouts (case- and space-insensitive), the amount is the same and the value
  date is not before the day the payout was created (Asia/Shanghai). The payout is marked
  received (market.pools.services.mark_payout_received posts the ledger entry) in the
  same transaction;
* amount_mismatch — the reference is found but the amount differs (the reason says
  expected vs got);
* reference_typo — no reference found, but an open payout's reference is within edit
  distance 2 (insert, delete, substitute, swap two neighbours) of a word of the 附言, or,
  failing that, exactly one open payout has the same amount: that payout is the line's
  candidate, named in the reason;
* unknown — nothing fits (or the reference is of a payout received or cancelled already,
  or of one another line of the same file just settled: a second transfer).

Exceptions (everything but matched) wait for a person, who matches a line by hand to an
expected payout of their own organisation with the same amount (status manual); that is
audited and marks the payout received.

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
  payout is still expected; mark_payout_received locks the payout again (same
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

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Literal

import asyncpg
import msgspec

from market import audit, i18n
from market.cases.policy import CHINA
from market.cases.services import china_today
from market.collateral.csv_import import ImportRejected, _Undecodable, clean_filename, decode
from market.collateral.models import RowError
from market.db import Conn, Queries, returned
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.money import format_cny, parse_cny
from market.pools import services

Q = Queries("reconciliation")

LineStatus = Literal["matched", "amount_mismatch", "reference_typo", "unknown", "manual"]
OPEN_STATUSES: Final = ("amount_mismatch", "reference_typo", "unknown")
IMPORT_LOCK: Final = 7_240_006  # first key of the two-key advisory lock (see locks.py)
MAX_FILE_BYTES: Final = 5 * 1024 * 1024
MAX_LINES: Final = 20_000
ERROR_LIMIT: Final = 200
HEADER_SEARCH_ROWS: Final = 30  # bank portals put account details above the header
MAX_TYPO_DISTANCE: Final = 2
DEFAULT_FILENAME: Final = "statement.csv"
MAX_REFERENCE: Final = 500
MAX_COUNTERPARTY: Final = 200
MAX_TXN_ID: Final = 64


def reason(zh: str, en: str) -> str:
    """A stored reason: Chinese first, then English (`reason_in` picks one)."""
    return f"{zh} / {en}"


def reason_in(text: str, lang: str) -> str:
    zh, sep, en = text.partition(" / ")
    if not sep:
        return text
    return en if lang == "en" else zh


# --- reading the file ----------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    aliases: tuple[str, ...]  # normalised header names, by preference


COLUMNS: Final = (
    Column(
        "value_date",
        "交易日期",
        "date",
        (
            "起息日",
            "入账日期",
            "记账日期",
            "交易日期",
            "日期",
            "交易时间",
            "valuedate",
            "bookingdate",
            "date",
            "transactiondate",
            "txndate",
        ),
    ),
    Column(
        "amount",
        "金额",
        "amount",
        (
            "收入金额",
            "贷方金额",
            "贷方发生额",
            "入账金额",
            "收入",
            "金额",
            "交易金额",
            "creditamount",
            "credit",
            "amount",
        ),
    ),
    Column(
        "debit",
        "支出金额",
        "debit",
        ("支出金额", "借方金额", "借方发生额", "支出", "debitamount", "debit"),
    ),
    Column(
        "reference",
        "附言",
        "reference",
        (
            "附言",
            "交易附言",
            "汇款附言",
            "用途",
            "备注",
            "摘要",
            "reference",
            "memo",
            "remark",
            "remarks",
            "purpose",
            "description",
            "narrative",
        ),
    ),
    Column(
        "counterparty",
        "对方户名",
        "counterparty",
        (
            "对方户名",
            "对方账户名",
            "对方账户名称",
            "对方名称",
            "付款人",
            "付款人名称",
            "付款方",
            "counterparty",
            "payer",
            "payername",
        ),
    ),
    Column(
        "bank_txn_id",
        "流水号",
        "bank txn id",
        (
            "流水号",
            "交易流水号",
            "银行流水号",
            "交易序号",
            "transactionid",
            "txnid",
            "banktxnid",
            "banktransactionid",
        ),
    ),
    Column("currency", "币种", "currency", ("币种", "货币", "currency")),
)
BY_KEY: Final = {c.key: c for c in COLUMNS}
_ALIAS: Final = {alias: (c, rank) for c in COLUMNS for rank, alias in enumerate(c.aliases)}
_CNY: Final = frozenset({"CNY", "RMB", "人民币", "156", "元"})
_TOTAL_ROWS: Final = frozenset({"合计", "总计", "小计", "本页合计", "TOTAL", "SUBTOTAL"})
_SCIENTIFIC: Final = re.compile(r"[0-9](?:\.[0-9]+)?E\+?[0-9]+", re.IGNORECASE)
_FORMULA_TEXT: Final = re.compile(r'="(.*)"', re.DOTALL)
_DATE: Final = re.compile(
    r"(?P<y>[0-9]{4})(?:[-/.年](?P<m>[0-9]{1,2})[-/.月](?P<d>[0-9]{1,2})日?"
    r"|(?P<m2>[0-9]{2})(?P<d2>[0-9]{2}))(?:$|[ T].*)"
)


def normalise_header(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell).replace("\ufeff", "").lower()
    text = re.sub(r"\(.*?\)|\[.*?\]", "", text)  # 金额(元), amount (CNY)
    return re.sub(r"[\s_\-.:]+", "", text)


@dataclass(frozen=True)
class StatementLine:
    """One validated incoming transfer; line_no as the spreadsheet numbers it."""

    line_no: int
    value_date: date
    amount_fen: int
    reference: str
    counterparty: str
    bank_txn_id: str | None


@dataclass(frozen=True)
class ParsedStatement:
    encoding: str
    lines: list[StatementLine]
    outgoing: int  # outgoing payments in the file, skipped


class _Errors:
    def __init__(self) -> None:
        self.count = 0
        self.items: list[RowError] = []

    def add(self, line: int, column: str, key: str, why: str) -> None:
        self.count += 1
        if len(self.items) < 5_000:
            self.items.append(RowError(line=line, column=column, key=key, reason=why))

    def first(self) -> list[RowError]:
        order = {c.key: i for i, c in enumerate(COLUMNS)}
        return sorted(self.items, key=lambda e: (e.line, order.get(e.key, -1)))[:ERROR_LIMIT]


@dataclass(frozen=True)
class _Slot:
    index: int
    header: str  # as written in the file


def _layout(cells: Sequence[str]) -> tuple[dict[str, list[_Slot]], list[str]]:
    """The known columns of a header row (by key, preferred first) and duplicates."""
    found: dict[str, list[tuple[int, _Slot]]] = {}
    seen: dict[str, str] = {}
    twice: list[str] = []
    for index, cell in enumerate(cells):
        name = normalise_header(cell)
        hit = _ALIAS.get(name)
        if hit is None:
            continue  # a statement has many other columns (balance, account, …): ignored
        column, rank = hit
        if name in seen and column.key != "reference":
            twice.append(cell.strip())
        seen[name] = cell.strip()
        found.setdefault(column.key, []).append((rank, _Slot(index, cell.strip())))
    layout = {}
    for key, slots in found.items():
        # the reference is every reference-like column, in file order; others: the best
        layout[key] = (
            [s for _, s in slots] if key == "reference" else [min(slots, key=lambda x: x[0])[1]]
        )
    return layout, twice


def _cell(cells: Sequence[str], slot: _Slot) -> str:
    cell = cells[slot.index].strip() if slot.index < len(cells) else ""
    if cell.startswith('="'):
        m = _FORMULA_TEXT.fullmatch(cell)
        cell = m[1].strip() if m else cell
    return cell


def parse_date(text: str) -> date:
    m = _DATE.fullmatch(unicodedata.normalize("NFKC", text).strip())
    if m is None:
        raise ValueError(f"'{text}' is not a date; write it as 2026-01-05")
    month, day = (m["m"], m["d"]) if m["m"] else (m["m2"], m["d2"])
    try:
        return date(int(m["y"]), int(month), int(day))
    except ValueError:
        raise ValueError(f"'{text}' is not a calendar date") from None


def _negative(text: str) -> bool:
    t = unicodedata.normalize("NFKC", text).strip()
    return t.startswith(("-", "\u2212")) or (t.startswith("(") and t.endswith(")"))


def parse_statement(data: bytes, *, today: date, filename: str) -> ParsedStatement:
    """Decode and check every line; ImportRejected (422) naming line and column if any
    line is bad — nothing is written then."""
    errs = _Errors()

    def reject() -> ImportRejected:
        return ImportRejected(filename, errs.first(), errs.count)

    try:
        text, encoding = decode(data)
    except _Undecodable as exc:
        errs.add(0, "", "", str(exc))
        raise reject() from None
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        errs.add(0, "", "", f"not a valid CSV file: {exc}")
        raise reject() from None
    header_at = -1
    layout: dict[str, list[_Slot]] = {}
    for i, cells in enumerate(records[:HEADER_SEARCH_ROWS]):
        candidate, twice = _layout(cells)
        if "value_date" in candidate and "amount" in candidate:
            header_at, layout = i, candidate
            for cell in twice:
                errs.add(i + 1, cell, "", f"column '{cell}' appears twice")
            break
    if header_at < 0:
        first = records[0][0] if records and records[0] else ""
        hint = ""
        if len(records[0] if records else []) == 1 and any(s in first for s in ";\t|"):
            hint = "; columns must be separated by commas"
        errs.add(
            1,
            "",
            "",
            "no header row found: the file needs the columns 交易日期 (date), 金额 (amount) "
            f"and 附言 (reference){hint}",
        )
        raise reject()
    if "reference" not in layout:
        errs.add(
            header_at + 1,
            "附言",
            "reference",
            "required column is missing: add '附言' (or 'reference'), the transfer's message",
        )
    if errs.count:
        raise reject()
    data_rows = [
        (n, cells)
        for n, cells in enumerate(records[header_at + 1 :], start=header_at + 2)
        if any(c.strip() for c in cells)
    ]
    if len(data_rows) > MAX_LINES:
        errs.add(0, "", "", f"a statement may have at most {MAX_LINES:,} lines; split it")
        raise reject()
    lines: list[StatementLine] = []
    outgoing = 0
    txn_lines: dict[str, int] = {}
    for line_no, cells in data_rows:
        first_cell = next(c for c in cells if c.strip())
        if normalise_header(first_cell).upper().rstrip(":") in _TOTAL_ROWS:
            continue  # the portal's totals row
        before = errs.count

        def err(key: str, why: str, line_no: int = line_no) -> None:
            slot = layout[key][0] if key in layout else None
            errs.add(line_no, slot.header if slot else BY_KEY[key].zh, key, why)

        amount_text = _cell(cells, layout["amount"][0])
        debit_text = _cell(cells, layout["debit"][0]) if "debit" in layout else ""
        if (not amount_text and debit_text) or (amount_text and _negative(amount_text)):
            outgoing += 1  # money paid out, not a transfer received
            continue
        amount = 0
        if not amount_text:
            err("amount", "required; this cell cannot be empty")
        else:
            try:
                amount = parse_cny(amount_text)
            except ValueError as exc:
                err("amount", str(exc))
            else:
                if amount == 0:
                    err("amount", "a transfer received is a positive amount")
        day = today
        day_text = _cell(cells, layout["value_date"][0])
        if not day_text:
            err("value_date", "required; this cell cannot be empty")
        else:
            try:
                day = parse_date(day_text)
            except ValueError as exc:
                err("value_date", str(exc))
            else:
                if day > today:
                    err("value_date", f"{day.isoformat()} is after today ({today.isoformat()})")
        if "currency" in layout:
            currency = _cell(cells, layout["currency"][0])
            if currency and unicodedata.normalize("NFKC", currency).upper() not in _CNY:
                err("currency", f"only transfers in CNY are reconciled, not '{currency}'")
        ref = " ".join(
            " ".join(_cell(cells, s).split()) for s in layout["reference"] if _cell(cells, s)
        )
        if len(ref) > MAX_REFERENCE:
            err("reference", f"at most {MAX_REFERENCE} characters")
        party = ""
        if "counterparty" in layout:
            party = " ".join(_cell(cells, layout["counterparty"][0]).split())
        if len(party) > MAX_COUNTERPARTY:
            err("counterparty", f"at most {MAX_COUNTERPARTY} characters")
        txn: str | None = None
        if "bank_txn_id" in layout:
            txn = _cell(cells, layout["bank_txn_id"][0]) or None
            if txn is not None:
                if _SCIENTIFIC.fullmatch(txn):
                    err(
                        "bank_txn_id",
                        f"'{txn}' is a number Excel wrote in scientific notation; "
                        "format the column as text and export it again",
                    )
                elif len(txn) > MAX_TXN_ID:
                    err("bank_txn_id", f"at most {MAX_TXN_ID} characters")
                elif txn in txn_lines:
                    err(
                        "bank_txn_id",
                        f"transaction {txn} is listed twice (also line {txn_lines[txn]})",
                    )
                else:
                    txn_lines[txn] = line_no
        if errs.count == before:
            lines.append(StatementLine(line_no, day, amount, ref, party, txn))
    if errs.count:
        raise reject()
    if not lines and not outgoing:
        errs.add(header_at + 2, "", "", "the file has a header but no transfers")
        raise reject()
    return ParsedStatement(encoding, lines, outgoing)


# --- classification (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """A payout as classification sees it."""

    id: int
    reference: str
    amount_fen: int
    status: str  # expected | received | reversed
    created_on: date  # Asia/Shanghai
    received_on: date | None = None


@dataclass(frozen=True)
class Outcome:
    status: LineStatus
    reason: str
    payout_id: int | None = None
    candidate_id: int | None = None


_TOKEN: Final = re.compile(r"[A-Z0-9]+")


def reference_tokens(text: str) -> list[str]:
    """The words of a 附言 that may be a transfer reference: upper-cased, full-width folded,
    also with spaces and dashes removed ("hk7k x3m9-pq2r" → HK7KX3M9PQ2R)."""
    folded = unicodedata.normalize("NFKC", text).upper()
    out: list[str] = []
    for variant in (folded, re.sub(r"[\s\-_/]+", "", folded)):
        for token in _TOKEN.findall(variant):
            if token not in out:
                out.append(token)
    return out


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours),
    or limit + 1 as soon as it must exceed the limit (a row's minimum never decreases)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            value = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, before[j - 2] + 1)
            cur[j] = value
        if min(cur) > limit:
            return limit + 1
        before, prev = prev, cur
    return min(prev[-1], limit + 1)


def _quote(text: str) -> str:
    return text if len(text) <= 40 else text[:39] + "…"


def classify(
    lines: Sequence[StatementLine],
    payouts: Sequence[Expected],
    received_where: Mapping[int, tuple[int, int]] | None = None,
) -> list[Outcome]:
    """Classify each line against the organisation's payouts: those whose reference the
    file mentions (any status) and every open one. `received_where` says on which
    (statement, line) a received payout was settled, for the reason. Exact references
    are matched first, in file order; typo and amount candidates are then sought among
    the payouts still open."""
    received_where = received_where or {}
    by_ref = {p.reference.upper(): p for p in payouts}
    taken: dict[int, int] = {}  # payout id → line of this file that settled it
    out: list[Outcome | None] = [None] * len(lines)
    pending: list[int] = []
    for i, line in enumerate(lines):
        hits = [by_ref[t] for t in reference_tokens(line.reference) if t in by_ref]
        if not hits:
            pending.append(i)
            continue
        hit = min(
            hits,
            key=lambda p: (
                p.status != "expected" or p.id in taken,
                p.amount_fen != line.amount_fen,
                p.id,
            ),
        )
        out[i] = _exact(line, hit, taken, received_where)
    still_open = [p for p in payouts if p.status == "expected" and p.id not in taken]
    masks = [char_mask(p.reference.upper()) for p in still_open] if pending else []
    for i in pending:
        out[i] = _inexact(lines[i], still_open, masks)
    return [o for o in out if o is not None]


def _exact(
    line: StatementLine,
    p: Expected,
    taken: dict[int, int],
    received_where: Mapping[int, tuple[int, int]],
) -> Outcome:
    ref, got = p.reference, format_cny(line.amount_fen)
    if p.id in taken:
        return Outcome(
            "unknown",
            reason(
                f"{ref} 已由本对账单第 {taken[p.id]} 行匹配，本行可能是重复转账",
                f"{ref} was matched by line {taken[p.id]} of this statement: a second transfer?",
            ),
        )
    if p.status == "received":
        where_zh = where_en = ""
        if p.id in received_where:
            s, n = received_where[p.id]
            where_zh, where_en = f"（对账单 {s} 第 {n} 行）", f" (statement {s}, line {n})"
        on = p.received_on.isoformat() if p.received_on else ""
        return Outcome(
            "unknown",
            reason(
                f"{ref} 已于 {on} 到账{where_zh}，本行可能是重复转账",
                f"{ref} was received already on {on}{where_en}: a second transfer?",
            ),
        )
    if p.status != "expected":
        return Outcome(
            "unknown",
            reason(
                f"{ref} 对应的回款已冲销，不再应收",
                f"{ref} is no longer expected: its receipt was reversed",
            ),
        )
    if p.amount_fen != line.amount_fen:
        want = format_cny(p.amount_fen)
        diff = format_cny(line.amount_fen - p.amount_fen)
        return Outcome(
            "amount_mismatch",
            reason(
                f"{ref} 应收 {want}，实收 {got}（差额 {diff}）",
                f"{ref} expects {want}, got {got} (difference {diff})",
            ),
            candidate_id=p.id,
        )
    if line.value_date < p.created_on:
        day, since = line.value_date.isoformat(), p.created_on.isoformat()
        return Outcome(
            "unknown",
            reason(
                f"入账日期 {day} 早于 {ref} 产生之日 {since}，请人工核对",
                f"value date {day} is before {ref} was due ({since}); check it by hand",
            ),
            candidate_id=p.id,
        )
    taken[p.id] = line.line_no
    return Outcome(
        "matched",
        reason(
            f"与 {ref} 的附言、金额 {got} 和日期一致", f"reference, amount {got} and date fit {ref}"
        ),
        payout_id=p.id,
    )


def char_mask(text: str) -> int:
    """The set of characters of a reference as bits (6 bits of each code point: two
    characters may share a bit, which only lets more pairs through to the real check)."""
    mask = 0
    for ch in text:
        mask |= 1 << (ord(ch) & 63)
    return mask


def _inexact(line: StatementLine, still_open: Sequence[Expected], masks: Sequence[int]) -> Outcome:
    got, said = format_cny(line.amount_fen), _quote(line.reference)
    best: tuple[bool, int, int, Expected] | None = None
    tokens = [(t, char_mask(t)) for t in reference_tokens(line.reference)]
    for p, mask in zip(still_open, masks, strict=True):
        ref = p.reference.upper()
        for token, token_mask in tokens:
            # Each edit brings in at most one character the other side lacks: a cheap
            # filter before the distance itself.
            if (
                abs(len(token) - len(ref)) > MAX_TYPO_DISTANCE
                or (token_mask & ~mask).bit_count() > MAX_TYPO_DISTANCE
                or (mask & ~token_mask).bit_count() > MAX_TYPO_DISTANCE
            ):
                continue
            d = edit_distance(token, ref, MAX_TYPO_DISTANCE)
            if d <= MAX_TYPO_DISTANCE:
                key = (p.amount_fen != line.amount_fen, d, p.id, p)
                if best is None or key[:3] < best[:3]:
                    best = key
    if best is not None:
        differs, d, _, p = best
        amount_zh = f"金额不符：应收 {format_cny(p.amount_fen)}" if differs else f"金额 {got} 一致"
        amount_en = (
            f"amount differs: it expects {format_cny(p.amount_fen)}"
            if differs
            else f"same amount {got}"
        )
        return Outcome(
            "reference_typo",
            reason(
                f"附言「{said}」没有对应的应收款；最接近的是 {p.reference}"
                f"（相差 {d} 个字符，{amount_zh}）",
                f"reference '{said}' fits no transfer; the closest open one is {p.reference} "
                f"({d} character{'s' if d > 1 else ''} off, {amount_en})",
            ),
            candidate_id=p.id,
        )
    same = [
        p for p in still_open if p.amount_fen == line.amount_fen and p.created_on <= line.value_date
    ]
    if len(same) == 1:
        p = same[0]
        return Outcome(
            "reference_typo",
            reason(
                f"附言「{said}」中没有应收款编号；金额 {got} 与唯一一笔未到账的 {p.reference} 相同",
                f"no transfer reference in '{said}'; the amount {got} is that of the only "
                f"open transfer {p.reference}",
            ),
            candidate_id=p.id,
        )
    if same:
        return Outcome(
            "unknown",
            reason(
                f"附言「{said}」中没有应收款编号；金额 {got} 与 {len(same)} 笔未到账应收款相同，"
                "请人工匹配",
                f"no transfer reference in '{said}'; the amount {got} fits {len(same)} open "
                "transfers: match it by hand",
            ),
        )
    return Outcome(
        "unknown",
        reason(
            f"附言「{said}」和金额 {got} 都对应不上任何未到账应收款",
            f"neither the reference '{said}' nor the amount {got} fits an open transfer",
        ),
    )


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
    matched_by: str | None  # a person's name for a manual match
    matched_at: datetime | None


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
    reference: str | None = None
    note: str = ""


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
    zh, _, en = r["reason"].partition(" / ")
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
        reason_en=en or zh,
        payout_id=r["payout_id"],
        payout_reference=r["payout_reference"],
        candidate_id=r["candidate_id"],
        candidate_reference=r["candidate_reference"],
        candidate_amount_fen=r["candidate_amount_fen"],
        matched_by=r["matched_by_name"],
        matched_at=r["matched_at"],
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
        raise Forbidden("only approved pools and banks reconcile bank statements")


# --- writing ---------------------------------------------------------------------------------


def _day(at: datetime) -> date:
    return at.astimezone(CHINA).date()


def _expected(r: asyncpg.Record) -> Expected:
    return Expected(
        id=r["id"],
        reference=r["reference"],
        amount_fen=r["amount_fen"],
        status=r["status"],
        created_on=_day(r["created_at"]),
        received_on=_day(r["received_at"]) if r["received_at"] else None,
    )


def check_upload(data: bytes) -> None:
    if not data:
        raise Invalid("the file is empty", field="file")
    if len(data) > MAX_FILE_BYTES:
        raise Invalid(
            f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it",
            field="file",
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
    check_upload(data)
    parsed = parse_statement(data, today=china_today(at), filename=name)
    if not 0 < org_id < 2**31:
        raise ValueError("organisation ids fit the lock's int4 key")
    await conn.execute(Q.lock_org_statements, IMPORT_LOCK, org_id)
    sha = hashlib.sha256(data).digest()
    total = len(parsed.lines)
    statement = await conn.fetchrow(Q.insert_statement, org_id, name, sha, total, user_id, at)
    if statement is None:
        first = returned(await conn.fetchrow(Q.statement_by_sha, org_id, sha))
        raise Conflict(
            f"{name} was imported already as statement {first['id']} "
            f"({first['filename']}, {_day(first['imported_at']).isoformat()}); "
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
    received_where: dict[int, tuple[int, int]] = {}
    for p in mentioned:
        if p.status == "received":
            where = await conn.fetchrow(Q.line_of_payout, p.id)
            if where is not None:
                received_where[p.id] = (where["statement_id"], where["line_no"])
    payouts = {p.id: p for p in map(_expected, await conn.fetch(Q.open_payouts, org_id))}
    payouts.update({p.id: p for p in mentioned})
    outcomes = classify(lines, list(payouts.values()), received_where)
    counts = dict.fromkeys(("matched", *OPEN_STATUSES, "manual"), 0)
    settled: list[str] = []
    for ln, outcome in zip(lines, outcomes, strict=True):
        line_id = await conn.fetchval(
            Q.insert_line,
            statement["id"],
            org_id,
            ln.line_no,
            ln.value_date,
            ln.amount_fen,
            ln.reference,
            ln.counterparty,
            ln.bank_txn_id,
            outcome.status,
            outcome.reason,
            outcome.payout_id,
            outcome.candidate_id,
            None,
            at if outcome.status == "matched" else None,
        )
        if line_id is None:  # cannot happen under the import lock; kept safe anyway
            skipped.append(
                SkippedLine(
                    line_no=ln.line_no,
                    reason=reason(
                        f"流水号 {ln.bank_txn_id} 已导入", f"transaction {ln.bank_txn_id} is known"
                    ),
                )
            )
            continue
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
    organisation, of the same amount; audited, the payout marked received. In the
    caller's transaction: line lock, then payout lock (see the module docstring)."""
    if not conn.is_in_transaction():
        raise RuntimeError("match_line runs inside one transaction")
    line = await conn.fetchrow(Q.line_locked, line_id, org_id)
    if line is None:
        raise NotFound("no such statement line")
    if line["status"] not in OPEN_STATUSES:
        raise Conflict(
            f"line {line['line_no']} of statement {line['statement_id']} is settled already "
            f"({line['status']})",
            code="settled_already",
        )
    ref = normalise_reference(reference or "")
    if payout_id is None and not ref:
        raise Invalid("say which expected transfer this line is: its reference", field="reference")
    found = await conn.fetchrow(Q.owned_payout, org_id, payout_id or 0, ref)
    shown = ref or f"#{payout_id}"
    if found is None:
        raise NotFound(f"you have no transfer {shown}", field="reference")
    payout = returned(await conn.fetchrow(Q.payout_locked, found["id"]))
    if payout["status"] != "expected":
        where = await conn.fetchrow(Q.line_of_payout, payout["id"])
        extra = f" (statement {where['statement_id']}, line {where['line_no']})" if where else ""
        raise Conflict(
            f"transfer {payout['reference']} is {payout['status']} already{extra}",
            field="reference",
            code="not_expected",
        )
    if payout["amount_fen"] != line["amount_fen"]:
        raise Invalid(
            f"line {line['line_no']} received {format_cny(line['amount_fen'])} but "
            f"{payout['reference']} expects {format_cny(payout['amount_fen'])}; a line settles "
            "one transfer of the same amount — settle a difference with the payer",
            field="reference",
            code="amount_differs",
        )
    try:
        settled = returned(await conn.fetchrow(Q.settle_line, line_id, payout["id"], user_id, at))
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"transfer {payout['reference']} is settled by another line already",
            field="reference",
            code="not_expected",
        ) from None
    await services.mark_payout_received(conn, at=at, payout_id=payout["id"])
    await audit.append(
        conn,
        at=at,
        chain_org_id=org_id,
        actor_user_id=user_id,
        actor_org_id=org_id,
        action="statement_line.match",
        object_kind="statement_line",
        object_id=line_id,
        before={
            "status": line["status"],
            "reason": line["reason"],
            "candidate_id": line["candidate_id"],
        },
        after={
            "status": "manual",
            "payout_id": payout["id"],
            "reference": payout["reference"],
            "amount_fen": payout["amount_fen"],
            "note": note.strip(),
        },
    )
    return _line_out(returned(await conn.fetchrow(Q.lines, org_id, None, False, 1, settled["id"])))


# --- reading -----------------------------------------------------------------------------------


async def list_statements(conn: Conn, org_id: int, limit: int = 100) -> list[StatementOut]:
    return [_statement_out(r) for r in await conn.fetch(Q.statements_of_org, org_id, None, limit)]


async def statement_detail(conn: Conn, org_id: int, statement_id: int) -> StatementDetail:
    """Another organisation's statement is 404."""
    row = await conn.fetchrow(Q.statements_of_org, org_id, statement_id, 1)
    if row is None:
        raise NotFound("no such statement")
    lines = await conn.fetch(Q.lines, org_id, statement_id, False, MAX_LINES, None)
    return StatementDetail(statement=_statement_out(row), lines=[_line_out(r) for r in lines])


async def open_lines(conn: Conn, org_id: int, limit: int = 500) -> list[LineOut]:
    return [_line_out(r) for r in await conn.fetch(Q.lines, org_id, None, True, limit, None)]


async def org_payouts(
    conn: Conn, org_id: int, status: str | None = None, limit: int = 1000
) -> list[PayoutOut]:
    """The organisation's own payouts (a pool's pools', a bank's), oldest first."""
    rows = await conn.fetch(Q.payout_rows, org_id, None, False, None, status, False, limit)
    return [_payout_out(r) for r in rows]


async def cases_with_payouts(conn: Conn, org_id: int, limit: int = 200) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q.cases_with_payouts, org_id, limit))


EXPORT_LIMIT: Final = 100_000


async def pool_statement(conn: Conn, org_id: int, pool_id: int) -> tuple[str, list[PayoutOut]]:
    """(pool code, every payout to the pool) for its manager (another's pool: 404)."""
    found = await services.own_pool(conn, org_id, pool_id)
    rows = await conn.fetch(Q.payout_rows, org_id, pool_id, False, None, None, True, EXPORT_LIMIT)
    return found["code"], [_payout_out(r) for r in rows]


async def bank_statement(conn: Conn, org_id: int, org_kind: str) -> list[PayoutOut]:
    """Every payout to the bank (costs repaid, its part of each recovery)."""
    if org_kind != "bank":
        raise Forbidden("a bank's statement is for banks; a pool exports per pool")
    rows = await conn.fetch(Q.payout_rows, org_id, None, True, None, None, True, EXPORT_LIMIT)
    return [_payout_out(r) for r in rows]


async def case_statement(conn: Conn, org_id: int, case_id: int) -> tuple[str, list[PayoutOut]]:
    """The payouts of one case: all of them for the bank owning the case (its waterfall);
    only its own for anyone else, and 404 if it has none there."""
    case = await conn.fetchrow(Q.case_owner, case_id)
    if case is None:
        raise NotFound("no such case")
    owner = case["bank_org_id"] == org_id
    rows = await conn.fetch(Q.payout_rows, org_id, None, False, case_id, None, owner, EXPORT_LIMIT)
    if not owner and not rows:
        raise NotFound("no such case")
    return case["reference"], [_payout_out(r) for r in rows]


# --- CSV export ----------------------------------------------------------------------------------

EXPORT_COLUMNS: Final = (
    "reference",
    "amount",
    "status",
    "case",
    "receipt_kind",
    "payee",
    "created_on",
    "received_on",
    "statement",
    "line_no",
    "value_date",
    "matched",
)


def _safe(text: str) -> str:
    """A cell Excel will not run as a formula (OWASP CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def export_csv(rows: Sequence[PayoutOut], lang: str) -> bytes:
    """The statement of payouts as CSV: UTF-8 with BOM (Excel then reads Chinese), CRLF."""
    _ = i18n.translator(lang)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_(f"recon.export.{c}") for c in EXPORT_COLUMNS])
    for p in rows:
        writer.writerow(
            [
                _safe(p.reference),
                _yuan(p.amount_fen),
                _(f"recon.payout.{p.status}"),
                _safe(p.case_reference),
                _(f"recon.receipt.{p.receipt_kind}"),
                _safe(p.payee),
                _day(p.created_at).isoformat(),
                _day(p.received_at).isoformat() if p.received_at else "",
                str(p.statement_id or ""),
                str(p.line_no or ""),
                p.value_date.isoformat() if p.value_date else "",
                _(f"recon.line.{p.matched}") if p.matched else "",
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def template_csv(lang: str) -> bytes:
    """An example statement with the columns the import reads."""
    if lang == "en":
        head = "date,amount,reference,counterparty,bank txn id"
        row = '2026-01-05,"1,234.56",HK7KX3M9PQ2R,Zhongshan Exchange,202601050001'
    else:
        head = "交易日期,金额,附言,对方户名,流水号"
        row = '2026-01-05,"1,234.56",HK7KX3M9PQ2R 回款,知识产权交易所,202601050001'
    return ("\ufeff" + head + "\r\n" + row + "\r\n").encode("utf-8")


def csv_response_headers(filename: str) -> dict[str, str]:
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return {
        "Content-Disposition": (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
