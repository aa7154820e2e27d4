"""The PDF of a sale document, rendered from its content alone (docs/rules.md §Sale
documents).

reportlab draws it (a wheel: nothing to install on the machine); the Chinese is set in
STSong-Light, one of the CID fonts every PDF reader carries (Adobe's Asian font packs), so
no font file is embedded or needed, and the text stays extractable (the tests read it back
with pypdf). Every text is Chinese then English, from the documents catalog.

Deterministic: the same content gives the same bytes, in any process — reportlab's
invariant mode, a file identifier derived from the content alone (not from the time, nor
from SOURCE_DATE_EPOCH, which reportlab would mix in), and the creation and modification
dates the document's issue instant in Beijing time — so the hash
kept in the audit chain can be recomputed from `sale_documents.content` at any time (as long
as this layout and the catalog are unchanged, which is why the stored bytes, not a
re-rendering, are what is served).
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime
from functools import cache
from typing import Any, Final
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from market.documents.codes import grouped
from market.documents.content import DocumentContent
from market.i18n import gettext
from market.money import format_cny

FONT: Final = "STSong-Light"
_BEIJING: Final = ZoneInfo("Asia/Shanghai")


@cache
def _styles() -> dict[str, ParagraphStyle]:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    base = ParagraphStyle("base", fontName=FONT, fontSize=9.5, leading=13, wordWrap="CJK")
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=11),
        "title": ParagraphStyle("title", parent=base, fontSize=17, leading=24, alignment=1),
        "head": ParagraphStyle("head", parent=base, fontSize=11.5, leading=17, spaceBefore=8),
        "center": ParagraphStyle("center", parent=base, alignment=1),
    }


def both(key: str, /, **params: Any) -> str:
    """The text in Chinese, then in English."""
    return f"{gettext('zh', key, **params)} {gettext('en', key, **params)}"


def beijing(at: datetime) -> str:
    return at.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M")


def _p(text: str, style: str = "base") -> Paragraph:
    return Paragraph(text, _styles()[style])


def _table(rows: list[list[Any]], widths: list[float]) -> Table:
    table = Table(rows, colWidths=widths)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
            ]
        )
    )
    return table


def _party(key: str, party: Any) -> list[Any]:
    names = escape(party.name) + (f"<br/>{escape(party.name_en)}" if party.name_en else "")
    code = both("documents.credit_code") + "：" + escape(party.credit_code or "—")
    return [_p(both(key)), _p(f"{names}<br/>{code}")]


def _amount(key: str, fen: int, capitals: str | None = None) -> list[Any]:
    figures = format_cny(fen)
    if capitals is not None:
        figures += f"<br/>{both('documents.capitals')}：人民币{escape(capitals)}"
    return [_p(both(key)), _p(figures)]


def _story(c: DocumentContent) -> list[Any]:
    label = [50 * mm, 120 * mm]
    story: list[Any] = [
        _p(both("site.name"), "center"),
        _p(
            f"{gettext('zh', f'documents.kind.{c.kind}')}<br/>"
            f"{gettext('en', f'documents.kind.{c.kind}')}",
            "title",
        ),
        Spacer(1, 3 * mm),
        _p(f"{both('documents.code')}：{grouped(c.code)}"),
        _p(f"{both('documents.issued_at')}：{beijing(c.issued_at)}"),
        _p(
            both("documents.sale_line", lot=escape(c.lot_reference), round=c.round)
            + f"　{escape(c.lot_title)}　"
            + both("documents.case", case=escape(c.case_reference))
        ),
        _p(both("documents.parties"), "head"),
        _table(
            [
                _party("documents.party.bank", c.bank),
                _party("documents.party.pledgor", c.pledgor),
                _party("documents.party.buyer", c.buyer),
            ],
            label,
        ),
        _p(both("documents.assets"), "head"),
        _table(
            [
                [
                    _p(both(f"documents.asset.{a.kind}")),
                    _p(f"{escape(a.number)}<br/>{escape(a.title)}"),
                ]
                for a in c.assets
            ],
            label,
        ),
        _p(both("documents.amounts"), "head"),
    ]
    fee_key = f"documents.fee.{c.fee_kind}"
    rows = [
        _amount("documents.price", c.price_fen, c.price_capitals),
        _amount(fee_key, c.fee_fen),
        _amount("documents.deposit_applied", c.deposit_fen),
    ]
    if c.kind == "confirmation":
        rows += [
            _amount("documents.balance_due", c.balance_due_fen, c.balance_capitals),
            [_p(both("documents.due_at")), _p(beijing(c.due_at))],
            [_p(both("documents.payment_reference")), _p(escape(c.payment_reference))],
        ]
    else:
        assert c.paid_at is not None
        rows += [
            _amount("documents.total_paid", c.total_paid_fen, c.total_capitals),
            [_p(both("documents.paid_at")), _p(beijing(c.paid_at))],
        ]
    story += [
        _table(rows, label),
        _p(both(f"{fee_key}.note"), "small"),
        _p(both("documents.steps"), "head"),
    ]
    story += [
        _p(f"{n}. {both(f'documents.step.{step}')}") for n, step in enumerate(c.steps, start=1)
    ]
    story += [
        Spacer(1, 6 * mm),
        _p(both(f"documents.{c.kind}.statement"), "small"),
        _p(both("documents.verify_note", code=grouped(c.code)), "small"),
    ]
    return story


class _Canvas(Canvas):
    """reportlab's canvas with the file identifier's digest seeded by nothing but the
    content it is fed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._doc.signature = hashlib.md5(b"sale document", usedforsecurity=False)  # type: ignore[attr-defined]


def render(content: DocumentContent) -> bytes:
    """The document's PDF bytes (A4), the same bytes for the same content."""
    out = io.BytesIO()
    issued = content.issued_at.astimezone(_BEIJING)
    stamp = issued.strftime("D:%Y%m%d%H%M%S+08'00'")

    def fixed_date(canvas: Any, _: Any) -> None:
        canvas.setDateFormatter(lambda *_: stamp)

    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=gettext("en", f"documents.kind.{content.kind}") + " " + content.code,
        author=gettext("en", "site.name"),
        subject=content.lot_reference,
        creator=gettext("en", "site.name"),
        producer="reportlab",
        invariant=1,
    )
    doc.build(_story(content), onFirstPage=fixed_date, onLaterPages=fixed_date, canvasmaker=_Canvas)
    return out.getvalue()
