"""Ending-soon reminders (issue 5 item 5): registered bidders are reminded at lead times
before a lot's effective end — 24 hours, 1 hour and 10 minutes by default.

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
from datetime import datetime, timedelta
from typing import Final

import asyncpg
import msgspec

from market.db import Queries

Q = Queries("events")

# Issue 5 item 5: "ending-soon reminders at configurable lead times (defaults 24 h, 1 h,
# 10 min)".
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


def check_leads(leads: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
    """The lead times sorted longest first, or ValueError naming what is wrong."""
    if not leads:
        raise ValueError("at least one reminder lead time is needed")
    if len(leads) > MAX_LEADS:
        raise ValueError(f"at most {MAX_LEADS} reminder lead times")
    for lead in leads:
        if lead % timedelta(seconds=1):
            raise ValueError(f"reminder lead {lead} is not a whole number of seconds")
        if not MIN_LEAD <= lead <= MAX_LEAD:
            raise ValueError(f"reminder lead {lead} is outside {MIN_LEAD} … {MAX_LEAD}")
    return tuple(sorted(set(leads), reverse=True))


def parse_leads(text: str) -> tuple[timedelta, ...]:
    """'24h,1h,10m' (units s, m, h, d; a bare number is seconds) → checked lead times.

    For a setting such as MARKET_REMINDER_LEADS.
    """
    leads = []
    for part in text.split(","):
        match = _LEAD.match(part)
        if match is None:
            raise ValueError(f"'{part.strip()}' is not a lead time such as 24h, 1h or 10m")
        leads.append(timedelta(seconds=int(match[1]) * _UNIT[match[2]]))
    return check_leads(tuple(leads))


async def remind_ending_soon(
    pool: asyncpg.Pool, now: datetime, leads: tuple[timedelta, ...] = DEFAULT_LEADS
) -> list[Reminded]:
    """Write every ending-soon reminder due at `now` (module docstring); returns the rows
    written by this call (none for those another run wrote before)."""
    seconds = [int(lead.total_seconds()) for lead in check_leads(leads)]
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(Q.insert_ending_soon, now, seconds, max(seconds))
    return [
        Reminded(
            outbox_id=r["id"],
            lot_id=r["lot_id"],
            user_id=r["recipient_user_id"],
            dedupe_key=r["dedupe_key"],
        )
        for r in rows
    ]
