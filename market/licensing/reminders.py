"""Royalty reminders (docs/rules.md §Licensing royalties): the licensee is told before and
after each report's and each payment's due date — a week and a day before, the day after,
mid grace and five days before the bank may terminate (royalties.RoyaltyReminders) —
with the events `royalty_report_due`, `royalty_payment_due` (before the payment date) and
`royalty_payment_late` (after it, with the interest accrued so far).

The rule is evaluated afresh on every run from each running contract's book
(market/licensing/book.py) on the day of the run, so nothing is scheduled ahead: a report
or a payment recorded meanwhile ends its reminders. Each reminder is written once, by its
dedupe key `royalty:<contract>:<item>:<about>:<when>:<days>`: a job run twice, or two
workers at once, write it once (ON CONFLICT DO NOTHING; no lock needed). A worker that was
down writes, at its next run, the reminders whose day has come and are still true.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import msgspec

from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Queries
from market.licensing.book import Item, load_book
from market.licensing.royalties import REMINDERS, Reminder, RoyaltyReminders, _reminders

Q = Queries("licensing_royalties")
BATCH: Final = 500


class RemindRoyalties(msgspec.Struct, frozen=True, kw_only=True):
    policy: RoyaltyReminders = REMINDERS


class RoyaltyReminded(msgspec.Struct, frozen=True, kw_only=True):
    contracts: int  # running contracts looked at
    written: int  # reminders written by this run


def event_of(r: Reminder) -> str:
    if r.about == "report":
        return "royalty_report_due"
    return "royalty_payment_due" if r.when == "before" else "royalty_payment_late"


def _owed(i: Item, today: date, policy: RoyaltyReminders) -> tuple[Reminder, ...]:
    """The reminders of an item: a period's from its standing; the upfront fee's and an
    audit's difference's from their payment date."""
    if i.kind == "royalty":
        return i.reminders
    if i.settled:
        return ()
    return tuple(_reminders("payment", i.due_on, today, policy))


@command(None)  # the exchange reminds, on its clock
async def remind_royalties(uow: UnitOfWork, data: RemindRoyalties) -> RoyaltyReminded:
    """Write every royalty reminder due today (module docstring)."""
    conn = uow.conn
    today = china_today(uow.at)
    after, looked, written = 0, 0, 0
    while True:
        rows = await conn.fetch(Q.running_contracts, after, BATCH)
        if not rows:
            break
        for row in rows:
            after = row["id"]
            looked += 1
            b = await load_book(conn, row, today)
            for i in b.items:
                for r in _owed(i, today, data.policy):
                    written += await uow.emit(
                        Q.insert_royalty_event,
                        event_of(r),
                        row["licensee_org_id"],
                        {
                            "contract_id": row["id"],
                            "contract_reference": row["reference"],
                            "period": i.key,
                            "payment_reference": i.payment_reference,
                            "about": r.about,
                            "when": r.when,
                            "days": r.days,
                            "due_on": (i.report_due if r.about == "report" else i.due_on),
                            "owed_fen": i.owed_fen,
                            "interest_fen": i.interest_fen,
                        },
                        f"royalty:{row['id']}:{i.key}:{r.about}:{r.when}:{r.days}",
                        uow.at,
                    )
    return RoyaltyReminded(contracts=looked, written=written)
