"""A sale held in escrow: opening its transfer at payment, reading it, and the events its
steps owe (docs/rules.md §Transfer of title).

    sale paid ──▶ transfer in_escrow ──operator confirms the notices──▶ completed
                                     └──a step fails / a deadline passes──▶ unwound

Opening: `open_transfer` runs in `record_payment`'s unit of work, under the sale row's
lock (FOR UPDATE, taken by record_payment); the transfer's primary key is the sale's id,
so a sale has one transfer however often the payment is recorded.

Lock order of every transfer command: the sale row, the transfer row, the notices, then
what the step touches (the lot row when the sale unwinds, the case row when its price is
routed). The deadline sweep and the operator's commands lock in the same order, so of two
at once one waits for the other and then sees what it did.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from market.cases.models import DocumentOut
from market.cases.services import document_out
from market.commands import UnitOfWork
from market.db import Conn, Queries, returned
from market.errors import NotFound
from market.transfer.models import (
    RECORDAL_OF_ASSET,
    RELEASE,
    NoticeKind,
    NoticeOut,
    Step,
    TransferOut,
)
from market.transfer.policy import DEFAULT_POLICY, TransferPolicy

Q = Queries("transfer")


async def needed_kinds(conn: Conn, lot_id: int) -> list[NoticeKind]:
    """The pledge's release, then one recordal per kind of asset in the lot."""
    kinds = [RECORDAL_OF_ASSET[r["kind"]] for r in await conn.fetch(Q.asset_kinds, lot_id)]
    return [RELEASE, *kinds]


def missing_kinds(needed: list[NoticeKind], notices: list[asyncpg.Record]) -> list[NoticeKind]:
    standing = {n["kind"] for n in notices if n["status"] != "rejected"}
    return [k for k in needed if k not in standing]


def step_due(status: str, missing: list[NoticeKind]) -> Step | None:
    if status != "in_escrow":
        return None
    if RELEASE in missing:
        return "release"
    return "recordal" if missing else "check"


async def emit(
    uow: UnitOfWork,
    event: str,
    dedupe_key: str,
    *,
    org_id: int | None,
    user_id: int | None = None,
    lot_id: int | None,
    payload: dict[str, Any],
) -> None:
    await uow.emit(Q.insert_outbox, event, org_id, user_id, lot_id, payload, dedupe_key, uow.at)


def party_path(sale_id: int) -> str:
    """The transfer's page for its bank and its buyer."""
    return f"/transfers/{sale_id}"


def operator_path(sale_id: int) -> str:
    return f"/operator/transfers/{sale_id}"


async def emit_to_operators(
    uow: UnitOfWork, event: str, dedupe_key: str, *, lot_id: int, payload: dict[str, Any]
) -> None:
    """The event to every approved operator organisation, with the operator's page."""
    payload = {**payload, "path": operator_path(payload["sale_id"])}
    for r in await uow.conn.fetch(Q.operator_orgs):
        await emit(
            uow, event, f"{dedupe_key}:op{r['id']}", org_id=r["id"], lot_id=lot_id, payload=payload
        )


def event_payload(sale: asyncpg.Record | TransferOut, **extra: Any) -> dict[str, Any]:
    """What every transfer event carries: the sale and its lot, and the event's own facts."""

    def get(name: str) -> Any:
        return getattr(sale, name) if isinstance(sale, TransferOut) else sale[name]

    sale_id = sale.sale_id if isinstance(sale, TransferOut) else sale["id"]
    return {
        "sale_id": sale_id,
        "lot_id": get("lot_id"),
        "lot_reference": get("lot_reference"),
        "lot_title": get("lot_title"),
        "price_fen": get("price_fen"),
        "path": party_path(sale_id),
        **extra,
    }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


async def open_transfer(
    uow: UnitOfWork, sale: asyncpg.Record, policy: TransferPolicy = DEFAULT_POLICY
) -> None:
    """Hold the paid sale in escrow: its transfer with the deadlines of its steps from now
    (the caller holds the sale row's lock), and the first steps' notices to the bank and
    the buyer."""
    at = uow.at
    row = await uow.conn.fetchrow(
        Q.insert_transfer, sale["id"], at, at + policy.release, at + policy.recordal
    )
    if row is None:
        return  # opened already
    lot = returned(await uow.conn.fetchrow(Q.sale_locked, sale["id"]))
    for step, org_id, user_id, due in (
        ("release", lot["bank_org_id"], None, row["release_due_at"]),
        ("recordal", lot["buyer_org_id"], lot["user_id"], row["recordal_due_at"]),
    ):
        await emit(
            uow,
            "transfer_step_due",
            f"transfer_step_due:{sale['id']}:{step}",
            org_id=org_id,
            user_id=user_id,
            lot_id=lot["lot_id"],
            payload=event_payload(lot, step=step, due_at=_iso(due)),
        )


def _notice_out(r: asyncpg.Record) -> NoticeOut:
    return NoticeOut(
        id=r["id"],
        kind=r["kind"],
        number=r["number"],
        issued_on=r["issued_on"],
        status=r["status"],
        filename=r["filename"],
        size_bytes=r["size_bytes"],
        uploaded_at=r["uploaded_at"],
        decided_at=r["decided_at"],
        reason=r["reason"],
    )


def transfer_out(
    row: asyncpg.Record, needed: list[NoticeKind], notices: list[asyncpg.Record]
) -> TransferOut:
    missing = missing_kinds(needed, notices)
    return TransferOut(
        sale_id=row["sale_id"],
        status=row["status"],
        step=step_due(row["status"], missing),
        lot_id=row["lot_id"],
        lot_reference=row["lot_reference"],
        lot_title=row["lot_title"],
        round=row["round"],
        bank_org_id=row["bank_org_id"],
        bank_name=row["bank_name"],
        buyer_org_id=row["buyer_org_id"],
        buyer_name=row["buyer_name"],
        price_fen=row["price_fen"],
        fee_kind=row["fee_kind"],
        fee_fen=row["fee_fen"],
        deposit_fen=row["deposit_fen"],
        balance_due_fen=row["balance_due_fen"],
        paid_at=row["paid_at"],
        closed_at=row["closed_at"],
        opened_at=row["opened_at"],
        release_due_at=row["release_due_at"],
        recordal_due_at=row["recordal_due_at"],
        check_due_at=row["check_due_at"],
        ended_at=row["ended_at"],
        cause=row["cause"],
        buyer_at_fault=row["buyer_at_fault"],
        note=row["note"],
        needed=needed,
        missing=missing,
        notices=[_notice_out(n) for n in notices],
    )


async def view(conn: Conn, sale_id: int, org_id: int | None = None) -> TransferOut:
    """One sale's transfer as a party (`org_id`: the buyer or the bank) or the operator
    (None) sees it; anybody else's is 404."""
    row = await conn.fetchrow(Q.transfer_view, sale_id)
    if row is None or org_id not in (None, row["buyer_org_id"], row["bank_org_id"]):
        raise NotFound("not_found", field="sale_id")
    notices = list(await conn.fetch(Q.notices, sale_id))
    return transfer_out(row, await needed_kinds(conn, row["lot_id"]), notices)


async def listing(
    conn: Conn, org_id: int | None, *, in_escrow_only: bool = False, limit: int = 200
) -> list[TransferOut]:
    """The transfers an organisation is party to (None: every one, for the operator)."""
    out = []
    for row in await conn.fetch(Q.transfer_list, org_id, in_escrow_only, limit):
        notices = list(await conn.fetch(Q.notices, row["sale_id"]))
        out.append(transfer_out(row, await needed_kinds(conn, row["lot_id"]), notices))
    return out


async def notice_document(
    conn: Conn, sale_id: int, notice_id: int, org_id: int | None = None
) -> DocumentOut:
    """A notice's document, for a party of the sale (`org_id`) or the operator (None)."""
    await view(conn, sale_id, org_id)
    found = await conn.fetchrow(Q.document_of_notice, notice_id, sale_id)
    if found is None:
        raise NotFound("no_such_document", field="notice_id")
    return document_out(found)


async def held_for_pool(conn: Conn, pool_id: int) -> tuple[int, int]:
    """(sales, fen): the prices of sales held in escrow on loans enrolled in the pool — money
    that came back but is not a recovery until the title has moved."""
    row = returned(await conn.fetchrow(Q.held_for_pool, pool_id))
    return row["n"], row["amount_fen"]


async def held_for_bank(conn: Conn, bank_org_id: int) -> tuple[int, int]:
    """(sales, fen): the prices of the bank's sales held in escrow."""
    row = returned(await conn.fetchrow(Q.held_for_bank, bank_org_id))
    return row["n"], row["amount_fen"]
