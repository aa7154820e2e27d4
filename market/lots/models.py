"""What the lots API takes and gives, and the inputs of the lots' commands."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from market.lots.terms import Terms, TermsInput, TermsPolicy


class LotDraft(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new lot, or the new content of a draft. asset_ids default to all the case's assets."""

    title: Annotated[str, Meta(min_length=1, max_length=300)]
    description: Annotated[str, Meta(max_length=20_000)] = ""
    asset_ids: list[int] | None = None
    # English ascending auction (default) or a sealed-bid tender (docs/rules.md §Bidding).
    auction_kind: Literal["english", "sealed"] = "english"
    # The lot's assets' part of the case's valuation is computed (docs/rules.md §Lot
    # terms); a value given must be that part.
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
    # A bank's own words for a withdrawal or a pause, or the catalog key of the
    # exchange's reason (market/lots/lifecycle.SYSTEM_REASONS: `lot.reason.…`).
    status_reason: str
    asset_ids: list[int]
    version: int


# --- the commands' inputs (market/lots/services.py) ------------------------------------
# Each carries the exchange's terms policy: the handler or job that runs the command
# builds it from the settings (services.policy_for); it is never read from a request.


class DraftLot(msgspec.Struct, frozen=True, kw_only=True):
    case_id: int
    lot: LotDraft
    policy: TermsPolicy


class UpdateLot(msgspec.Struct, frozen=True, kw_only=True):
    lot_id: int
    lot: LotUpdate
    policy: TermsPolicy


class OnLot(msgspec.Struct, frozen=True, kw_only=True):
    """A bank's action on one of its lots."""

    lot_id: int
    policy: TermsPolicy


class PublishLot(OnLot, frozen=True, kw_only=True):
    pass


class WithdrawLot(OnLot, frozen=True, kw_only=True):
    reason: str


class PauseLot(OnLot, frozen=True, kw_only=True):
    reason: str


class ResumeLot(OnLot, frozen=True, kw_only=True):
    pass


class RelistLot(OnLot, frozen=True, kw_only=True):
    terms: TermsInput


class SellAtFixedPrice(OnLot, frozen=True, kw_only=True):
    ends_at: datetime


class DueLots(msgspec.Struct, frozen=True, kw_only=True):
    """One batch of the worker's timed transitions."""

    policy: TermsPolicy
    batch: int = 200
