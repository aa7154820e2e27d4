"""More of a bidder's life on the demo, for the screenshots of the buyer's page
(market/screenshots.py): the demo buyer registers for the announced lot (its deposit owed)
and takes part in the open round, where the demo acquirer bids first and the buyer's proxy
answers, leading under its ceiling. Every step is the exchange's own command or bid path,
at the clock's instant; `market seed-demo` itself is left as it is."""

from __future__ import annotations

import asyncpg

from auctions import deposits, registration
from auctions.bidding import BidBody, ProxyBody
from auctions.deposits import ConfirmDeposit
from auctions.registration import RegisterForLot
from market.accounts import services as accounts
from market.accounts.models import Viewer
from market.clock import Clock, FrozenClock
from market.commands import Act, Actor, Context
from market.lots.demo import demo_bid
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
    policy = policy_for(settings)
    await demo_bid(pool, policy, at, rival.org_id, bidding["reference"], BidBody(amount_fen=start))
    ceiling = ProxyBody(max_fen=start + 8 * step)
    await demo_bid(pool, policy, at, buyer.org_id, bidding["reference"], ceiling)
