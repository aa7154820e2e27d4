"""The listing's numbers, as data with defaults (docs/rules.md §Listing).

Pure: no database, no clock. Carried inside the lots' `TermsPolicy` (market/lots/terms.py)
so every command that checks a lot's terms checks a listing's with the same policy.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import msgspec

from market.cases.policy import CHINA
from market.listing.calendar import add_working_days


class ListingPolicy(msgspec.Struct, frozen=True, kw_only=True):
    # The disclosure period (信息披露期) lasts at least 20 working days: the figure the
    # property-rights exchanges apply to state-owned property (企业国有资产交易监督管理办法,
    # 国资委 财政部令第32号; docs/rules.md §Listing); 20 unless the lot says more.
    min_period_working_days: int = 20
    default_period_working_days: int = 20
    max_period_working_days: int = 250
    # A period that ended without a qualified intent may be extended by 5 working days.
    extension_working_days: int = 5
    # One qualified intent: bank and buyer confirm the negotiated transfer (协议转让)
    # within 5 working days of the period's end.
    confirm_working_days: int = 5
    # Two or more: the online auction's window, at least the lots' minimum of 24 hours.
    default_auction_hours: int = 24
    max_auction_hours: int = 720


def end_of_working_days(at: datetime, n: int) -> datetime:
    """The end (24:00 Beijing time) of the `n`th working day after the day of `at` in
    Beijing (民法典 art. 201 and 203: the first day is not counted; a period ends at 24:00
    of its last day)."""
    last = add_working_days(at.astimezone(CHINA).date(), n)
    return datetime.combine(last + timedelta(days=1), time(0), tzinfo=CHINA)
