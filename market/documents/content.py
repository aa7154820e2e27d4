"""What a sale document certifies, read once when it is issued and kept with it
(`sale_documents.content`): the PDF is rendered from this alone, and the verification page
shows it. Nothing here is read again from the tables the sale lives in, so what a document
says never changes after its issue."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import msgspec

from market.db import Conn, Queries, returned
from market.money import cny_capitals

Q = Queries("documents")

Kind = Literal["confirmation", "certificate"]
KINDS: Final[tuple[Kind, ...]] = ("confirmation", "certificate")
AssetKind = Literal["patent", "trademark", "software_copyright"]
# The steps of the transfer of title after payment, in order (docs/rules.md §Sale
# documents): the pledgee cancels the pledge registration (质押登记注销), the registry
# records the transfer — 著录项目变更 at CNIPA for a patent, the trademark office's approval
# of the assignment, the copyright centre's change registration for software — and the
# exchange checks the notice the registry issued.
RECORDAL: Final[dict[str, str]] = {
    "patent": "recordal_patent",
    "trademark": "recordal_trademark",
    "software_copyright": "recordal_software",
}


class Party(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    name_en: str | None = None
    credit_code: str | None = None  # 统一社会信用代码


class Asset(msgspec.Struct, frozen=True, kw_only=True):
    kind: AssetKind
    number: str  # the registry's patent / registration number
    title: str
    patent_type: str | None = None


class DocumentContent(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a sale document states, in fen and UTC; the capitals (大写) are stored as
    printed so the verification page shows the very words of the PDF."""

    kind: Kind
    code: str
    issued_at: datetime
    sale_id: int
    lot_reference: str
    lot_title: str
    round: int
    case_reference: str
    bank: Party  # the pledgee, the seller in the disposal
    pledgor: Party
    buyer: Party
    assets: tuple[Asset, ...]
    price_fen: int
    price_capitals: str
    fee_kind: Literal["commission", "buyer_premium"]
    fee_fen: int
    deposit_fen: int
    balance_due_fen: int
    balance_capitals: str
    due_at: datetime
    payment_reference: str
    closed_at: datetime
    paid_at: datetime | None  # the certificate's: when the balance was recorded paid
    total_paid_fen: int  # price + buyer's premium, deposit included (certificate)
    total_capitals: str
    steps: tuple[str, ...]  # the transfer's steps, as keys of the documents catalog


def steps_for(assets: tuple[Asset, ...]) -> tuple[str, ...]:
    recordals = dict.fromkeys(RECORDAL[a.kind] for a in assets)
    return ("pledge_release", *recordals, "notice_check")


async def read(conn: Conn, sale_id: int, kind: Kind, code: str, at: datetime) -> DocumentContent:
    """The content of the `kind` document of the sale, issued at `at` under `code`."""
    sale = returned(await conn.fetchrow(Q.sale_facts, sale_id))
    assets = tuple(
        Asset(kind=r["kind"], number=r["number"], title=r["title"], patent_type=r["patent_type"])
        for r in await conn.fetch(Q.sale_assets, sale["lot_id"])
    )
    premium = sale["fee_fen"] if sale["fee_kind"] == "buyer_premium" else 0
    total = sale["price_fen"] + premium
    return DocumentContent(
        kind=kind,
        code=code,
        issued_at=at,
        sale_id=sale_id,
        lot_reference=sale["lot_reference"],
        lot_title=sale["lot_title"],
        round=sale["round"],
        case_reference=sale["case_reference"],
        bank=Party(
            name=sale["bank_name"],
            name_en=sale["bank_name_en"],
            credit_code=sale["bank_credit_code"],
        ),
        pledgor=Party(name=sale["pledgor_name"], credit_code=sale["pledgor_credit_code"]),
        buyer=Party(
            name=sale["buyer_name"],
            name_en=sale["buyer_name_en"],
            credit_code=sale["buyer_credit_code"],
        ),
        assets=assets,
        price_fen=sale["price_fen"],
        price_capitals=cny_capitals(sale["price_fen"]),
        fee_kind=sale["fee_kind"],
        fee_fen=sale["fee_fen"],
        deposit_fen=sale["deposit_fen"],
        balance_due_fen=sale["balance_due_fen"],
        balance_capitals=cny_capitals(sale["balance_due_fen"]),
        due_at=sale["due_at"],
        payment_reference=sale["payment_reference"],
        closed_at=sale["closed_at"],
        paid_at=sale["paid_at"] if kind == "certificate" else None,
        total_paid_fen=total,
        total_capitals=cny_capitals(total),
        steps=steps_for(assets),
    )
