"""The CSV files reconciliation hands out: a statement of payouts (`export_csv`, for a
pool, a bank or a case; the rows come from market.pools.reconciliation), the example
statement showing the columns an import reads (`template_csv`), and the response that
downloads one (`csv_response`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Final

from litestar import Response

from market import i18n
from market.cases.services import china_today
from market.pools.reconciliation import PayoutOut, payee_text
from market.pools.statement_csv import BY_KEY
from market.web import content_disposition

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


TEMPLATE_COLUMNS: Final = ("value_date", "amount", "reference", "counterparty", "bank_txn_id")
EXAMPLE_REFERENCE: Final = "HK7KX3M9PQ2R"


def export_csv(rows: Sequence[PayoutOut], lang: i18n.Lang) -> bytes:
    """The statement of payouts as CSV: UTF-8 with BOM (Excel then reads Chinese), CRLF;
    statuses, kinds and parties in `lang`'s words."""
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
                _safe(payee_text(lang, p)),
                china_today(p.created_at).isoformat(),
                china_today(p.received_at).isoformat() if p.received_at else "",
                str(p.statement_id or ""),
                str(p.line_no or ""),
                p.value_date.isoformat() if p.value_date else "",
                _(f"recon.line.{p.matched}") if p.matched else "",
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def template_csv(lang: i18n.Lang) -> bytes:
    """An example statement with the columns the import reads, headed as the file format
    names them in `lang` (statement_csv.COLUMNS)."""
    _ = i18n.translator(lang)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([BY_KEY[k].en if lang == "en" else BY_KEY[k].zh for k in TEMPLATE_COLUMNS])
    writer.writerow(
        [
            "2026-01-05",
            "1,234.56",
            _("reconciliation.template.reference", reference=EXAMPLE_REFERENCE),
            _("reconciliation.template.counterparty"),
            "202601050001",
        ]
    )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


CSV = "text/csv"


def csv_response(body: bytes, filename: str) -> Response[bytes]:
    """A CSV file to download, kept out of shared caches."""
    return Response(
        body,
        media_type=CSV,  # Litestar adds the charset
        headers={
            "Content-Disposition": content_disposition(filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
