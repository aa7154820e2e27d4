"""A bidder with a history, made through the exchange's commands: registrations with a
deposit owed and deposits confirmed, a round it leads with a proxy ceiling, one it was
outbid on, a lot won and still to pay, a lot lost (its deposit released: a refund owed), a
lot bought and paid (its transfer of title in escrow, its sale documents issued)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from auctions import deposits, registration
from auctions.bidding import BidBody, BidRequest, ProxyBody
from auctions.deposits import ConfirmDeposit
from auctions.registration import RegisterForLot
from market.clock import FrozenClock
from market.lots import services as lots
from market.lots.demo import demo_bid
from market.lots.models import LotOut
from market.settings import Settings
from tests.auctions.test_closing import DEPOSIT, INCREMENT, START, close_one, make_scene, pay
from tests.factories import AGREEMENT, act_as, make_org


@dataclass
class Firm:
    org_id: int
    user_id: int
    email: str


@dataclass
class History:
    buyer: Firm
    other: Firm
    owed: LotOut  # registered, deposit not paid, round open
    lead: LotOut  # it leads, through its proxy
    outbid: LotOut  # another bid more
    to_pay: LotOut  # won, balance due
    lost: LotOut  # another won: its deposit released, a refund owed
    bought: LotOut  # won and paid: transfer in escrow, documents issued
    to_pay_sale: int
    bought_sale: int
    proxy_max_fen: int


async def _firm(pool: asyncpg.Pool, clock: FrozenClock, name: str) -> Firm:
    org, user, email = await make_org(pool, clock.now(), kind="buyer", name=name)
    return Firm(org, user, email)


async def _register(
    pool: asyncpg.Pool, clock: FrozenClock, firm: Firm, lot: LotOut, operator_user: int | None
) -> None:
    """报名; the operator confirms the deposit unless `operator_user` is None."""
    done = await (await act_as(pool, clock.now(), firm.user_id))(
        registration.register_for_lot,
        RegisterForLot(reference=lot.reference, agreement_version=AGREEMENT),
    )
    if operator_user is None:
        return
    reg = done.registration
    await (await act_as(pool, clock.now(), operator_user))(
        deposits.confirm_deposit,
        ConfirmDeposit(transfer_reference=reg.transfer_reference, amount_fen=reg.deposit_fen),
    )


async def _bid(
    pool: asyncpg.Pool,
    settings: Settings,
    at: FrozenClock,
    firm: Firm,
    lot: LotOut,
    body: BidRequest,
) -> None:
    await demo_bid(pool, lots.policy_for(settings), at.now(), firm.org_id, lot.reference, body)


async def buyer_history(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> History:
    bank_org, bank_user, _ = await make_org(pool, clock.now(), kind="bank")
    op_org, op_user, _ = await make_org(pool, clock.now(), kind="operator")
    buyer = await _firm(pool, clock, "苏州锂能新材料有限公司")
    other = await _firm(pool, clock, "常州储能科技有限公司")
    made = {}
    for name in ("owed", "lead", "outbid", "to_pay", "lost", "bought"):
        scene = await make_scene(
            pool,
            clock,
            settings,
            buyers=0,
            waiting=0,
            bank=(bank_org, bank_user),
            operator=(op_org, op_user),
        )
        made[name] = scene.lot
    ends = made["lead"].bidding_ends_at
    assert ends is not None
    await _register(pool, clock, buyer, made["owed"], None)
    for name in ("lead", "outbid", "to_pay", "lost", "bought"):
        await _register(pool, clock, buyer, made[name], op_user)
        if name != "to_pay" and name != "bought":
            await _register(pool, clock, other, made[name], op_user)
    at = FrozenClock(ends - timedelta(hours=20))
    proxy = START + 10 * INCREMENT
    # lead: the other opens, the buyer's proxy answers it and stands above.
    await _bid(pool, settings, at, other, made["lead"], BidBody(amount_fen=START))
    at.advance(minutes=1)
    await _bid(pool, settings, at, buyer, made["lead"], ProxyBody(max_fen=proxy))
    # outbid and lost: the buyer opens, the other bids more.
    for name in ("outbid", "lost"):
        at.advance(minutes=1)
        await _bid(pool, settings, at, buyer, made[name], BidBody(amount_fen=START))
        at.advance(minutes=1)
        await _bid(pool, settings, at, other, made[name], BidBody(amount_fen=START + INCREMENT))
    for name in ("to_pay", "bought"):
        at.advance(minutes=1)
        await _bid(pool, settings, at, buyer, made[name], BidBody(amount_fen=START))
    closed = {}
    for name in ("to_pay", "lost", "bought"):
        closed[name] = await close_one(pool, settings, ends, made[name].id)
        assert closed[name] is not None
    bought = closed["bought"].sale
    clock.set(ends + timedelta(days=1))
    await pay(pool, clock, op_user, bought.payment_reference, bought.balance_due_fen)
    assert DEPOSIT < START
    return History(
        buyer=buyer,
        other=other,
        owed=made["owed"],
        lead=made["lead"],
        outbid=made["outbid"],
        to_pay=made["to_pay"],
        lost=made["lost"],
        bought=made["bought"],
        to_pay_sale=closed["to_pay"].sale.id,
        bought_sale=bought.id,
        proxy_max_fen=proxy,
    )
