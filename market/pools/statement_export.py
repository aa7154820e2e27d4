"""The CSV files reconciliation hands out: a statement of payouts (`export_csv`, for a
pool, a bank or a case; the rows come from market.pools.reconciliation), the example
statement showing the columns an import reads (`template_csv`), and the headers of a CSV
download.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Final

from market import i18n
from market.cases.policy import CHINA
from market.pools.reconciliation import PayoutOut

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


def _day(at: datetime) -> date:
    return at.astimezone(CHINA).date()


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
