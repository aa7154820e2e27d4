"""More of a bidder's life on the demo, for the screenshots of the buyer's page
(market/screenshots.py): the demo buyer registers for the announced lot (its deposit owed)
and takes part in the open round, where the demo acquirer bids first and the buyer's proxy
answers, leading under its ceiling. Every step is the exchange's own command or bid path,
at the clock's instant; `market seed-demo` itself is left as it is."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from auctions import deposits, registration
from auctions.bidding import BidBody, BidRequest, ProxyBody, TokenBucket, place
from auctions.deposits import ConfirmDeposit
from auctions.registration import RegisterForLot
from auctions.writer import Writers
from market.accounts import services as accounts
from market.accounts.models import Viewer
from market.clock import Clock, FrozenClock
from market.commands import Act, Actor, Context
from market.lots.services import policy_for
from market.settings import Settings


async def _viewer(pool: asyncpg.Pool, email: str) -> Viewer:
    user_id = await pool.fetchval("SELECT id FROM users WHERE email = $1", email)
    found = None if user_id is None else await accounts.load_viewer(pool, user_id)
    if found is None:
        raise RuntimeError(f"the demo has no {email}: seed it first")
    return found


async def _lot(pool: asyncpg.Pool, status: str) -> asyncpg.Record:
    found = await pool.fetchrow(
        "SELECT id, reference, start_price_fen, increment_fen FROM lots WHERE status = $1"
        " ORDER BY id LIMIT 1",
        status,
    )
    if found is None:
        raise RuntimeError(f"the demo has no {status} lot")
    return found


async def seed_buyer_activity(pool: asyncpg.Pool, clock: Clock, settings: Settings) -> None:
    at = clock.now()
    buyer = await _viewer(pool, "buyer@ipx.demo")
    rival = await _viewer(pool, "acquirer@ipx.demo")
    operator = await _viewer(pool, "operator@ipx.demo")

    def act(who: Viewer) -> Act:
        return Act(Context(pool=pool, clock=FrozenClock(at)), Actor.of(who))

    async with pool.acquire() as conn:
        agreement = (await registration.current_agreement(conn, at)).version
    announced, bidding = await _lot(pool, "announced"), await _lot(pool, "bidding")
    await act(buyer)(
        registration.register_for_lot,
        RegisterForLot(reference=announced["reference"], agreement_version=agreement),
    )
    for who in (rival, buyer):
        done = await act(who)(
            registration.register_for_lot,
            RegisterForLot(reference=bidding["reference"], agreement_version=agreement),
        )
        await act(operator)(
            deposits.confirm_deposit,
            ConfirmDeposit(
                transfer_reference=done.registration.transfer_reference,
                amount_fen=done.registration.deposit_fen,
            ),
        )
    start, step = bidding["start_price_fen"], bidding["increment_fen"]
    await _bid(pool, at, settings, rival, bidding["reference"], BidBody(amount_fen=start))
    ceiling = ProxyBody(max_fen=start + 8 * step)
    await _bid(pool, at, settings, buyer, bidding["reference"], ceiling)


async def _bid(
    pool: asyncpg.Pool,
    at: datetime,
    settings: Settings,
    who: Viewer,
    reference: str,
    body: BidRequest,
) -> None:
    writers = Writers(pool, FrozenClock(at), policy_for(settings), direct=True)
    try:
        status, answer = await place(
            pool=pool,
            writers=writers,
            limiter=TokenBucket(10, 10),
            at=at,
            org_id=who.org_id,
            reference=reference,
            body=body,
            raw=msgspec.json.encode(body),
            idempotency_key=None,
        )
    finally:
        await writers.stop()
    if status != 201:
        raise RuntimeError(f"the demo bid on {reference} was refused: {answer.code}")
