"""The bank's hand on a licence contract (docs/rules.md §Licence contracts, §Licensing
royalties): a royalty audit's adjustment, the termination of a contract in arrears, and the
recordal's cancellation after it.

* Audit: the bank records the net sales its audit found for a reported period, with the
  reason. The period's royalty is computed again (with the year's top-up); for a period
  not yet paid the new figure is simply what is due; for one already paid the difference
  is billed as its own item (`ADJ<id>`, due `payment_due_days` on) or, when the audit
  found too much paid, becomes the licensee's credit, used by its next payment.
* Termination: once an item is unpaid longer than the grace period after its payment date
  (royalties.GRACE_DAYS, 30 days unless the contract says otherwise) the bank may
  terminate, giving its reason. The licence ends (status `terminated`), the licensee is
  told (event `licence_terminated`), and the recordal's cancellation with CNIPA is tracked
  as a step (its number and date, `record_cancellation`). The case stays open: the
  patent is free again to be disposed of (a new lot, another licence), and what the
  licensee owed up to the termination stays owed and is still collected and routed.

Concurrency: each command locks the contract row first (FOR UPDATE), as reports and
payments do, so an audit, a payment and a termination of one contract take turns and each
sees what the previous did; a termination only updates a contract still `active`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from market.accounts.permissions import MANAGE_LICENCES
from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.licensing.book import Q as QB
from market.licensing.book import adjustment_due_on, load_book
from market.licensing.contracts import ContractOut, contract_out
from market.licensing.royalties import SalesLine, parse_period_label, schedule
from market.money import MAX_FEN
from market.pools.statement_csv import control_character

Q = Queries("licensing_royalties")
REASON_MAX: Final = 1000
NUMBER_MAX: Final = 40


class AdjustIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the bank's royalty audit found for a reported period, and why."""

    period: Annotated[str, Meta(min_length=4, max_length=20)]
    net_sales_fen: Annotated[int, Meta(ge=0, le=MAX_FEN)]
    reason: Annotated[str, Meta(min_length=1, max_length=REASON_MAX)]


class Adjust(AdjustIn, frozen=True, kw_only=True):
    contract_id: int


class AdjustmentOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    contract_id: int
    period: str
    net_sales_fen: int
    due_change_fen: int  # the change of every royalty the audit touches (top-up included)
    billed_fen: int  # of it, on periods already paid: due as ADJ<id> (> 0) or credit (< 0)
    due_on: date | None
    reason: str


class TerminateIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=1, max_length=REASON_MAX)]


class Terminate(TerminateIn, frozen=True, kw_only=True):
    contract_id: int


class CancellationIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The CNIPA number and date of the recordal's cancellation (备案注销)."""

    cancellation_number: Annotated[str, Meta(min_length=1, max_length=NUMBER_MAX)]
    cancelled_on: date


class Cancellation(CancellationIn, frozen=True, kw_only=True):
    contract_id: int


def check_reason(text: str, field: str = "reason") -> str:
    reason = text.strip()
    if not reason:
        raise Invalid("reason_required", field=field)
    if len(reason) > REASON_MAX:
        raise Invalid("too_long", field=field, max=REASON_MAX)
    if char := control_character(reason):
        raise Invalid("control_character_in_text", field=field, char=char)
    return reason


def check_number(text: str, field: str) -> str:
    """A CNIPA number as printed: letters, digits, dashes and dots, no spaces."""
    number = text.strip().upper()
    if not number:
        raise Invalid("required", field=field)
    if len(number) > NUMBER_MAX:
        raise Invalid("too_long", field=field, max=NUMBER_MAX)
    if not all(ch.isascii() and (ch.isalnum() or ch in "-.") for ch in number):
        raise Invalid("cnipa_number_unreadable", field=field, value=text.strip()[:NUMBER_MAX])
    return number


async def lock_for_bank(conn: Conn, org_id: int, contract_id: int) -> ContractOut:
    """The bank's own contract, locked; another's is 404."""
    row = await conn.fetchrow(Q.contract_locked, contract_id)
    if row is None or row["bank_org_id"] != org_id:
        raise NotFound("not_found", field="contract_id")
    return contract_out(row)


@command(MANAGE_LICENCES)
async def adjust_royalty(uow: UnitOfWork, data: Adjust) -> AdjustmentOut:
    """Record a royalty audit of one reported period (module docstring)."""
    conn = uow.conn
    reason = check_reason(data.reason)
    contract = await lock_for_bank(conn, uow.actor.org, data.contract_id)
    try:
        label = parse_period_label(data.period)
    except Invalid as exc:
        raise Invalid(exc.code, field="period", **exc.params) from None
    reports = await conn.fetch(QB.reports_of, contract.id)
    adjustments = await conn.fetch(QB.adjustments_of, contract.id)
    sales = {r["period"]: (r["net_sales_fen"], r["units"]) for r in reports}
    for a in adjustments:
        sales[a["period"]] = (a["net_sales_fen"], sales[a["period"]][1])
    if label not in sales:
        raise Invalid("royalty_not_reported", field="period", period=label)

    def dues(given: dict[str, tuple[int, int]]) -> dict[str, int]:
        lines = [SalesLine(period=k, net_sales_fen=s, units=u) for k, (s, u) in given.items()]
        return {
            i.period.label: i.due.total_fen
            for i in schedule(contract.terms, lines)
            if i.due is not None
        }

    before = dues(sales)
    after = dues({**sales, label: (data.net_sales_fen, sales[label][1])})
    paid = {p["period"] for p in await conn.fetch(QB.payments_of, contract.id)}
    change = sum(after.values()) - sum(before.values())
    billed = sum(after[k] - before[k] for k in after if k in paid)
    today = china_today(uow.at)
    row = returned(
        await conn.fetchrow(
            Q.insert_adjustment,
            contract.id,
            label,
            data.net_sales_fen,
            change,
            reason,
            uow.actor.user,
            uow.at,
            billed,
            adjustment_due_on(today, contract.terms) if billed > 0 else None,
        )
    )
    out = AdjustmentOut(
        id=row["id"],
        contract_id=contract.id,
        period=label,
        net_sales_fen=data.net_sales_fen,
        due_change_fen=change,
        billed_fen=billed,
        due_on=row["due_on"],
        reason=reason,
    )
    uow.audit(
        "royalty.adjust",
        "licence_contract",
        contract.id,
        before={"period": label, "net_sales_fen": sales[label][0]},
        after=msgspec.to_builtins(out),
    )
    return out


@command(MANAGE_LICENCES)
async def terminate_contract(uow: UnitOfWork, data: Terminate) -> ContractOut:
    """End a contract in arrears past the grace period (module docstring)."""
    conn = uow.conn
    reason = check_reason(data.reason)
    contract = await lock_for_bank(conn, uow.actor.org, data.contract_id)
    if contract.status != "active":
        raise Conflict("licence_not_active", field="contract_id", status=contract.status)
    row = returned(await conn.fetchrow(Q.contract_locked, contract.id))
    b = await load_book(conn, row, china_today(uow.at))
    if not b.may_terminate:
        raise Conflict(
            "licence_not_in_arrears", field="contract_id", grace_days=contract.terms.grace_days
        )
    ended = returned(await conn.fetchrow(Q.terminate, contract.id, uow.at, reason, uow.actor.user))
    late = [i.key for i in b.items if i.may_terminate]
    await uow.emit(
        Q.insert_royalty_event,
        "licence_terminated",
        contract.licensee_org_id,
        {
            "contract_id": contract.id,
            "contract_reference": contract.reference,
            "reason": reason,
            "terminated_at": uow.at.isoformat(),
            "unpaid": late,
        },
        f"licence_terminated:{contract.id}",
        uow.at,
    )
    uow.audit(
        "licence_contract.terminate",
        "licence_contract",
        contract.id,
        before={"status": "active"},
        after={"status": "terminated", "reason": reason, "unpaid": late},
    )
    return contract_out(ended)


@command(MANAGE_LICENCES)
async def record_cancellation(uow: UnitOfWork, data: Cancellation) -> ContractOut:
    """The recordal's cancellation with CNIPA after a termination, recorded once."""
    conn = uow.conn
    number = check_number(data.cancellation_number, "cancellation_number")
    contract = await lock_for_bank(conn, uow.actor.org, data.contract_id)
    if contract.status != "terminated":
        raise Conflict("licence_not_terminated", field="contract_id", status=contract.status)
    row = returned(await conn.fetchrow(Q.contract_locked, contract.id))
    if row["cancelled_on"] is not None:
        raise Conflict("recordal_cancelled_already", field="cancellation_number")
    if data.cancelled_on > china_today(uow.at):
        raise Invalid("date_in_future", field="cancelled_on")
    if contract.terminated_at and data.cancelled_on < china_today(contract.terminated_at):
        raise Invalid("cancellation_before_termination", field="cancelled_on")
    updated = returned(
        await conn.fetchrow(Q.record_cancellation, contract.id, number, data.cancelled_on)
    )
    uow.audit(
        "licence_contract.recordal_cancelled",
        "licence_contract",
        contract.id,
        after={"cancellation_number": number, "cancelled_on": data.cancelled_on.isoformat()},
    )
    return contract_out(updated)
