"""When the exchange must have paid what it owes (docs/rules.md §Payments out)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final

import msgspec
from msgspec import Meta


class PaymentsPolicy(msgspec.Struct, frozen=True, kw_only=True):
    # A released deposit is refunded within 24 hours (最高人民法院关于人民法院网络司法拍卖
    # 若干问题的规定, 法释〔2016〕18号, art. 24; docs/rules.md §Payments out).
    deposit_refund_hours: Annotated[int, Meta(ge=1, le=72)] = 24
    # A payout of the waterfall (and a refund of a sale) is due within 5 calendar days:
    # no law fixes it; five calendar days hold at least three working days in any week
    # without a public holiday (the working-day calendar of §Listing counts listing periods
    # only)
    # (docs/rules.md §Payments out).
    payout_days: Annotated[int, Meta(ge=1, le=30)] = 5

    @property
    def deposit_refund_within(self) -> timedelta:
        return timedelta(hours=self.deposit_refund_hours)

    @property
    def payout_within(self) -> timedelta:
        return timedelta(days=self.payout_days)


POLICY: Final = msgspec.convert({}, PaymentsPolicy)  # the defaults, validated
