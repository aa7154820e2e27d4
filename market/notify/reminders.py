"""Ending-soon reminders (docs/rules.md §Notifications): registered bidders are reminded at
lead times before a lot's effective end — 24 hours, 1 hour and 10 minutes by default.

The rule, evaluated afresh on every run from the lot's current end (so no reminder is
ever scheduled ahead and left stale):
* a reminder of lead L for a lot is due while `end − L ≤ now < end`; nothing is written at
  or after the end, however late the job runs;
* an extension moves the end, and with it every reminder not yet written: none at the old
  moment, one at the new;
* one reminder per (lot, round, lead, registration), by its dedupe key: a job run twice,
  or an extension after a reminder went out, does not repeat it (the `extended` event
  tells bidders about the new end);
* only the SHORTEST due lead is written. Normally the job runs every 30 s and each lead is
  written at its own moment; after downtime, a bidder 30 minutes from the end gets "1 hour"
  alone, not "24 hours" and "1 hour" together. A longer lead skipped this way is never
  written later, since a shorter one stays due from then on.
* DECISION — a lead already passed when bidding opened is skipped: the lot opened inside
  it (e.g. the 24 h reminder of a 24 h auction is due exactly at the opening), and
  `bidding_opened` has just told every registered bidder the end. A strict `>` against
  the opening makes the 24 h reminder of a 24 h window silent; if an extension later puts
  the lead's moment after the opening, it is written then, when it is true.
A registration made during bidding hears the lead due at its next run.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

import msgspec

from market.commands import UnitOfWork, command
from market.db import Queries
from market.errors import BadValue

Q = Queries("events")

# The defaults of docs/rules.md §Notifications: 24 h, 1 h and 10 min before the end.
DEFAULT_LEADS: Final = (timedelta(hours=24), timedelta(hours=1), timedelta(minutes=10))
# A reminder sooner than a minute before the end is noise; one longer than the longest
# bidding window we allow (60 days, the fixed-price sale) can never be due.
MIN_LEAD: Final = timedelta(minutes=1)
MAX_LEAD: Final = timedelta(days=60)
MAX_LEADS: Final = 6

_LEAD = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Reminded(msgspec.Struct, frozen=True, kw_only=True):
    """One reminder written: its outbox row, lot, recipient and dedupe key."""

    outbox_id: int
    lot_id: int
    user_id: int
    dedupe_key: str


class ReminderLeads(msgspec.Struct, frozen=True, kw_only=True):
    """The lead times to remind at (check_leads checks them)."""

    leads: tuple[timedelta, ...] = DEFAULT_LEADS


def check_leads(leads: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
    """The lead times sorted longest first, or BadValue (a ValueError) naming what is wrong."""
    if not leads:
        raise BadValue("reminder_leads_empty")
    if len(leads) > MAX_LEADS:
        raise BadValue("reminder_leads_too_many", max=MAX_LEADS)
    for lead in leads:
        if lead % timedelta(seconds=1):
            raise BadValue("reminder_lead_fraction", lead=str(lead))
        if not MIN_LEAD <= lead <= MAX_LEAD:
            raise BadValue(
                "reminder_lead_out_of_range", lead=str(lead), min=str(MIN_LEAD), max=str(MAX_LEAD)
            )
    return tuple(sorted(set(leads), reverse=True))


def parse_leads(text: str) -> tuple[timedelta, ...]:
    """'24h,1h,10m' (units s, m, h, d; a bare number is seconds) → checked lead times.

    For a setting such as MARKET_REMINDER_LEADS.
    """
    leads = []
    for part in text.split(","):
        match = _LEAD.match(part)
        if match is None:
            raise BadValue("reminder_lead_unreadable", text=part.strip())
        leads.append(timedelta(seconds=int(match[1]) * _UNIT[match[2]]))
    return check_leads(tuple(leads))


@command(None)
async def remind_ending_soon(uow: UnitOfWork, data: ReminderLeads) -> list[Reminded]:
    """Write every ending-soon reminder due now (module docstring); returns the rows
    written by this call (none for those another run wrote before).

    Concurrent runs stay correct without a lock: each reminder's dedupe key is unique, so
    of two runs writing the same one, the second's row is dropped by ON CONFLICT."""
    seconds = [int(lead.total_seconds()) for lead in check_leads(data.leads)]
    rows = await uow.conn.fetch(Q.insert_ending_soon, uow.at, seconds, max(seconds))
    # The statement returns what it wrote (uow.emit counts rows but returns no ids): the
    # relay is kicked after the commit all the same.
    uow.events += len(rows)
    return [
        Reminded(
            outbox_id=r["id"],
            lot_id=r["lot_id"],
            user_id=r["recipient_user_id"],
            dedupe_key=r["dedupe_key"],
        )
        for r in rows
    ]
