"""The transfer's timed work (docs/rules.md §Transfer of title): `sweep_transfers` runs
every minute, as the exchange, at the injected clock's instant.

For each transfer in escrow with a deadline near or passed (one unit of work each, so a
transfer that fails — logged — holds up no other):
* a party's step past its deadline with its notice missing: the step is overdue (notice
  to the party) and the sale unwinds — the bank's release → cause `bank`, the buyer's
  recordal → cause `buyer` (market/transfer/unwinding.py);
* a step within a reminder's days of its deadline: a reminder to its party, once per
  reminder and deadline (the outbox's dedupe key);
* the operator's check past its deadline: a notice to the operators, once per deadline.

Concurrency: `expire_transfer` locks the sale row, then the transfer row (lock order in
market/transfer/escrow.py) and decides on what it reads there, so an operator's
confirmation or a party's upload at the same moment either came first (then nothing is
overdue) or waits and finds the sale unwound.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from arq import cron

from market.clock import FrozenClock
from market.commands import SYSTEM, Context, UnitOfWork, command, run
from market.db import Queries
from market.lots.services import policy_for
from market.lots.terms import TermsPolicy
from market.transfer import escrow
from market.transfer.models import RELEASE, Cause, Step
from market.transfer.policy import DEFAULT_POLICY, TransferPolicy
from market.transfer.unwinding import unwind

Q = Queries("transfer")
log = logging.getLogger("market.transfer.jobs")


class ExpireTransfer(msgspec.Struct, frozen=True, kw_only=True):
    sale_id: int
    policy: TermsPolicy  # the exchange's terms policy (market.lots.services.policy_for)
    transfer_policy: TransferPolicy = DEFAULT_POLICY


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


@command(None)
async def expire_transfer(uow: UnitOfWork, data: ExpireTransfer) -> str | None:
    """One transfer's deadlines at `uow.at` (module docstring); returns "unwound" when the
    sale unwound, None otherwise."""
    conn, at = uow.conn, uow.at
    sale = await conn.fetchrow(Q.sale_locked, data.sale_id)
    transfer = None if sale is None else await conn.fetchrow(Q.transfer_locked, data.sale_id)
    if sale is None or transfer is None or transfer["status"] != "in_escrow":
        return None
    needed = await escrow.needed_kinds(conn, sale["lot_id"])
    missing = escrow.missing_kinds(needed, list(await conn.fetch(Q.notices, data.sale_id)))
    steps: list[tuple[Step, datetime, int, int | None]] = []
    if RELEASE in missing:
        steps.append(("release", transfer["release_due_at"], sale["bank_org_id"], None))
    if [k for k in missing if k != RELEASE]:
        steps.append(
            ("recordal", transfer["recordal_due_at"], sale["buyer_org_id"], sale["user_id"])
        )
    for step, due, org_id, user_id in steps:
        payload = escrow.event_payload(sale, step=step, due_at=due.isoformat())
        if due <= at:
            await escrow.emit(
                uow,
                "transfer_step_overdue",
                f"transfer_step_overdue:{data.sale_id}:{step}:{_epoch(due)}",
                org_id=org_id,
                user_id=user_id,
                lot_id=sale["lot_id"],
                payload=payload,
            )
            cause: Cause = "bank" if step == "release" else "buyer"
            await unwind(uow, data.policy, sale, cause=cause, note="")
            return "unwound"
        for days in sorted(data.transfer_policy.reminder_days, reverse=True):
            if due - at <= timedelta(days=days):
                await escrow.emit(
                    uow,
                    "transfer_step_reminder",
                    f"transfer_step_reminder:{data.sale_id}:{step}:{days}:{_epoch(due)}",
                    org_id=org_id,
                    user_id=user_id,
                    lot_id=sale["lot_id"],
                    payload={**payload, "days": days},
                )
    check_due = transfer["check_due_at"]
    if not missing and check_due is not None and check_due <= at:
        await escrow.emit_to_operators(
            uow,
            "transfer_step_overdue",
            f"transfer_step_overdue:{data.sale_id}:check:{_epoch(check_due)}",
            lot_id=sale["lot_id"],
            payload=escrow.event_payload(sale, step="check", due_at=check_due.isoformat()),
        )
    return None


async def sweep(
    pool: asyncpg.Pool,
    at: datetime,
    policy: TermsPolicy,
    transfer_policy: TransferPolicy = DEFAULT_POLICY,
    batch: int = 100,
) -> list[int]:
    """Every transfer's deadlines at `at`, as the exchange; returns the sales unwound."""
    ctx = Context(pool=pool, clock=FrozenClock(at))
    ahead = max(transfer_policy.reminder_days, default=0)
    unwound: list[int] = []
    after = 0
    while True:
        async with pool.acquire() as conn:
            ids = [
                r["sale_id"]
                for r in await conn.fetch(Q.due_transfers, at, timedelta(days=ahead), after, batch)
            ]
        for sale_id in ids:
            data = ExpireTransfer(sale_id=sale_id, policy=policy, transfer_policy=transfer_policy)
            try:
                if await run(expire_transfer, data, ctx=ctx, actor=SYSTEM) == "unwound":
                    unwound.append(sale_id)
            except Exception:
                log.exception(
                    "transfer of sale %s could not be swept; the next sweep retries", sale_id
                )
        if len(ids) < batch:
            return unwound
        after = ids[-1]


async def sweep_transfers(ctx: dict[str, Any]) -> dict[str, list[int]]:
    """The minute's sweep of the transfers' deadlines (module docstring)."""
    policy = policy_for(ctx["settings"])
    unwound = await sweep(ctx["pool"], ctx["clock"].now(), policy)
    if unwound:
        log.info("sales unwound at their transfer's deadline: %s", unwound)
    return {"unwound": unwound}


JOBS: list[Any] = [sweep_transfers]
CRON: list[Any] = [cron(sweep_transfers, second={45}, unique=True, run_at_startup=True)]
