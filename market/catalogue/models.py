"""Types of the public catalogue: what a search asks, and the public view of a lot.

Only public fields live here. A bank's notes, the loan, the claim and the pledgor's credit
code never leave the bank's own pages, so no type here can carry them by accident.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final, Literal

import msgspec

from market.lots.terms import Mode, Offers

LotStatus = Literal[
    "draft", "announced", "bidding", "sold", "failed", "paused", "withdrawn", "returned"
]
# Every state a visitor may see; a draft is the bank's own business.
PublicStatus = Literal["announced", "bidding", "sold", "failed", "paused", "withdrawn", "returned"]
PUBLIC_STATUSES: Final[tuple[PublicStatus, ...]] = (
    "announced",
    "bidding",
    "sold",
    "failed",
    "paused",
    "withdrawn",
    "returned",
)
# What the catalogue shows unless asked otherwise: lots one can still register for or bid on.
DEFAULT_STATUSES: Final[tuple[PublicStatus, ...]] = ("announced", "bidding")

AssetKind = Literal["patent", "trademark", "software_copyright"]
ASSET_KINDS: Final[tuple[AssetKind, ...]] = ("patent", "trademark", "software_copyright")

# ending: soonest bidding end first; newest: latest published first; price_*: by the
# current price (the highest bid, else the start); relevance: ts_rank, only with keywords.
Sort = Literal["ending", "newest", "price_asc", "price_desc", "relevance"]
SORTS: Final[tuple[Sort, ...]] = ("ending", "newest", "price_asc", "price_desc", "relevance")

# "Ending soon": bidding that closes within the next 24 hours.
ENDING_SOON: Final = timedelta(hours=24)
PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
# Counting every match of a broad search would read the whole table; past this the page
# says "10,000+" (the count query stops at COUNT_CAP + 1 rows).
COUNT_CAP: Final = 10_000
# Deep pages cost a scan of every row before them and nobody reads page 500 of a
# catalogue; narrowing the search is the way there.
MAX_OFFSET: Final = 10_000


class CatalogueQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A catalogue search. Build it with services.parse_query from request parameters, or
    directly (the benchmark does); services.search validates it either way."""

    q: str | None = None  # keywords, Chinese or Latin
    ipc: str | None = None  # IPC prefix as typed: "H01M", "H01M 4/", "H01M 4/525"
    kind: AssetKind | None = None
    region: str | None = None  # prefix of the lot's region, e.g. "四川" or "四川省成都市"
    price_min_fen: int | None = None  # on the current price (highest bid, else start)
    price_max_fen: int | None = None
    statuses: tuple[PublicStatus, ...] = DEFAULT_STATUSES
    ending_soon: bool = False
    sort: Sort | None = None  # None: ending soonest while live lots are shown, else newest
    page: int = 1
    page_size: int = PAGE_SIZE


class LotCard(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the results: public columns only."""

    reference: str
    title: str
    status: PublicStatus
    round: int
    asset_kinds: list[str]
    ipc_codes: list[str]  # full codes, "H01M 4/525"
    region: str
    price_fen: int  # the current price: highest bid, else the starting price
    start_price_fen: int
    current_price_fen: int | None
    deposit_fen: int
    announced_at: datetime | None
    bidding_starts_at: datetime | None
    bidding_ends_at: datetime | None
    published_at: datetime | None
    # A listing (挂牌, docs/rules.md §Listing) beside the auctions: its period ends at
    # `listing_ends_at` while it is announced (its auction, if any, then opens).
    mode: Mode = "auction"
    listing_ends_at: datetime | None = None


class CataloguePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[LotCard]
    page: int
    page_size: int
    has_next: bool
    total: int  # exact unless total_capped, then "at least COUNT_CAP"
    total_capped: bool
    sort: Sort


class LotTerms(msgspec.Struct, frozen=True, kw_only=True):
    """The terms a bidder reads; what the stored terms do not say is None, not invented."""

    start_price_fen: int
    deposit_fen: int
    increment_fen: int
    current_price_fen: int | None
    extension_window_s: int | None
    extension_s: int | None
    payment_days: int | None
    fee_kind: Literal["commission", "buyer_premium"] | None
    # commission: [(up_to_fen or None, rate_bp)]; buyer_premium: its rate
    commission_tiers: list[tuple[int | None, int]] | None
    premium_bp: int | None
    preemptive_holders: int
    # What the lot takes and how the bank values licence offers against the top bid
    # (docs/rules.md §Licence offers and decision), as announced with it.
    offers: Offers = Offers()


class ValuationSummary(msgspec.Struct, frozen=True, kw_only=True):
    method: Literal["appraisal", "internal"]
    value_fen: int
    valued_on: date
    valid_until: date
    appraiser: str | None


class PublicAsset(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: AssetKind
    number: str
    title: str
    abstract: str
    patent_type: str | None
    ipc_codes: list[str]
    nice_classes: list[int]
    legal_status: str
    term_ends_on: date | None
    valid_until: date | None
    annuity_paid_through: date | None
    owners: list[str]
    licences: str
    encumbrances: str


class RiskWarning(msgspec.Struct, frozen=True, kw_only=True):
    """风险提示: an unresolved monitoring flag on one of the lot's assets."""

    asset_number: str
    kind: str  # annuity_due, annuity_grace, lapsed, expiring, expired, invalidated
    raised_at: datetime  # when monitoring noticed it
    # A lapse's own date (market/collateral/monitoring.lapsed_on), which the page shows
    # rather than the day it was noticed; None for other kinds or when not known.
    lapsed_on: date | None = None


class PublicDocument(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    item: str
    filename: str
    content_type: str
    size_bytes: int
    uploaded_at: datetime
    url: str


class LotDetail(msgspec.Struct, frozen=True, kw_only=True):
    reference: str
    title: str
    description: str
    status: PublicStatus
    round: int
    seller: str  # the bank's name: who disposes of the collateral
    region: str
    asset_kinds: list[str]
    announced_at: datetime | None
    bidding_starts_at: datetime | None
    bidding_ends_at: datetime | None
    published_at: datetime | None
    terms: LotTerms
    mode: Mode = "auction"
    listing_ends_at: datetime | None = None
    valuation: ValuationSummary | None
    assets: list[PublicAsset]
    warnings: list[RiskWarning]
    documents: list[PublicDocument]


class DocumentBytes(msgspec.Struct, frozen=True, kw_only=True):
    filename: str
    content_type: str
    content: bytes
