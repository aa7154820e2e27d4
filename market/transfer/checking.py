"""The operator's check of a transfer (docs/rules.md §Transfer of title): confirm the
notices — the title has moved, the price is routed through the waterfall (completed) — or
reject one with a reason (its party may upload again before the step's deadline), or
record that a step failed and who caused it (the sale unwinds, market/transfer/unwinding.py).

Concurrency: every command locks the sale row, then the transfer row (FOR UPDATE; lock
order in market/transfer/escrow.py), then reads the transfer's status: of a confirmation,
a second confirmation, a failure and the deadline sweep at once, the first to lock decides
and the others find the transfer ended — a second confirmation answers the completed
transfer and writes nothing, anything else is refused (409). The receipt is keyed by its
source `sale:{id}` and every ledger entry by the sale, so the price is routed once.
"""

from __future__ import annotations

import asyncpg
import msgspec

from market.accounts.permissions import OPERATE
from market.commands import UnitOfWork, command
from market.db import Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.lots.services import policy_for
from market.lots.terms import TermsPolicy
from market.pools import services as pools
from market.settings import Settings
from market.transfer import escrow
from market.transfer.models import (
    ConfirmTransfer,
    RecordFailure,
    RejectNotice,
    TransferOut,
    step_of,
)
from market.transfer.policy import DEFAULT_POLICY
from market.transfer.unwinding import unwind

Q = Queries("transfer")


async def lock(uow: UnitOfWork, sale_id: int) -> tuple[asyncpg.Record, asyncpg.Record]:
    """The sale and its transfer, locked in the module's order; 404 if it has none."""
    sale = await uow.conn.fetchrow(Q.sale_locked, sale_id)
    transfer = None if sale is None else await uow.conn.fetchrow(Q.transfer_locked, sale_id)
    if sale is None or transfer is None:
        raise NotFound("not_found", field="sale_id")
    return sale, transfer


def _ended(transfer: asyncpg.Record) -> Conflict:
    return Conflict("transfer_not_in_escrow", field="sale_id", status=transfer["status"])


@command(OPERATE)
async def confirm_transfer(uow: UnitOfWork, data: ConfirmTransfer) -> TransferOut:
    """Every notice needed is in and checked: accept them, route the price through the
    waterfall (market/pools/services.route_sale_receipt) and complete the sale."""
    conn, at = uow.conn, uow.at
    sale, transfer = await lock(uow, data.sale_id)
    if transfer["status"] == "completed":
        return await escrow.view(conn, data.sale_id)
    if transfer["status"] != "in_escrow":
        raise _ended(transfer)
    needed = await escrow.needed_kinds(conn, sale["lot_id"])
    notices = list(await conn.fetch(Q.notices, data.sale_id))
    missing = escrow.missing_kinds(needed, notices)
    if missing:
        raise Conflict("transfer_notices_missing", field="sale_id", kinds=", ".join(missing))
    standing = [n["id"] for n in notices if n["status"] == "pending"]
    await conn.execute(Q.decide_notices, standing, "accepted", uow.actor.user, at, "")
    returned(
        await conn.fetchrow(
            Q.end_transfer, data.sale_id, "completed", at, uow.actor.user, None, "", None
        )
    )
    returned(await conn.fetchrow(Q.set_sale_status, data.sale_id, "completed"))
    receipt = await pools.route_sale_receipt(
        uow, pools.SaleReceipt(sale_id=data.sale_id, forfeit=False)
    )
    payload = escrow.event_payload(sale, receipt_id=receipt.id)
    recipients: list[tuple[int, int | None]] = [
        (sale["buyer_org_id"], sale["user_id"]),
        (sale["bank_org_id"], None),
    ]
    pools_orgs = [r["org_id"] for r in await conn.fetch(Q.pool_orgs_of_receipt, receipt.id)]
    recipients += [(org_id, None) for org_id in pools_orgs]
    for org_id, user_id in recipients:
        await escrow.emit(
            uow,
            "sale_completed",
            f"sale_completed:{data.sale_id}:{org_id}",
            org_id=org_id,
            user_id=user_id,
            lot_id=sale["lot_id"],
            payload={**payload, "path": "/pool"} if org_id in pools_orgs else payload,
        )
    uow.audit(
        "sale.complete",
        "sale",
        data.sale_id,
        chain_org_id=sale["bank_org_id"],
        before={"status": "paid"},
        after={
            "status": "completed",
            "notices": [
                {"kind": n["kind"], "number": n["number"], "issued_on": n["issued_on"].isoformat()}
                for n in notices
                if n["status"] != "rejected"
            ],
            "receipt_id": receipt.id,
        },
    )
    return await escrow.view(conn, data.sale_id)


@command(OPERATE)
async def reject_notice(uow: UnitOfWork, data: RejectNotice) -> TransferOut:
    """The notice does not show what it must (wrong number, wrong asset, unreadable): it is
    rejected with the reason; its step is open again until its deadline, moved to leave
    the party at least the policy's `resubmit_days`."""
    conn, at = uow.conn, uow.at
    reason = data.reason.strip()
    if not reason:
        raise Invalid("required", field="reason")
    sale_id = await conn.fetchval(Q.notice_sale, data.notice_id)
    if sale_id is None:
        raise NotFound("not_found", field="notice_id")
    sale, transfer = await lock(uow, sale_id)
    if transfer["status"] != "in_escrow":
        raise _ended(transfer)
    notice = returned(await conn.fetchrow(Q.notice_locked, data.notice_id))
    if notice["status"] != "pending":
        raise Conflict("transfer_notice_decided", field="notice_id", status=notice["status"])
    await conn.execute(Q.decide_notices, [notice["id"]], "rejected", uow.actor.user, at, reason)
    step = step_of(notice["kind"])
    reopened = returned(
        await conn.fetchrow(Q.reopen_step, sale_id, step, at + DEFAULT_POLICY.resubmit)
    )
    due = reopened["release_due_at"] if step == "release" else reopened["recordal_due_at"]
    party = sale["bank_org_id"] if step == "release" else sale["buyer_org_id"]
    await escrow.emit(
        uow,
        "transfer_notice_rejected",
        f"transfer_notice_rejected:{notice['id']}",
        org_id=party,
        user_id=notice["uploaded_by"],
        lot_id=sale["lot_id"],
        payload=escrow.event_payload(
            sale,
            notice_id=notice["id"],
            kind=notice["kind"],
            number=notice["number"],
            reason=reason,
            step=step,
            due_at=due.isoformat(),
        ),
    )
    uow.audit(
        "transfer.notice_rejected",
        "sale",
        sale_id,
        chain_org_id=sale["bank_org_id"],
        after={"notice_id": notice["id"], "reason": reason, "due_at": due.isoformat()},
    )
    return await escrow.view(conn, sale_id)


class FailureWithPolicy(RecordFailure, frozen=True, kw_only=True):
    policy: TermsPolicy


def with_policy(data: RecordFailure, settings: Settings) -> FailureWithPolicy:
    """The failure with the exchange's terms policy (the lot's next round follows it)."""
    return FailureWithPolicy(**msgspec.structs.asdict(data), policy=policy_for(settings))


@command(OPERATE)
async def record_failure(uow: UnitOfWork, data: FailureWithPolicy) -> TransferOut:
    """A step failed (the pledgor disputes the transfer, the right lapsed, the bank or the
    buyer did not do its part): the sale unwinds (market/transfer/unwinding.py)."""
    sale, transfer = await lock(uow, data.sale_id)
    if transfer["status"] != "in_escrow":
        raise _ended(transfer)
    await unwind(uow, data.policy, sale, cause=data.cause, note=data.note.strip())
    return await escrow.view(uow.conn, data.sale_id)
