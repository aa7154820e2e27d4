"""The numbers behind disposal by agreement, as data with defaults (docs/rules.md
§Acquisition and pledge-to-equity). Commands take a policy in their input, defaulting to
these, so a test or an exchange-wide setting can change a number without touching a rule."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final

import msgspec
from msgspec import Meta


class AgreementPolicy(msgspec.Struct, frozen=True, kw_only=True):
    # Civil Code art. 436: the agreed value refers to the market price. The exchange reads
    # the market as the last failed auction's start price and a share of the valuation,
    # whichever is higher (docs/rules.md §Acquisition and pledge-to-equity): 70 %, the
    # lowest start an online judicial auction may have (最高人民法院关于人民法院网络司法
    # 拍卖若干问题的规定, 法释〔2016〕18号, art. 10: 不得低于评估价或者市价的百分之七十).
    valuation_floor_percent: Annotated[int, Meta(ge=1, le=100)] = 70
    # The loss-bearing pools' objection window, in calendar days from the proposal
    # (docs/rules.md §Acquisition and pledge-to-equity).
    objection_days: Annotated[int, Meta(ge=1, le=60)] = 10
    # An acquisition institution named as the taker accepts within this many calendar days
    # of the proposal, and never after the pools' window ends (docs/rules.md §Acquisition
    # and pledge-to-equity, "By an acquisition institution").
    acceptance_days: Annotated[int, Meta(ge=1, le=60)] = 10
    # What an objection must say.
    reason_max_chars: Annotated[int, Meta(ge=10, le=2000)] = 500

    @property
    def objection_window(self) -> timedelta:
        return timedelta(days=self.objection_days)

    @property
    def acceptance_window(self) -> timedelta:
        return timedelta(days=self.acceptance_days)

    def floor_of_valuation(self, value_fen: int) -> int:
        """The share of the valuation an agreed price may not go below, rounded up to the
        fen (a price a fen short of 70 % is below it)."""
        return -(-value_fen * self.valuation_floor_percent // 100)


POLICY: Final = msgspec.convert({}, AgreementPolicy)  # the defaults, validated
