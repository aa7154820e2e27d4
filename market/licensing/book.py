"""A licence contract's book: every amount it makes due — the upfront fee, each royalty
period, each audit's difference — with what was paid, the interest on arrears and what is
owed on a given day (docs/rules.md §Licensing royalties).

`book(...)` is pure: it takes the contract's rows (reports, payments, adjustments) and a
day, and asks market/licensing/royalties.py for the schedule (`schedule`), the standing of
each period (`standing`: interest, reminders, may-terminate) and late interest
(`arrears_interest`). `load_book` reads the rows; the commands that pay, report and audit
call it under the contract's row lock.

The items and their keys (the `period` of royalty_payments, and the tail of the payment
reference the licensee writes on its transfer, `XK-2027-000001-2027Q1`):
* `UPFRONT` — the upfront fee (入门费), due on the first day of the licence;
* a period's label (`2027Q1`, `2027H2`, `2027`) — its royalty, due `payment_due_days`
  after the period ends; unknown until the period is reported;
* `ADJ<id>` — what an audit found short on a period already paid, due
  `payment_due_days` after the audit. An audit of a period not yet paid changes that
  period's royalty instead; one that found too much paid is the licensee's credit, used
  by its next payment.

Each item is paid once, in full: royalty plus the interest accrued on the day of payment,
less any credit. A paid period's royalty is what was paid for it (an audit after the
payment bills the difference as its own item), so the book never counts a fen twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Final, Literal

import asyncpg
import msgspec

from market.db import Conn, Queries
from market.licensing.contracts import ContractOut, contract_out
from market.licensing.royalties import (
    Due,
    Installment,
    Payment,
    Reminder,
    RoyaltyTerms,
    SalesLine,
    arrears_interest,
    days_late,
    periods,
    schedule,
    standing,
)

Q = Queries("licensing_royalties")

UPFRONT: Final = "UPFRONT"
ADJUSTMENT: Final = "ADJ"
ItemKind = Literal["licence_fee", "royalty", "adjustment"]


def payment_reference(contract_reference: str, key: str) -> str:
    """What the licensee writes on its transfer: the contract's reference and the item's
    key (`XK-2027-000001-2027Q1`). Statement matching reads it without dashes or spaces."""
    return f"{contract_reference}-{key}"


def compact(reference: str) -> str:
    """A payment reference as market/pools/matching.reference_tokens folds it."""
    return "".join(ch for ch in reference.upper() if ch.isalnum())


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One amount the contract makes due, as it stands on `today`."""

    key: str
    kind: ItemKind
    payment_reference: str
    start: date | None  # a period's first and last day
    end: date | None
    report_due: date | None
    due_on: date
    net_sales_fen: int | None  # as reported (or as an audit found them)
    units: int | None
    due_fen: int | None  # None while its report is missing
    paid_fen: int  # the royalty (or fee) paid, credit included
    interest_fen: int  # interest on arrears, to payment or to today
    owed_fen: int | None  # what settles it today: royalty + interest unpaid; None if unknown
    days_late: int
    paid_on: date | None
    settled: bool
    report_missing: bool
    may_terminate: bool
    reminders: tuple[Reminder, ...] = ()


class Book(msgspec.Struct, frozen=True, kw_only=True):
    contract: ContractOut
    today: date
    items: tuple[Item, ...]
    credit_fen: int  # the licensee's credit from audits, not yet used
    may_terminate: bool  # an item unpaid past the grace period
    recordal_overdue: bool


def _sales(
    reports: Sequence[asyncpg.Record], adjustments: Sequence[asyncpg.Record]
) -> dict[str, tuple[int, int]]:
    """Net sales per period: as reported, or as the latest audit found them."""
    out = {r["period"]: (r["net_sales_fen"], r["units"]) for r in reports}
    for a in adjustments:
        if a["period"] in out:
            out[a["period"]] = (a["net_sales_fen"], out[a["period"]][1])
    return out


def _simple_item(
    *,
    key: str,
    kind: ItemKind,
    reference: str,
    due_on: date,
    due_fen: int,
    paid: asyncpg.Record | None,
    today: date,
    terms: RoyaltyTerms,
) -> Item:
    """The upfront fee or an audit's difference: a fixed amount due on a day."""
    if paid is not None:
        paid_on: date = paid["paid_on"]
        interest = paid["interest_fen"]
        late = days_late(due_on, paid_on)
        owed = 0
    else:
        paid_on = None  # type: ignore[assignment]
        interest = arrears_interest(due_fen, due_on, today, terms)
        late = days_late(due_on, today)
        owed = due_fen + interest
    return Item(
        key=key,
        kind=kind,
        payment_reference=reference,
        start=None,
        end=None,
        report_due=None,
        due_on=due_on,
        net_sales_fen=None,
        units=None,
        due_fen=due_fen,
        paid_fen=due_fen if paid is not None else 0,
        interest_fen=interest,
        owed_fen=owed,
        days_late=late,
        paid_on=paid_on,
        settled=paid is not None,
        report_missing=False,
        may_terminate=paid is None and late > terms.grace_days,
    )


def book(
    contract: ContractOut,
    reports: Sequence[asyncpg.Record],
    payments: Sequence[asyncpg.Record],
    adjustments: Sequence[asyncpg.Record],
    today: date,
) -> Book:
    """The contract's items as they stand on `today` (module docstring)."""
    terms = contract.terms
    paid = {p["period"]: p for p in payments}
    sales = _sales(reports, adjustments)
    lines = [
        SalesLine(period=label, net_sales_fen=fen, units=units)
        for label, (fen, units) in sales.items()
    ]
    installments: list[Installment] = []
    for scheduled in schedule(terms, lines):
        p = paid.get(scheduled.period.label)
        kept = scheduled
        if p is not None and scheduled.due is not None:
            # A paid period is what was paid for it; an audit after bills its own item.
            royalty = p["amount_fen"] + p["credit_fen"] - p["interest_fen"]
            kept = msgspec.structs.replace(
                scheduled,
                due=Due(
                    period=scheduled.period.label,
                    running_fen=royalty,
                    minimum_fen=0,
                    top_up_fen=0,
                    total_fen=royalty,
                ),
            )
        installments.append(kept)
    paid_periods = [
        Payment(
            paid_on=p["paid_on"],
            amount_fen=p["amount_fen"] + p["credit_fen"],
            period=p["period"],
        )
        for p in payments
        if p["kind"] == "royalty"
    ]
    # A payment of `today` counts; one dated later than the book's day is not seen yet.
    seen = [p for p in paid_periods if p.paid_on <= today]
    stand = standing(installments, seen, today, terms=terms)
    items: list[Item] = []
    if contract.upfront_fen:
        items.append(
            _simple_item(
                key=UPFRONT,
                kind="licence_fee",
                reference=payment_reference(contract.reference, UPFRONT),
                due_on=terms.start,
                due_fen=contract.upfront_fen,
                paid=paid.get(UPFRONT),
                today=today,
                terms=terms,
            )
        )
    for s in stand.periods:
        label = s.period.label
        p = paid.get(label)
        report = sales.get(label)
        owed = None if s.outstanding_fen is None else s.outstanding_fen + s.interest_fen
        if owed is not None:
            owed -= s.interest_paid_fen
        items.append(
            Item(
                key=label,
                kind="royalty",
                payment_reference=payment_reference(contract.reference, label),
                start=s.period.start,
                end=s.period.end,
                report_due=s.period.report_due,
                due_on=s.period.payment_due,
                net_sales_fen=report[0] if report else None,
                units=report[1] if report else None,
                due_fen=s.due_fen,
                paid_fen=s.paid_fen,
                interest_fen=s.interest_fen,
                owed_fen=owed,
                days_late=s.days_late,
                paid_on=p["paid_on"] if p is not None else None,
                settled=s.settled,
                report_missing=s.report_missing,
                may_terminate=s.may_terminate,
                reminders=s.reminders,
            )
        )
    credit = 0
    for a in adjustments:
        if a["billed_fen"] > 0:
            key = f"{ADJUSTMENT}{a['id']}"
            items.append(
                _simple_item(
                    key=key,
                    kind="adjustment",
                    reference=payment_reference(contract.reference, key),
                    due_on=a["due_on"],
                    due_fen=a["billed_fen"],
                    paid=paid.get(key),
                    today=today,
                    terms=terms,
                )
            )
        else:
            credit -= a["billed_fen"]
    credit -= sum(int(p["credit_fen"]) for p in payments)
    return Book(
        contract=contract,
        today=today,
        items=tuple(items),
        credit_fen=credit,
        may_terminate=contract.status == "active" and any(i.may_terminate for i in items),
        recordal_overdue=contract.recorded_on is None and today > contract.recordal_due_on,
    )


def item(b: Book, key: str) -> Item | None:
    return next((i for i in b.items if i.key == key), None)


def period_keys(terms: RoyaltyTerms) -> list[str]:
    return [p.label for p in periods(terms)]


async def load_book(conn: Conn, row: asyncpg.Record, today: date) -> Book:
    """The book of a contract row (locked by the caller when it will write)."""
    contract_id = row["id"]
    return book(
        contract_out(row),
        await conn.fetch(Q.reports_of, contract_id),
        await conn.fetch(Q.payments_of, contract_id),
        await conn.fetch(Q.adjustments_of, contract_id),
        today,
    )


def adjustment_due_on(today: date, terms: RoyaltyTerms) -> date:
    """An audit's difference is due as a period's royalty is: `payment_due_days` on."""
    return today + timedelta(days=terms.payment_due_days)
