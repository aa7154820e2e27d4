"""Placing a bid: from an HTTP request to the lot's writer and back (docs/bidding.md).

The path: resolve the lot and the caller's registration → per-bidder rate limit →
Idempotency-Key lookup → a refusal the cached state proves is answered at once, without
a write → otherwise the lot's writer (auctions/writer.py) decides and commits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import asyncpg
import msgspec
from lru import LRU
from msgspec import Meta

from auctions import rules
from auctions.loader import Loader
from auctions.registration import check_reference, registration_ids
from auctions.writer import BidAnswer, Pending, Writers, provable_refusal, request_hash
from market.db import Queries
from market.errors import BadRequest, Forbidden, NotFound, RateLimited
from market.money import MAX_FEN

Q = Queries("auctions")


class BidBody(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
    tag="bid",
):
    amount_fen: Annotated[int, Meta(gt=0, le=MAX_FEN)]
    # An amount above the large-bid line (docs/rules.md §Bidding) is taken only confirmed.
    confirm: bool = False


class ProxyBody(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
    tag="proxy",
):
    max_fen: Annotated[int, Meta(gt=0, le=MAX_FEN)]
    confirm: bool = False


class MatchBody(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
    tag="match",
):
    pass


BidRequest = BidBody | ProxyBody | MatchBody


class TokenBucket:
    """Per-bidder rate limit, in this process (docs/rules.md §Bidding).

    Each registration may place `rate` commands a second with bursts of `burst`. Kept in
    memory, not Redis: it protects this process's writer, costs no round trip on the hot
    path, and several processes only multiply a limit that is generous for people anyway.
    """

    def __init__(self, rate: float, burst: float, size: int = 100_000) -> None:
        self.rate, self.burst = rate, burst
        # The `size` buckets used last: one forgotten is full again, as it would be after
        # burst / rate idle seconds anyway.
        self.tokens: LRU[int, tuple[float, float]] = LRU(size)

    def allow(self, key: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, last = self.tokens.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.tokens[key] = (tokens, now)
            return False
        self.tokens[key] = (tokens - 1, now)
        return True


@dataclass(frozen=True)
class LotRef:
    id: int
    round: int
    status: str


def command_for(
    body: BidRequest, registration_id: int, at: datetime
) -> rules.Bid | rules.SetProxy | rules.Match:
    match body:
        case BidBody(amount_fen=amount, confirm=confirmed):
            return rules.Bid(
                registration_id=registration_id, amount_fen=amount, at=at, confirmed=confirmed
            )
        case ProxyBody(max_fen=maximum, confirm=confirmed):
            return rules.SetProxy(
                registration_id=registration_id, max_fen=maximum, at=at, confirmed=confirmed
            )
        case MatchBody():
            return rules.Match(registration_id=registration_id, at=at)
    raise AssertionError(body)  # pragma: no cover


async def place(
    *,
    pool: asyncpg.Pool,
    writers: Writers,
    limiter: TokenBucket,
    at: datetime,
    org_id: int,
    reference: str,
    body: BidRequest,
    raw: bytes,
    idempotency_key: str | None,
) -> tuple[int, BidAnswer]:
    """Returns (HTTP status, answer): 201 accepted, 409 refused by the rules, 403 not
    registered or deposit not confirmed, 422 a reused Idempotency-Key."""
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
        raise BadRequest("idempotency_key_length", field="Idempotency-Key", max=200)
    lot_id, round_ = await _lot(pool, reference)
    registration_id = await _registration(pool, lot_id, round_, org_id)
    if not limiter.allow(registration_id):
        raise RateLimited(retry_after=1)
    command = command_for(body, registration_id, at)
    writer = writers.for_lot(lot_id)
    refusal = None if idempotency_key else provable_refusal(writer.state, command)
    if refusal is not None and writer.state is not None:
        cached = writer.state
        assert cached.price_fen is not None
        least = cached.price_fen + cached.increment_fen
        return 409, BidAnswer(
            lot_id=lot_id,
            accepted=False,
            at=at,
            code=refusal,
            params={"min_fen": least},
            price_fen=cached.price_fen,
            ends_at=cached.ends_at,
            bid_count=cached.bid_count,
        )
    pending = Pending(
        command=command,
        registration_id=registration_id,
        idempotency_key=idempotency_key,
        request_sha256=request_hash(raw),
    )
    answer = await writer.submit(pending)
    return _status(answer), answer


# Look-ups the bid path would otherwise make on every request (auctions/loader.py). A
# lot's id never changes and its round only on a relist (a stale round is caught by the
# writer, which checks each registration's round under the lot's lock; a relisted round
# opens for bids only after its announcement period, days later); a registration, once
# made, keeps its lot, round and buyer. 30 s, not less: a thousand lots in bidding would
# otherwise cost a query a few milliseconds each (bench/bidding.py many_lots).
LOT_CACHE_SECONDS = 30.0


async def _fetch_lots(pool: asyncpg.Pool, references: list[str]) -> dict[str, tuple[int, int]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.lots_by_reference, references)
    return {r["reference"]: (r["id"], r["round"]) for r in rows}


async def _fetch_registrations(
    pool: asyncpg.Pool, keys: list[tuple[int, int, int]]
) -> dict[tuple[int, int, int], int]:
    async with pool.acquire() as conn:
        return await registration_ids(conn, keys)


_lots: Loader[str, tuple[int, int]] = Loader(_fetch_lots, ttl=LOT_CACHE_SECONDS)
_registrations: Loader[tuple[int, int, int], int] = Loader(_fetch_registrations)


async def _lot(pool: asyncpg.Pool, reference: str) -> tuple[int, int]:
    check_reference(reference)  # before the shared look-up: a NUL would fail the others'
    found = await _lots.get(pool, reference)
    if found is None:
        raise NotFound("no_such_lot")
    return found


async def _registration(pool: asyncpg.Pool, lot_id: int, round_: int, org_id: int) -> int:
    found = await _registrations.get(pool, (lot_id, round_, org_id))
    if found is None:
        raise Forbidden("not_registered")
    return found


def _status(answer: BidAnswer) -> int:
    if answer.accepted:
        return 201
    return {"not_registered": 403, "deposit_not_confirmed": 403, "idempotency_key_reused": 422}.get(
        answer.code or "", 409
    )


def forget_caches() -> None:
    """Drop the look-up caches (tests that truncate tables reuse ids)."""
    _lots.clear()
    _registrations.clear()
