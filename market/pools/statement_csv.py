"""Reading a bank statement file for reconciliation (issue 6 item 4): the columns the
import knows (`COLUMNS`) and the header names it accepts for each, and `parse_statement`,
which turns the uploaded bytes into validated `StatementLine`s or rejects the whole file.

The file is decoded as UTF-8 with or without BOM, or GB18030 as Chinese Excel and bank
portals save it. The header row is the first of the top HEADER_SEARCH_ROWS rows naming a
date and an amount column (portals put account details above it); columns the import does
not know are ignored. Every line is validated; if any line is bad, ImportRejected (422)
names each (line, column, reason) and the caller writes nothing. Outgoing payments in the
file (a debit column filled, or a negative amount) and totals rows are skipped; outgoing
ones are counted.

Pure: no database. market.pools.reconciliation records what this reads;
market.pools.matching classifies it.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from market.collateral.csv_import import (
    ImportRejected,
    RowErrors,
    Undecodable,
    cell_text,
    decode,
)
from market.money import parse_cny

MAX_FILE_BYTES: Final = 5 * 1024 * 1024
MAX_LINES: Final = 20_000
HEADER_SEARCH_ROWS: Final = 30  # bank portals put account details above the header
MAX_REFERENCE: Final = 500
MAX_COUNTERPARTY: Final = 200
MAX_TXN_ID: Final = 64


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
    outgoing: int  # outgoing payments in the file, skipped


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
    """Why a text cannot be kept, if it holds a control character (a NUL, say)."""
    m = _CONTROL.search(text)
    return f"contains a control character (U+{ord(m[0]):04X})" if m else None


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
    errs = RowErrors([c.key for c in COLUMNS])

    def reject() -> ImportRejected:
        return ImportRejected(filename, errs.first(), errs.count)

    try:
        text, encoding = decode(data)
    except Undecodable as exc:
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
        for key, slots in layout.items():
            for slot in slots:
                if why := control_character(_cell(cells, slot)):
                    errs.add(line_no, slot.header, key, why)
        if errs.count > before:
            continue  # the line's other checks would quote the same bad cell
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
