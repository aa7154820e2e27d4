"""The worker's part of issuing a sale document (docs/rules.md §Sale documents): render the
PDF from the document's row, store it (market/cases/storage.py), write its SHA-256 on the
row and into the bank's audit chain, and tell the buyer and the bank it is ready
(`document_issued`, both languages). Why this is not done in the sale's transaction:
market/documents/issue.py.

A document is rendered once: the row is taken FOR UPDATE SKIP LOCKED and only while its
sha256 is NULL, in one transaction with the blob, the hash, the audit row and the outbox
rows (each with its dedupe key). Two workers, or a retry after a crash, render it once; a
worker that dies half-way leaves nothing, and the next sweep renders it. The CPU work runs
in a thread, so the worker's other jobs (the closes, the relay) are not held up by it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import msgspec

from market.cases.storage import store
from market.commands import SYSTEM, Context, UnitOfWork, command, run
from market.db import Queries
from market.documents.content import DocumentContent
from market.documents.render import render

Q = Queries("documents")
log = logging.getLogger("market.documents")


class RenderDocument(msgspec.Struct, frozen=True, kw_only=True):
    document_id: int


@command(None)
async def render_document(uow: UnitOfWork, data: RenderDocument) -> str | None:
    """Render one pending document; its sha256 (hex), or None when there was nothing to do
    (rendered already, or being rendered by another worker)."""
    conn = uow.conn
    row = await conn.fetchrow(Q.pending_locked, data.document_id)
    if row is None:
        return None
    content = msgspec.convert(row["content"], DocumentContent, strict=False)
    pdf = await asyncio.to_thread(render, content)
    digest = await store(conn, pdf)
    await conn.execute(Q.mark_rendered, row["id"], digest, len(pdf), uow.at)
    sha256 = digest.hex()
    uow.audit(
        "document.issue",
        "sale_document",
        row["id"],
        chain_org_id=row["bank_org_id"],
        after={
            "kind": content.kind,
            "code": content.code,
            "sale_id": content.sale_id,
            "issued_at": content.issued_at.isoformat(),
            "sha256": sha256,
            "size_bytes": len(pdf),
        },
    )
    payload: dict[str, Any] = {
        "document_id": row["id"],
        "sale_id": content.sale_id,
        "lot_id": row["lot_id"],
        "lot_reference": content.lot_reference,
        "lot_title": content.lot_title,
        "round": content.round,
        "kind": content.kind,
        "code": content.code,
        "sha256": sha256,
        "issued_at": content.issued_at.isoformat(),
        "path": "/documents",
    }
    for org_id in (row["buyer_org_id"], row["bank_org_id"]):
        await uow.emit(
            Q.insert_outbox,
            org_id,
            row["lot_id"],
            payload,
            f"document_issued:{row['id']}:{org_id}",
            uow.at,
        )
    return sha256


async def render_pending(ctx: Context, batch: int = 50) -> list[int]:
    """Render every pending document, each in a unit of work of its own; returns the ids
    rendered. One that fails is logged and left pending for the next sweep; it holds up no
    other."""
    done: list[int] = []
    pool: asyncpg.Pool = ctx.pool
    async with pool.acquire() as conn:
        ids = [r["id"] for r in await conn.fetch(Q.pending_documents, batch)]
    for document_id in ids:
        data = RenderDocument(document_id=document_id)
        try:
            if await run(render_document, data, ctx=ctx, actor=SYSTEM) is not None:
                done.append(document_id)
        except Exception:
            log.exception("sale document %s could not be rendered; retried next", document_id)
    return done
