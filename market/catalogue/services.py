"""The public catalogue: search of published lots, the public lot and its documents.

Read-only and open to everyone, so two rules hold in every query: drafts never appear
(status <> 'draft'), and only public columns are selected (sql/queries/catalogue.sql).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import asyncpg
import msgspec

from market.catalogue.models import (
    ASSET_KINDS,
    COUNT_CAP,
    DEFAULT_STATUSES,
    ENDING_SOON,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    PUBLIC_STATUSES,
    SORTS,
    CataloguePage,
    CatalogueQuery,
    DocumentBytes,
    LotCard,
    LotDetail,
    LotTerms,
    PublicAsset,
    PublicDocument,
    PublicStatus,
    RiskWarning,
    Sort,
    ValuationSummary,
)
from market.catalogue.text import format_ipc_key, ipc_filter_key, search_query
from market.collateral.monitoring import AssetFacts, lapsed_on
from market.db import Queries
from market.errors import BadValue, Invalid, NotFound
from market.lots.terms import Offers
from market.money import parse_cny

Q = Queries("catalogue")

MAX_QUERY_LENGTH: Final = 200
MAX_REGION_LENGTH: Final = 60  # lots.region / pledgors.region are at most 60 characters
_LIVE: Final = frozenset({"announced", "bidding"})
_TRUE: Final = frozenset({"1", "true", "on", "yes"})
_FALSE: Final = frozenset({"", "0", "false", "off", "no"})


# Seconds between refreshes of the catalogue price (migration 0012): how far a live lot's
# place in a price sort or range may trail its bidding. The worker's cron runs it.
PRICE_REFRESH_SECONDS: Final = 10
# Lots a refresh statement updates at once: a bid batch on one of them waits for at most
# one such statement (a few milliseconds), not for a thousand lots' update.
PRICE_REFRESH_CHUNK: Final = 100


async def refresh_prices(pool: asyncpg.Pool, chunk: int = PRICE_REFRESH_CHUNK) -> int:
    """Bring the catalogue price of every lot whose bidding moved up to its live price, a
    chunk of lots per statement; the number of lots refreshed.

    Not a command: it decides nothing and records no fact, it copies the live price into
    the column the catalogue sorts and filters on. Each chunk commits on its own, so no row
    stays locked past its own statement; one unit of work around the loop would hold every
    chunk's locks until the end and make bid batches wait. Run concurrently (the cron job
    is `unique`), two refreshes skip each other's rows and both finish."""
    if chunk < 1:
        raise ValueError("a refresh chunk is at least one lot")  # else it would never end
    total = 0
    async with pool.acquire() as conn:
        while True:
            status = await conn.execute(Q.refresh_prices, chunk)
            done = int(status.rsplit(" ", 1)[1])
            total += done
            if done < chunk:
                return total


# --- reading request parameters ---------------------------------------------------------

# How much of a value typed into a parameter a refusal quotes back.
_QUOTED: Final = 40


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name) or []
    if len(values) > 1:
        raise Invalid("parameter_repeated", field=name)
    if not values:
        return None
    value = values[0].strip()
    return value or None


def _int(params: Mapping[str, Sequence[str]], name: str, default: int) -> int:
    text = _one(params, name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit():
        raise Invalid("whole_number", field=name)
    return int(text)


def _yuan(params: Mapping[str, Sequence[str]], name: str) -> int | None:
    text = _one(params, name)
    if text is None:
        return None
    try:
        return parse_cny(text)
    except BadValue as exc:
        raise Invalid(exc.code, field=name, **exc.params) from None


def _choice(params: Mapping[str, Sequence[str]], name: str, choices: Sequence[str]) -> str | None:
    value = _one(params, name)
    if value is not None and value not in choices:
        raise Invalid("not_a_choice", field=name, value=value[:_QUOTED], choices=list(choices))
    return value


def parse_query(params: Mapping[str, Sequence[str]]) -> CatalogueQuery:
    """A CatalogueQuery from query-string parameters (each name → its values).

    Parameters: q, ipc, kind, region, price_min / price_max (yuan, as a person writes them:
    "1,000,000" or "¥1000000", read by market.money.parse_cny), status (repeatable, or
    comma-separated), ending_soon, sort, page, page_size. A value of the wrong form raises
    Invalid with a code and the parameter as its field; the rules between values are
    checked by search().
    """
    kind = _choice(params, "kind", ASSET_KINDS)
    statuses = [
        s.strip() for value in params.get("status") or [] for s in value.split(",") if s.strip()
    ]
    sort = _choice(params, "sort", SORTS)
    soon = (_one(params, "ending_soon") or "").lower()
    if soon not in _TRUE | _FALSE:
        raise Invalid("not_a_boolean", field="ending_soon", value=soon[:_QUOTED])
    raw = {
        "q": _one(params, "q"),
        "ipc": _one(params, "ipc"),
        "kind": kind,
        "region": _one(params, "region"),
        "price_min_fen": _yuan(params, "price_min"),
        "price_max_fen": _yuan(params, "price_max"),
        "statuses": _statuses(statuses) if statuses else DEFAULT_STATUSES,
        "ending_soon": soon in _TRUE,
        "sort": sort,
        "page": _int(params, "page", 1),
        "page_size": _int(params, "page_size", PAGE_SIZE),
    }
    return msgspec.convert(raw, CatalogueQuery)


def _statuses(values: Sequence[str]) -> tuple[PublicStatus, ...]:
    for value in values:
        if value == "draft":
            raise Invalid("draft_not_public", field="status")
        if value not in PUBLIC_STATUSES:
            raise Invalid(
                "not_a_choice",
                field="status",
                value=value[:_QUOTED],
                choices=list(PUBLIC_STATUSES),
            )
    # Listed once each, in a fixed order: one statement text per set, not per spelling.
    chosen = set(values)
    return tuple(s for s in PUBLIC_STATUSES if s in chosen)


# --- search -----------------------------------------------------------------------------


class _Plan(msgspec.Struct, frozen=True, kw_only=True):
    where: list[str]
    order: str
    values: dict[str, Any]
    sort: Sort


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def plan(params: CatalogueQuery, now: datetime) -> _Plan:
    """Check a query's rules and choose its SQL blocks and values (pure)."""
    if params.page < 1:
        raise Invalid("too_small", field="page", min=1)
    if params.page_size < 1:
        raise Invalid("too_small", field="page_size", min=1)
    if params.page_size > MAX_PAGE_SIZE:
        raise Invalid("too_large", field="page_size", max=MAX_PAGE_SIZE)
    offset = (params.page - 1) * params.page_size
    if offset > MAX_OFFSET:
        raise Invalid("search_page_too_deep", field="page", max=MAX_OFFSET)
    if not params.statuses:
        raise Invalid("no_status_chosen", field="status")
    statuses = _statuses(params.statuses)
    if params.q is not None and len(params.q) > MAX_QUERY_LENGTH:
        raise Invalid("too_long", field="q", max=MAX_QUERY_LENGTH)
    if params.kind is not None and params.kind not in ASSET_KINDS:
        raise Invalid(
            "not_a_choice", field="kind", value=str(params.kind), choices=list(ASSET_KINDS)
        )
    for name in ("price_min_fen", "price_max_fen"):
        value = getattr(params, name)
        if value is not None and value < 0:
            raise Invalid("amount_negative", field=name.removesuffix("_fen"))
    if (
        params.price_min_fen is not None
        and params.price_max_fen is not None
        and params.price_min_fen > params.price_max_fen
    ):
        raise Invalid(
            "price_range_reversed",
            field="price_min",
            min_fen=params.price_min_fen,
            max_fen=params.price_max_fen,
        )

    values: dict[str, Any] = {}
    # Safe to write into the statement: _statuses() let only the known states through.
    where = [Q.where_published.replace("{statuses}", ", ".join(f"'{s}'" for s in statuses))]
    tsquery = search_query(params.q) if params.q else None
    if tsquery is not None:
        where.append(Q.where_q)
        values["tsquery"] = tsquery
    if params.ipc:
        try:
            values["ipc_key"] = ipc_filter_key(params.ipc)
        except BadValue as exc:
            raise Invalid(exc.code, field="ipc", **exc.params) from None
        where.append(Q.where_ipc)
    if params.kind:
        where.append(Q.where_kind)
        values["kind"] = params.kind
    # Control characters (NUL above all, which PostgreSQL refuses in text) are never part
    # of a region name.
    region = "".join(c for c in params.region or "" if c.isprintable()).strip()
    if region:
        if len(region) > MAX_REGION_LENGTH:
            raise Invalid("too_long", field="region", max=MAX_REGION_LENGTH)
        where.append(Q.where_region)
        values["region_like"] = _like_prefix(region)
    if params.price_min_fen is not None:
        where.append(Q.where_price_min)
        values["price_min_fen"] = params.price_min_fen
    if params.price_max_fen is not None:
        where.append(Q.where_price_max)
        values["price_max_fen"] = params.price_max_fen
    if params.ending_soon:
        where.append(Q.where_ending_soon)
        values["now"] = now
        values["soon"] = now + ENDING_SOON

    sort = params.sort
    if sort is None:
        sort = "ending" if params.ending_soon or _LIVE & set(statuses) else "newest"
    if sort == "relevance" and tsquery is None:
        raise Invalid("relevance_needs_keywords", field="sort")
    order = {
        "ending": Q.order_ending,
        "newest": Q.order_newest,
        "price_asc": Q.order_price_asc,
        "price_desc": Q.order_price_desc,
        "relevance": Q.order_relevance,
    }[sort]
    values["limit"] = params.page_size + 1
    values["offset"] = offset
    values["cap"] = COUNT_CAP + 1
    return _Plan(where=where, order=order, values=values, sort=sort)


_PARAM: Final = re.compile(r"(?<![:\w]):([a-z_]+)")


def _without_comments(block: str) -> str:
    return "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))


def assemble(
    template: str, where: list[str], order: str, values: Mapping[str, Any]
) -> tuple[str, list[Any]]:
    """Fill {where} and {order} with SQL blocks and number the :name parameters $1, $2…"""
    sql = _without_comments(template)
    sql = sql.replace("{where}", " AND ".join(f"({_without_comments(w)})" for w in where))
    sql = sql.replace("{order}", _without_comments(order))
    numbers: dict[str, int] = {}
    args: list[Any] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in numbers:
            args.append(values[name])
            numbers[name] = len(args)
        return f"${numbers[name]}"

    return _PARAM.sub(number, sql), args


def _card(row: asyncpg.Record) -> LotCard:
    codes = [c for c in (format_ipc_key(k) for k in row["ipc_keys"]) if c is not None]
    return LotCard(
        reference=row["reference"],
        title=row["title"],
        status=row["status"],
        round=row["round"],
        asset_kinds=list(row["asset_kinds"]),
        ipc_codes=codes,
        region=row["region"],
        price_fen=row["price_fen"],
        start_price_fen=row["start_price_fen"],
        current_price_fen=row["current_price_fen"],
        deposit_fen=row["deposit_fen"],
        announced_at=row["announced_at"],
        bidding_starts_at=row["bidding_starts_at"],
        bidding_ends_at=row["bidding_ends_at"],
        published_at=row["published_at"],
        mode=row["mode"],
        listing_ends_at=listing_ends_at(row["mode"], row["status"], row["bidding_starts_at"]),
    )


def listing_ends_at(mode: str, status: str, starts: datetime | None) -> datetime | None:
    """A listing's period end while it runs: the round's `bidding_starts_at`."""
    return starts if mode == "listing" and status in ("announced", "paused") else None


async def search(pool: asyncpg.Pool, params: CatalogueQuery, now: datetime) -> CataloguePage:
    """One page of published lots matching `params`, with a count capped at COUNT_CAP.

    Raises Invalid naming the parameter when the query breaks a rule.
    """
    p = plan(params, now)
    page_sql, page_args = assemble(Q.page, p.where, p.order, p.values)
    count_sql, count_args = assemble(Q.count_capped, p.where, "", p.values)
    async with pool.acquire() as conn:
        rows = await conn.fetch(page_sql, *page_args)
        has_next = len(rows) > params.page_size
        rows = rows[: params.page_size]
        offset = p.values["offset"]
        if params.page == 1 and not has_next:
            total = len(rows)  # everything is on this page: no need to count
        else:
            total = await conn.fetchval(count_sql, *count_args)
            # The count runs a moment after the page; never show fewer than seen.
            total = max(total, offset + len(rows) + (1 if has_next else 0))
    capped = total > COUNT_CAP
    return CataloguePage(
        items=[_card(r) for r in rows],
        page=params.page,
        page_size=params.page_size,
        has_next=has_next,
        total=min(total, COUNT_CAP),
        total_capped=capped,
        sort=p.sort,
    )


# --- the public lot ---------------------------------------------------------------------


def _nat(value: object) -> int | None:
    """A non-negative int from stored JSON, or None (bool is not a number here)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _terms(row: asyncpg.Record, holders: int) -> LotTerms:
    """The terms to show, read defensively: lots.terms is market/lots/terms.py's Terms,
    but an older or partial document must still render, with what it lacks left out."""
    raw: dict[str, Any] = row["terms"] if isinstance(row["terms"], dict) else {}
    fee: dict[str, Any] = raw["fee"] if isinstance(raw.get("fee"), dict) else {}
    kind = fee.get("kind") if fee.get("kind") in ("commission", "buyer_premium") else None
    tiers: list[tuple[int | None, int]] | None = None
    if kind == "commission" and isinstance(fee.get("tiers"), list):
        tiers = []
        for tier in fee["tiers"]:
            if not isinstance(tier, dict) or _nat(tier.get("rate_bp")) is None:
                tiers = None
                break
            tiers.append((_nat(tier.get("up_to_fen")), tier["rate_bp"]))
    listed = raw.get("preemptive_holders")
    return LotTerms(
        start_price_fen=row["start_price_fen"],
        deposit_fen=row["deposit_fen"],
        increment_fen=row["increment_fen"],
        current_price_fen=row["current_price_fen"],
        extension_window_s=_nat(raw.get("extension_window_s")),
        extension_s=_nat(raw.get("extension_s")),
        payment_days=_nat(raw.get("payment_days")),
        fee_kind=kind,
        commission_tiers=tiers,
        premium_bp=_nat(fee.get("premium_bp")) if kind == "buyer_premium" else None,
        preemptive_holders=holders or (len(listed) if isinstance(listed, list) else 0),
        offers=_offers(raw.get("offers")),
    )


def _offers(raw: object) -> Offers:
    """The offers block as stored (market/lots/terms.py Offers); terms stored before
    licence offers existed, or unreadable, take bids only."""
    try:
        return msgspec.convert(raw, Offers) if isinstance(raw, dict) else Offers()
    except msgspec.ValidationError:
        return Offers()


_MAX_REFERENCE: Final = 60
_MAX_ID: Final = 2**63 - 1  # bigint


def _check_reference(reference: str) -> None:
    # Anything that cannot be a reference is simply not found; a NUL byte or an absurd
    # length must not reach PostgreSQL as a query error.
    if not reference or len(reference) > _MAX_REFERENCE or not reference.isprintable():
        raise NotFound("no_published_lot")


def _warning(row: asyncpg.Record) -> RiskWarning:
    facts = AssetFacts(
        kind=row["asset_kind"],
        legal_status=row["legal_status"],
        annuity_paid_through=row["annuity_paid_through"],
        term_ends_on=row["term_ends_on"],
        valid_until=row["valid_until"],
    )
    return RiskWarning(
        asset_number=row["asset_number"],
        kind=row["kind"],
        raised_at=row["raised_at"],
        lapsed_on=lapsed_on(facts) if row["kind"] == "lapsed" else None,
    )


async def lot_detail(pool: asyncpg.Pool, reference: str) -> LotDetail:
    """The public page of a published lot; a draft or unknown reference is NotFound."""
    _check_reference(reference)
    async with pool.acquire() as conn:
        lot = await conn.fetchrow(Q.public_lot, reference)
        if lot is None:
            raise NotFound("no_published_lot")
        assets = await conn.fetch(Q.public_assets, lot["id"])
        warnings = await conn.fetch(Q.public_warnings, lot["id"])
        valuation = await conn.fetchrow(Q.current_valuation, lot["case_id"])
        holders = await conn.fetchval(Q.preemptive_count, lot["id"])
        documents = await conn.fetch(Q.public_documents, lot["case_id"])
    return LotDetail(
        reference=lot["reference"],
        title=lot["title"],
        description=lot["description"],
        status=lot["status"],
        round=lot["round"],
        seller=lot["seller"],
        region=lot["region"],
        asset_kinds=list(lot["asset_kinds"]),
        announced_at=lot["announced_at"],
        bidding_starts_at=lot["bidding_starts_at"],
        bidding_ends_at=lot["bidding_ends_at"],
        published_at=lot["published_at"],
        terms=_terms(lot, holders),
        mode=lot["terms"].get("mode", "auction"),
        listing_ends_at=listing_ends_at(
            lot["terms"].get("mode", "auction"), lot["status"], lot["bidding_starts_at"]
        ),
        # The lot's own assets' part of the case's valuation (docs/rules.md §Lot terms).
        valuation=ValuationSummary(**{**dict(valuation), "value_fen": lot["valuation_fen"]})
        if valuation
        else None,
        assets=[
            PublicAsset(
                **{
                    **dict(a),
                    "ipc_codes": list(a["ipc_codes"]),
                    "nice_classes": list(a["nice_classes"]),
                    "owners": list(a["owners"]),
                }
            )
            for a in assets
        ],
        warnings=[_warning(w) for w in warnings],
        documents=[
            PublicDocument(**dict(d), url=f"/lots/{lot['reference']}/documents/{d['id']}")
            for d in documents
        ],
    )


async def document(pool: asyncpg.Pool, reference: str, document_id: int) -> DocumentBytes:
    """A public disclosure document of a published lot; anything else is NotFound."""
    _check_reference(reference)
    if not 0 < document_id <= _MAX_ID:
        raise NotFound("no_public_document")
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.public_document, reference, document_id)
    if row is None:
        raise NotFound("no_public_document")
    return DocumentBytes(
        filename=row["filename"], content_type=row["content_type"], content=bytes(row["content"])
    )
