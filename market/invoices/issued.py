"""The finance system's invoice numbers recorded back (docs/invoices.md, docs/rules.md
§Invoices): by the CSV file of issued invoices — all or nothing, every bad line named by
line and column — or one by hand. An issued invoice is told to its payer
(`invoice_issued`, once per request).

What a line must hold: the request's id (an exported request; one already issued with the
same number and date is left as it is), the invoice number (8 digits, or the 20 digits of
a fully digital invoice 数电发票; no other request's), the invoice date (YYYY-MM-DD, not
before the export, not after today in Beijing).

Concurrency: the requests a file names are locked (FOR UPDATE, in id order, so two imports
never wait for each other in a cycle) before their status is read; the unique invoice
number backs "no number twice" against an import running at the same moment (its clash
answers 409, nothing written).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Annotated, Any, Final

import asyncpg
import msgspec
from msgspec import Meta

from market.accounts.permissions import OPERATE
from market.cases.services import china_today
from market.collateral.csv_import import decode
from market.commands import UnitOfWork, command
from market.db import Queries, returned
from market.errors import AppError, Conflict, Invalid, LineProblem, NotFound
from market.invoices.requests import InvoiceRequest, request_by_id

Q = Queries("invoices")

NUMBER: Final = re.compile(r"[0-9]{8}|[0-9]{20}")
READ_COLUMNS: Final = ("request_id", "invoice_number", "invoice_date")
MAX_FILE_BYTES: Final = 5 * 1024 * 1024
MAX_LINES: Final = 10_000
PROBLEM_LIMIT: Final = 100


class IssueIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An invoice the finance system issued, recorded by hand."""

    request_id: int
    invoice_number: Annotated[str, Meta(min_length=1, max_length=40)]
    invoice_date: date


class ImportIssued(msgspec.Struct, frozen=True, kw_only=True):
    data: bytes
    filename: str | None = None


class IssuedOut(msgspec.Struct, frozen=True, kw_only=True):
    issued: list[int]  # the requests this recorded issued
    unchanged: list[int]  # named again with the number and date they have


class _Line(msgspec.Struct, frozen=True):
    line: int
    request_id: int
    number: str
    day: date


def _check(
    request: asyncpg.Record | None, line: _Line, today: date, taken: dict[str, int]
) -> tuple[str, str, dict[str, Any]] | None:
    """(code, field, params) of what is wrong with one line, or None."""
    if request is None:
        return "invoice_no_such_request", "request_id", {"request_id": line.request_id}
    owner = taken.get(line.number)
    if owner is not None and owner != line.request_id:
        return "invoice_number_taken", "invoice_number", {"number": line.number}
    if request["status"] == "issued":
        if (request["invoice_number"], request["invoice_date"]) == (line.number, line.day):
            return None
        return "invoice_already_issued", "request_id", {"number": request["invoice_number"]}
    if request["status"] != "exported":
        return "invoice_not_exported", "request_id", {"request_id": line.request_id}
    exported_on = china_today(request["exported_at"])
    if line.day < exported_on:
        return "invoice_date_before_export", "invoice_date", {"exported_on": exported_on}
    if line.day > today:
        return "invoice_date_future", "invoice_date", {"today": today}
    return None


async def _record(uow: UnitOfWork, lines: list[_Line]) -> tuple[IssuedOut, list[LineProblem]]:
    """Check every line against the locked requests; when all are good, mark them issued
    and tell their payers. Returns what it did and the problems (then it did nothing)."""
    conn, today = uow.conn, china_today(uow.at)
    ids = sorted({x.request_id for x in lines})
    locked = {r["id"]: r for r in await conn.fetch(Q.requests_locked, ids)}
    taken = {
        r["invoice_number"]: r["id"]
        for r in await conn.fetch(Q.numbers_taken, [x.number for x in lines])
    }
    problems: list[LineProblem] = []
    for x in lines:
        found = _check(locked.get(x.request_id), x, today, taken)
        if found is not None:
            code, field, params = found
            problems.append(LineProblem(code=code, line=x.line, field=field, params=params))
    if problems:
        return IssuedOut(issued=[], unchanged=[]), problems
    issued, unchanged = [], []
    for x in lines:
        if locked[x.request_id]["status"] == "issued":
            unchanged.append(x.request_id)
            continue
        try:
            row = returned(
                await conn.fetchrow(Q.mark_issued, x.request_id, x.number, x.day, uow.at)
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                "invoice_number_taken", field="invoice_number", number=x.number
            ) from None
        done = await request_by_id(conn, row["id"])
        await _tell(uow, done)
        issued.append(done.id)
        uow.audit(
            "invoice.issued",
            "invoice_request",
            done.id,
            chain_org_id=None,
            after={"invoice_number": x.number, "invoice_date": x.day.isoformat()},
        )
    return IssuedOut(issued=issued, unchanged=unchanged), []


async def _tell(uow: UnitOfWork, r: InvoiceRequest) -> None:
    payload = {
        "request_id": r.id,
        "sale_id": r.sale_id,
        "lot_id": r.lot_id,
        "lot_reference": r.lot_reference,
        "lot_title": r.lot_title,
        "kind": r.kind,
        "invoice_type": r.invoice_type,
        "invoice_number": r.invoice_number,
        "invoice_date": r.invoice_date.isoformat() if r.invoice_date else None,
        "amount_fen": r.amount_fen,
        "path": "/invoices",
    }
    await uow.emit(
        Q.insert_outbox,
        "invoice_issued",
        r.payer_org_id,
        r.lot_id,
        payload,
        f"invoice_issued:{r.id}",
        uow.at,
    )


@command(OPERATE)
async def record_invoice_issued(uow: UnitOfWork, data: IssueIn) -> InvoiceRequest:
    """One invoice issued, typed by the operator: the checks of a file's line, each
    refusal a 4xx naming its field, nothing written."""
    number = "".join(data.invoice_number.split())
    if not NUMBER.fullmatch(number):
        raise Invalid("invoice_number_format", field="invoice_number")
    line = _Line(1, data.request_id, number, data.invoice_date)
    _, problems = await _record(uow, [line])
    if problems:
        p = problems[0]
        kind = NotFound if p.code == "invoice_no_such_request" else Invalid
        raise kind(p.code, field=p.field, **p.params)
    return await request_by_id(uow.conn, data.request_id)


def parse_issued(data: bytes) -> tuple[list[_Line], list[LineProblem]]:
    """The lines of a file of issued invoices, and every problem of its form."""
    problems: list[LineProblem] = []
    if not data:
        return [], [LineProblem(code="invoice_file_empty", field="file")]
    if len(data) > MAX_FILE_BYTES:
        return [], [LineProblem(code="invoice_file_too_large", field="file")]
    try:
        text, _ = decode(data)
        records = list(csv.reader(io.StringIO(text, newline="")))
    except (AppError, csv.Error):
        return [], [LineProblem(code="invoice_file_not_csv", field="file")]
    if not records:
        return [], [LineProblem(code="invoice_file_empty", field="file")]
    header = [h.strip().lower() for h in records[0]]
    missing = [c for c in READ_COLUMNS if c not in header]
    if missing:
        return [], [
            LineProblem(code="invoice_file_missing_column", line=1, field=c) for c in missing
        ]
    at = {c: header.index(c) for c in READ_COLUMNS}
    lines: list[_Line] = []
    seen: dict[int, int] = {}  # request id → its line
    numbers: dict[str, int] = {}  # invoice number → its line
    for n, cells in enumerate(records[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(lines) + len(problems) >= MAX_LINES:
            problems.append(LineProblem(code="invoice_file_too_many_lines", line=n, field="file"))
            break
        values = {c: (cells[i].strip() if i < len(cells) else "") for c, i in at.items()}
        before = len(problems)
        raw_id = values["request_id"]
        request_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() else None
        if request_id is None or not 1 <= request_id < 2**63:
            problems.append(LineProblem(code="whole_number", line=n, field="request_id"))
        elif request_id in seen:
            problems.append(
                LineProblem(
                    code="invoice_duplicate_line",
                    line=n,
                    field="request_id",
                    params={"first_line": seen[request_id]},
                )
            )
        number = "".join(values["invoice_number"].split())
        if not NUMBER.fullmatch(number):
            problems.append(
                LineProblem(code="invoice_number_format", line=n, field="invoice_number")
            )
        elif number in numbers:
            problems.append(
                LineProblem(
                    code="invoice_duplicate_number",
                    line=n,
                    field="invoice_number",
                    params={"first_line": numbers[number]},
                )
            )
        try:
            day = date.fromisoformat(values["invoice_date"])
        except ValueError:
            problems.append(LineProblem(code="not_a_date", line=n, field="invoice_date"))
        if len(problems) == before:
            assert request_id is not None
            seen[request_id] = numbers[number] = n
            lines.append(_Line(n, request_id, number, day))
    if not lines and not problems:
        problems.append(LineProblem(code="invoice_file_empty", field="file"))
    return lines, problems


def _rejected(problems: list[LineProblem], filename: str | None) -> Invalid:
    """The file refused: each problem by line, then by column, with the column's name."""

    def order(p: LineProblem) -> tuple[int, int]:
        return (p.line or 0, READ_COLUMNS.index(p.field) if p.field in READ_COLUMNS else -1)

    listed = [
        msgspec.structs.replace(p, params={**p.params, "column": p.field or ""})
        for p in sorted(problems, key=order)[:PROBLEM_LIMIT]
    ]
    return Invalid(
        "invoice_import_rejected",
        field="file",
        problems=listed,
        filename=filename or "",
        count=len(problems),
    )


@command(OPERATE)
async def import_issued_invoices(uow: UnitOfWork, data: ImportIssued) -> IssuedOut:
    """Record the invoices the finance system issued, from its CSV file (the export file
    with `invoice_number` and `invoice_date` filled in will do; other columns are
    ignored). All or nothing: any bad line rejects the file (422 `invoice_import_rejected`
    listing each problem by line and column), nothing written."""
    lines, problems = parse_issued(data.data)
    if problems:
        raise _rejected(problems, data.filename)
    done, problems = await _record(uow, lines)
    if problems:
        raise _rejected(problems, data.filename)
    return done
