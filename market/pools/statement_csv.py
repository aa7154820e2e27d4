"""Reading a bank statement file for reconciliation (docs/rules.md §Reconciliation): the
columns the import knows (`COLUMNS`) and the header names it accepts for each, and
`parse_statement`, which turns the uploaded bytes into validated `StatementLine`s or
rejects the whole file.

The file is decoded as UTF-8 with or without BOM, or GB18030 as Chinese Excel and bank
portals save it. The header row is the first of the top HEADER_SEARCH_ROWS rows naming a
date and an amount column (portals put account details above it); columns the import does
not know are ignored. Every line is validated; if any line is bad, `Invalid`
("statement_rejected", 422) lists each problem as a `LineProblem` (its code, the line, the
column key as `field`, the header as written in the file as the `column` parameter) and
the caller writes nothing. Outgoing payments in the file (a debit column filled, or a
negative amount) and totals rows are skipped; outgoing ones are counted.

Pure: no database. market.pools.reconciliation records what this reads;
market.pools.matching classifies it.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from market.collateral.csv_import import cell_text, decode
from market.errors import AppError, BadValue, Invalid, LineProblem
from market.money import parse_cny

MAX_FILE_BYTES: Final = 5 * 1024 * 1024
MAX_LINES: Final = 20_000
HEADER_SEARCH_ROWS: Final = 30  # bank portals put account details above the header
MAX_REFERENCE: Final = 500
MAX_COUNTERPARTY: Final = 200
MAX_TXN_ID: Final = 64
PROBLEM_LIMIT: Final = 200  # problems listed (the first by line); all are counted
_PROBLEMS_HELD: Final = 5_000  # kept while reading, so the ones listed are the first by line


@dataclass(frozen=True)
class Column:
    """A column the import reads. `zh` and `en` are the headers the example statement
    writes (names in the file format, which the import accepts, not texts to translate)."""

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
# Control characters a cell may not hold (a NUL cannot even be stored); line breaks and
# tabs inside a quoted cell are whitespace, folded like spaces.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
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
    outgoing: int  # outgoing payments in the file, not among `lines`
    # Those of them whose date and amount read cleanly (the clearing account matches them
    # to payment instructions, market/payments/outgoing.py); the rest are only counted.
    paid_out: list[StatementLine] = field(default_factory=list)


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
    return cell_text(cells, slot.index)


def control_character(text: str) -> str | None:
    """The first control character of a text as U+XXXX (a NUL cannot even be stored), or
    None when it has none."""
    m = _CONTROL.search(text)
    return f"U+{ord(m[0]):04X}" if m else None


def check_size(data: bytes) -> None:
    """An upload is a file of at most MAX_FILE_BYTES."""
    if not data:
        raise Invalid("statement_empty", field="file")
    if len(data) > MAX_FILE_BYTES:
        raise Invalid("statement_too_large", field="file", max_mb=MAX_FILE_BYTES // (1024 * 1024))


def parse_date(text: str) -> date:
    """A value date as portals write it (2026-01-05, 2026/1/5, 2026年1月5日, 20260105, with
    or without a time); BadValue otherwise."""
    m = _DATE.fullmatch(unicodedata.normalize("NFKC", text).strip())
    if m is None:
        raise BadValue("statement_not_a_date", text=text)
    month, day = (m["m"], m["d"]) if m["m"] else (m["m2"], m["d2"])
    try:
        return date(int(m["y"]), int(month), int(day))
    except ValueError:
        raise BadValue("statement_no_such_day", text=text) from None


def _negative(text: str) -> bool:
    t = unicodedata.normalize("NFKC", text).strip()
    return t.startswith(("-", "\u2212")) or (t.startswith("(") and t.endswith(")"))


class Problems:
    """The problems of a file: all counted, the first PROBLEM_LIMIT by line (then by the
    column order of COLUMNS) listed."""

    def __init__(self) -> None:
        self.count = 0
        self.items: list[LineProblem] = []
        self._order = {c.key: i for i, c in enumerate(COLUMNS)}

    def add(
        self, code: str, *, line: int | None = None, field: str | None = None, **params: Any
    ) -> None:
        self.count += 1
        if len(self.items) < _PROBLEMS_HELD:
            self.items.append(LineProblem(code=code, line=line, field=field, params=params))

    def cell(self, line: int, key: str, header: str, code: str, **params: Any) -> None:
        """A problem of one cell: the line, the column's key and its header in the file."""
        self.add(code, line=line, field=key, column=header, **params)

    def rejection(self, filename: str) -> Invalid:
        listed = sorted(self.items, key=lambda p: (p.line or 0, self._order.get(p.field or "", -1)))
        return Invalid(
            "statement_rejected",
            field="file",
            problems=listed[:PROBLEM_LIMIT],
            filename=filename,
            count=self.count,
        )


def parse_statement(data: bytes, *, today: date, filename: str) -> ParsedStatement:
    """Decode and check every line; Invalid ("statement_rejected", 422) listing each
    problem by line and column if any line is bad — nothing is written then."""
    found = Problems()
    try:
        text, encoding = decode(data)
    except AppError as exc:
        found.add(exc.code, field="file", **exc.params)
        raise found.rejection(filename) from None
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        found.add("statement_bad_csv", field="file")
        raise found.rejection(filename) from None
    header_at = -1
    layout: dict[str, list[_Slot]] = {}
    for i, cells in enumerate(records[:HEADER_SEARCH_ROWS]):
        candidate, twice = _layout(cells)
        if "value_date" in candidate and "amount" in candidate:
            header_at, layout = i, candidate
            for cell in twice:
                found.add("statement_column_twice", line=i + 1, column=cell)
            break
    if header_at < 0:
        first = records[0][0] if records and records[0] else ""
        one_column = len(records[0] if records else []) == 1
        commas = one_column and any(s in first for s in ";\t|")
        found.add("statement_no_header_commas" if commas else "statement_no_header", line=1)
        raise found.rejection(filename)
    if "reference" not in layout:
        found.add("statement_reference_missing", line=header_at + 1, field="reference")
    if found.count:
        raise found.rejection(filename)
    data_rows = [
        (n, cells)
        for n, cells in enumerate(records[header_at + 1 :], start=header_at + 2)
        if any(c.strip() for c in cells)
    ]
    if len(data_rows) > MAX_LINES:
        found.add("statement_too_many_lines", field="file", max=MAX_LINES)
        raise found.rejection(filename)
    lines: list[StatementLine] = []
    paid_out: list[StatementLine] = []
    outgoing = 0
    txn_lines: dict[str, int] = {}
    for line_no, cells in data_rows:
        first_cell = next(c for c in cells if c.strip())
        if normalise_header(first_cell).upper().rstrip(":") in _TOTAL_ROWS:
            continue  # the portal's totals row
        before = found.count

        def bad(key: str, code: str, line_no: int = line_no, **params: Any) -> None:
            found.cell(line_no, key, layout[key][0].header, code, **params)

        amount_text = _cell(cells, layout["amount"][0])
        debit_text = _cell(cells, layout["debit"][0]) if "debit" in layout else ""
        if (not amount_text and debit_text) or (amount_text and _negative(amount_text)):
            outgoing += 1  # money paid out, not a transfer received
            if out := _paid_out(cells, layout, line_no, amount_text or debit_text, today):
                paid_out.append(out)
            continue
        for key, slots in layout.items():
            for slot in slots:
                if char := control_character(_cell(cells, slot)):
                    found.cell(line_no, key, slot.header, "control_character_in_text", char=char)
        if found.count > before:
            continue  # the line's other checks would quote the same bad cell
        amount = 0
        if not amount_text:
            bad("amount", "required")
        else:
            try:
                amount = parse_cny(amount_text)
            except AppError as exc:
                bad("amount", exc.code, **exc.params)
            else:
                if amount == 0:
                    bad("amount", "statement_amount_zero")
        day = today
        day_text = _cell(cells, layout["value_date"][0])
        if not day_text:
            bad("value_date", "required")
        else:
            try:
                day = parse_date(day_text)
            except AppError as exc:
                bad("value_date", exc.code, **exc.params)
            else:
                if day > today:
                    bad(
                        "value_date",
                        "statement_date_in_future",
                        date=day.isoformat(),
                        today=today.isoformat(),
                    )
        if "currency" in layout:
            currency = _cell(cells, layout["currency"][0])
            if currency and unicodedata.normalize("NFKC", currency).upper() not in _CNY:
                bad("currency", "statement_currency_not_cny", currency=currency)
        ref = " ".join(
            " ".join(_cell(cells, s).split()) for s in layout["reference"] if _cell(cells, s)
        )
        if len(ref) > MAX_REFERENCE:
            bad("reference", "too_long", max=MAX_REFERENCE)
        party = ""
        if "counterparty" in layout:
            party = " ".join(_cell(cells, layout["counterparty"][0]).split())
        if len(party) > MAX_COUNTERPARTY:
            bad("counterparty", "too_long", max=MAX_COUNTERPARTY)
        txn: str | None = None
        if "bank_txn_id" in layout:
            txn = _cell(cells, layout["bank_txn_id"][0]) or None
            if txn is not None:
                if _SCIENTIFIC.fullmatch(txn):
                    bad("bank_txn_id", "statement_txn_scientific", txn=txn)
                elif len(txn) > MAX_TXN_ID:
                    bad("bank_txn_id", "too_long", max=MAX_TXN_ID)
                elif txn in txn_lines:
                    bad("bank_txn_id", "statement_txn_twice", txn=txn, first_line=txn_lines[txn])
                else:
                    txn_lines[txn] = line_no
        if found.count == before:
            lines.append(StatementLine(line_no, day, amount, ref, party, txn))
    if found.count:
        raise found.rejection(filename)
    if not lines and not outgoing:
        found.add("statement_no_transfers", line=header_at + 2)
        raise found.rejection(filename)
    return ParsedStatement(encoding, lines, outgoing, paid_out)


def _paid_out(
    cells: Sequence[str], layout: dict[str, list[_Slot]], line_no: int, amount: str, today: date
) -> StatementLine | None:
    """An outgoing payment as a line (its amount positive), or None when its date or amount
    does not read cleanly: outgoing lines are never a reason to reject a file."""
    text = unicodedata.normalize("NFKC", amount).strip().lstrip("-\u2212").strip("()")
    try:
        fen = parse_cny(text)
        day = parse_date(_cell(cells, layout["value_date"][0]))
    except AppError:
        return None
    ref = " ".join(
        " ".join(_cell(cells, s).split()) for s in layout["reference"] if _cell(cells, s)
    )
    party = _cell(cells, layout["counterparty"][0]) if "counterparty" in layout else ""
    txn = _cell(cells, layout["bank_txn_id"][0]) if "bank_txn_id" in layout else ""
    fits = (
        fen > 0
        and day <= today
        and len(ref) <= MAX_REFERENCE
        and len(party) <= MAX_COUNTERPARTY
        and len(txn) <= MAX_TXN_ID
        and not any(control_character(t) for t in (ref, party, txn))
    )
    if not fits:
        return None
    return StatementLine(line_no, day, fen, ref, " ".join(party.split()), txn or None)
