"""The operator's export of invoice requests for the finance system (docs/invoices.md,
docs/rules.md §Invoices): a CSV file of every request still to export made before the end
of a month (Beijing time), each request in exactly one export.

Concurrency: the export reads its requests with SELECT … WHERE status = 'requested' FOR
UPDATE; a concurrent export waits for the rows the first one locked, then finds them
exported and leaves them out (PostgreSQL re-checks the WHERE of a locked row once the lock
is granted). An export that finds nothing to export is refused (409) and writes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Annotated, Final

import asyncpg
import msgspec
from msgspec import Meta

from market.accounts.permissions import OPERATE
from market.cases.policy import CHINA
from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound

Q = Queries("invoices")

# The columns of the export file, in order (docs/invoices.md says what each holds).
COLUMNS: Final = (
    "request_id",
    "kind",
    "cancels_request_id",
    "sale_id",
    "lot_reference",
    "fee_kind",
    "invoice_type",
    "title",
    "taxpayer_number",
    "address_phone",
    "bank_account",
    "item",
    "amount",
    "net_amount",
    "vat_rate",
    "tax_amount",
    "requested_on",
    "reason",
    "invoice_number",
    "invoice_date",
)
# 货物或应税劳务、服务名称 as the finance system prints it: the tax classification
# (经纪代理服务, a modern service) and the exchange's name for the fee.
ITEMS: Final = {
    "commission": "*经纪代理服务*知识产权处置佣金",
    "buyer_premium": "*经纪代理服务*买方佣金",
}

Period = Annotated[str, Meta(pattern=r"^2[0-9]{3}-(0[1-9]|1[0-2])$")]  # a month of 2000–2999


class ExportIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    period: Period  # YYYY-MM: the requests made before this month's end (Beijing time)


class ExportOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    period: str
    requests: int
    sha256: str  # hex, of the CSV file
    created_at: datetime


def _export_out(row: asyncpg.Record) -> ExportOut:
    return msgspec.convert({**dict(row), "sha256": bytes(row["sha256"]).hex()}, ExportOut)


def period_bounds(period: str) -> tuple[date, datetime]:
    """The period's first day and the instant it ends (the next month's start, Beijing)."""
    year, month = int(period[:4]), int(period[5:])
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return first, datetime.combine(following, time(), CHINA)


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _cell(text: str | None) -> str:
    """A typed text as a CSV cell a spreadsheet will not run as a formula."""
    if not text:
        return ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_csv(rows: Sequence[asyncpg.Record]) -> bytes:
    """The export file: UTF-8 with BOM, CRLF, the header row of COLUMNS. A red-letter line
    carries the invoice's amounts negated, as a 红字发票 prints them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for r in rows:
        sign = -1 if r["kind"] == "red_letter" else 1
        rate = r["vat_rate_bp"]
        writer.writerow(
            [
                r["id"],
                r["kind"],
                r["cancels_id"] or "",
                r["sale_id"],
                _cell(r["lot_reference"]),
                r["fee_kind"],
                r["invoice_type"],
                _cell(r["title"]),
                _cell(r["taxpayer_number"]),
                _cell(r["address_phone"]),
                _cell(r["bank_account"]),
                ITEMS[r["fee_kind"]],
                _yuan(sign * r["amount_fen"]),
                _yuan(sign * r["net_fen"]),
                f"{rate // 10_000}.{rate % 10_000:04d}".rstrip("0").rstrip("."),
                _yuan(sign * r["tax_fen"]),
                china_today(r["created_at"]).isoformat(),
                _cell(r["reason"]),
                "",
                "",
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


@command(OPERATE)
async def export_invoice_requests(uow: UnitOfWork, data: ExportIn) -> ExportOut:
    """Export every invoice request still to export that was made before the period's
    end; the file is stored with the export (download it again with `export_file`).

    Refused: a period not begun (422 `period`); nothing to export (409 `period`). See the
    module's docstring for why two exports at once never export a request twice.
    """
    conn = uow.conn
    first, end = period_bounds(data.period)
    if first > china_today(uow.at):
        raise Invalid("invoice_period_future", field="period", period=data.period)
    found = list(await conn.fetch(Q.to_export, end))
    if not found:
        raise Conflict("invoice_nothing_to_export", field="period", period=data.period)
    body = export_csv(found)
    row = returned(
        await conn.fetchrow(
            Q.insert_export,
            data.period,
            len(found),
            body,
            hashlib.sha256(body).digest(),
            uow.actor.user_id,
            uow.at,
        )
    )
    await conn.execute(Q.mark_exported, [r["id"] for r in found], row["id"], uow.at)
    out = _export_out(row)
    uow.audit(
        "invoice.export",
        "invoice_export",
        out.id,
        chain_org_id=None,
        after={"period": data.period, "requests": out.requests, "sha256": out.sha256},
    )
    return out


async def exports(conn: Conn, limit: int = 50) -> list[ExportOut]:
    return [_export_out(r) for r in await conn.fetch(Q.exports, limit)]


async def export_file(conn: Conn, export_id: int) -> tuple[str, bytes]:
    """(file name, CSV) of an export; NotFound if there is none."""
    row = await conn.fetchrow(Q.export_file, export_id)
    if row is None:
        raise NotFound("no_such_invoice_export", field="export_id")
    return f"invoice-requests-{row['period']}-{row['id']}.csv", bytes(row["csv"])
