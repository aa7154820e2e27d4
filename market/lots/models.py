"""What the lots API takes and gives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from market.lots.terms import Terms, TermsInput


class LotDraft(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new lot, or the new content of a draft. asset_ids default to all the case's assets."""

    title: Annotated[str, Meta(min_length=1, max_length=300)]
    description: Annotated[str, Meta(max_length=20_000)] = ""
    asset_ids: list[int] | None = None
    # English ascending auction (default) or a sealed-bid tender (issue 4, item 3).
    auction_kind: Literal["english", "sealed"] = "english"
    # Only for a lot offering part of the case's collateral: its share of the valuation.
    valuation_fen: Annotated[int, Meta(gt=0)] | None = None
    terms: TermsInput


class LotUpdate(LotDraft, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: int  # the version the editor read; a stale one is refused (409)


# Actions a bank may take on its lot (the worker opens bidding and expires pauses).
class PublishInput(
    msgspec.Struct, frozen=True, tag_field="action", tag="publish", forbid_unknown_fields=True
):
    pass


class WithdrawInput(
    msgspec.Struct, frozen=True, tag_field="action", tag="withdraw", forbid_unknown_fields=True
):
    reason: Annotated[str, Meta(min_length=1, max_length=500)]


class PauseInput(
    msgspec.Struct, frozen=True, tag_field="action", tag="pause", forbid_unknown_fields=True
):
    reason: Annotated[str, Meta(min_length=1, max_length=500)]


class ResumeInput(
    msgspec.Struct, frozen=True, tag_field="action", tag="resume", forbid_unknown_fields=True
):
    pass


class RelistInput(
    msgspec.Struct, frozen=True, tag_field="action", tag="relist", forbid_unknown_fields=True
):
    terms: TermsInput


class FixedPriceInput(
    msgspec.Struct, frozen=True, tag_field="action", tag="fixed_price", forbid_unknown_fields=True
):
    ends_at: datetime


ActionInput = (
    PublishInput | WithdrawInput | PauseInput | ResumeInput | RelistInput | FixedPriceInput
)


class LotOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    case_id: int
    title: str
    description: str
    status: str
    round: int
    auction_kind: str
    valuation_fen: int
    start_price_fen: int
    deposit_fen: int
    increment_fen: int
    first_start_fen: int
    terms: Terms
    announced_at: datetime | None
    bidding_starts_at: datetime | None
    bidding_ends_at: datetime | None
    paused_from: str | None
    resume_by: datetime | None
    status_reason: str
    asset_ids: list[int]
    version: int
