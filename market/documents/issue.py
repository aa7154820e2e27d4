"""Issuing the exchange's documents of a sale (docs/rules.md §Sale documents): the 成交确认书
in the unit of work that writes the sale (auctions/closing.py `_record_sale`, through which
every sale is made: the close, the fixed-price round, the licensing decision's sale), the
交易凭证 in the one that records the balance paid (`record_payment`).

What happens in the sale's transaction is only the document's row: its verification code
and its content (market/documents/content.py), read from the sale as it is written. The
PDF is rendered afterwards by the worker (market/documents/rendering.py), which stores it,
writes its hash into the bank's audit chain and tells the parties. Why: rendering one
takes 10–30 ms of CPU (reportlab, measured; 70–120 ms for the first of a process), and a
close holds the lot's row and the bank's audit chain head locked while it runs — at a busy
close every lot of a bank would queue behind the PDFs of the others, and the event loop
that runs the closes would stall for all of them. The row is what makes the document
exist (its code verifies at once); the rendering is a pure function of the row, so it can
come later, and again, with the same bytes.

Concurrency: the sale row is locked (FOR UPDATE; the closing and payment commands hold it
already, so this is free there) before the existing document is looked for, so two
issuings of one sale take turns and the second finds the first's document; the unique
constraint (sale_id, kind) backs this, and the INSERT's ON CONFLICT DO NOTHING makes a
clash a no-op rather than an error.
"""

from __future__ import annotations

import msgspec

from market.commands import UnitOfWork
from market.db import Queries
from market.documents import codes
from market.documents.content import Kind, read

Q = Queries("documents")
_CODE_ATTEMPTS = 3


async def issue_confirmation(uow: UnitOfWork, sale_id: int) -> None:
    """The 成交确认书 of a sale just written (once per sale)."""
    await _issue(uow, sale_id, "confirmation")


async def issue_certificate(uow: UnitOfWork, sale_id: int) -> None:
    """The 交易凭证 of a sale whose balance was just recorded paid (once per sale)."""
    await _issue(uow, sale_id, "certificate")


async def _issue(uow: UnitOfWork, sale_id: int, kind: Kind) -> None:
    conn = uow.conn
    if await conn.fetchval(Q.sale_locked, sale_id) is None:
        raise RuntimeError(f"no sale {sale_id} to issue a document of")
    if await conn.fetchval(Q.document_exists, sale_id, kind):
        return
    for _ in range(_CODE_ATTEMPTS):
        code = codes.new_code()
        content = await read(conn, sale_id, kind, code, uow.at)
        if kind == "certificate" and content.paid_at is None:
            raise RuntimeError(f"sale {sale_id} is not paid: no transaction certificate")
        row = await conn.fetchval(
            Q.insert_document, sale_id, kind, code, msgspec.to_builtins(content), uow.at
        )
        if row is not None or await conn.fetchval(Q.document_exists, sale_id, kind):
            return
    raise RuntimeError(f"sale {sale_id}: no free verification code for its {kind}")
