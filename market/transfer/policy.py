"""The transfer's deadlines as data (docs/rules.md §Transfer of title).

The law under the steps: a patent's assignment takes effect on its registration with
CNIPA (专利法 art. 10); a trademark's when the trademark office approves it (商标法
art. 42); a software copyright's transfer is registered with the copyright centre
(计算机软件著作权登记办法). A pledged right may not be transferred without the pledgee's
consent (民法典 art. 444, 446), so the pledgee's release of the pledge registration
(质押登记注销) comes first or with the recordal.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from market.errors import Invalid

_Days = Annotated[int, Meta(ge=1, le=365)]


class TransferPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """docs/rules.md §Transfer of title: every number of the steps."""

    # The pledgee uploads the release of the pledge registration within this many days of
    # the balance being paid.
    release_days: _Days = 30
    # The buyer uploads the recordal of the transfer within this many days of payment
    # (CNIPA usually records a change of owner within one to two months).
    recordal_days: _Days = 90
    # The operator checks the notices within this many days of the last one arriving.
    check_days: _Days = 5
    # A party whose notice was rejected has at least this long to upload it again.
    resubmit_days: _Days = 10
    # Reminders this many days before a step's deadline.
    reminder_days: tuple[int, ...] = (7, 1)

    @property
    def release(self) -> timedelta:
        return timedelta(days=self.release_days)

    @property
    def recordal(self) -> timedelta:
        return timedelta(days=self.recordal_days)

    @property
    def check(self) -> timedelta:
        return timedelta(days=self.check_days)

    @property
    def resubmit(self) -> timedelta:
        return timedelta(days=self.resubmit_days)


def validate(policy: TransferPolicy) -> TransferPolicy:
    """The recordal needs the release first (民法典 art. 444), so its deadline is later;
    reminders come before a deadline, not on or after it."""
    if policy.recordal_days <= policy.release_days:
        raise Invalid(
            "transfer_recordal_before_release",
            field="recordal_days",
            release_days=policy.release_days,
        )
    for i, days in enumerate(policy.reminder_days):
        if not 1 <= days < policy.release_days:
            raise Invalid("transfer_reminder_out_of_range", field=f"reminder_days[{i}]", days=days)
    return policy


DEFAULT_POLICY: Final = validate(TransferPolicy())
