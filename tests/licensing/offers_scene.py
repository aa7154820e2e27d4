"""A lot that takes licence offers, with a bidder and offerors whose deposits are confirmed,
open for bidding (docs/rules.md §Licence offers and decision)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from auctions import deposits, registration
from auctions.deposits import ConfirmDeposit
from auctions.registration import RegisterForLot
from market.cases.policy import CHINA
from market.cases.services import china_today
from market.clock import FrozenClock
from market.licensing import offers
from market.licensing.offers import OfferIn, SubmitOffer
from market.licensing.pledgor import CaseRef, give_licensing_consent
from market.licensing.value import BankGuarantee, LicenceTerms, Period
from market.lots import services as lots
from market.lots.jobs import advance_lots
from market.lots.models import LotDraft, LotOut, PublishInput
from market.lots.terms import OffersInput, OffersMode, TermsInput
from market.pools.bank import EnrolIn, enrol_loan
from market.settings import Settings
from tests.factories import AGREEMENT, act_as, make_org, viewer
from tests.lots.factories import draft_lot, lot_action, make_case
from tests.pools.scene import Loan, PoolOrg, as_user, claim_and_pay, write_off

START = 700_000_00
DEPOSIT = 70_000_00


@dataclass
class Party:
    org_id: int
    user_id: int
    registration_id: int = 0


@dataclass
class OfferScene:
    lot: LotOut
    case_id: int
    bank: Party
    operator: Party
    pledgor: Party
    bidder: Party
    offeror: Party  # a buyer offering a licence
    ctx: dict[str, Any] = field(default_factory=dict)


async def register(
    pool: asyncpg.Pool, at: datetime, party: Party, lot: LotOut, operator: Party, *, bid: bool
) -> None:
    act = await act_as(pool, at, party.user_id)
    data = RegisterForLot(reference=lot.reference, agreement_version=AGREEMENT)
    done = await act(registration.register_for_lot if bid else offers.register_to_offer, data)
    party.registration_id = done.registration.id
    op = await act_as(pool, at, operator.user_id)
    await op(
        deposits.confirm_deposit,
        ConfirmDeposit(
            transfer_reference=done.registration.transfer_reference,
            amount_fen=done.registration.deposit_fen,
        ),
    )


async def make_offer_scene(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    settings: Settings,
    *,
    mode: OffersMode = "bids_and_licences",
    consent: bool = True,
    open_bidding: bool = True,
    enrol_in: PoolOrg | None = None,
) -> OfferScene:
    """`enrol_in`: the case's loan is enrolled in that pool, written off, and the pool
    paid the bank's claim, so the pool bore the loss and shares what the case recovers."""
    at = clock.now()
    bank_org, bank_user, _ = await make_org(pool, at, kind="bank")
    op_org, op_user, _ = await make_org(pool, at, kind="operator")
    p_org, p_user, _ = await make_org(pool, at, kind="pledgor", name="成都锂能科技有限公司")
    b_org, b_user, _ = await make_org(pool, at, kind="buyer", name="竞买人有限公司")
    o_org, o_user, _ = await make_org(pool, at, kind="buyer", name="被许可人有限公司")
    me = await viewer(pool, bank_user)
    policy = lots.policy_for(settings)
    case_id, _ = await make_case(pool, at, bank_org, bank_user)
    if enrol_in is not None:
        await enrol_and_claim(pool, at, enrol_in, case_id)
    # The pledgor organisation is the case's borrower: the same credit code.
    await pool.execute(
        "UPDATE organisations SET credit_code = (SELECT p.credit_code FROM disposal_cases c"
        " JOIN loans l ON l.id = c.loan_id JOIN pledgors p ON p.id = l.pledgor_id"
        " WHERE c.id = $1) WHERE id = $2",
        case_id,
        p_org,
    )
    if consent:
        pledgor_act = await act_as(pool, clock, p_user)
        await pledgor_act(give_licensing_consent, CaseRef(case_id=case_id))
    starts = at + timedelta(days=30, hours=1)
    draft = LotDraft(
        title="锂电池正极材料专利",
        terms=TermsInput(
            start_price_fen=START,
            deposit_fen=DEPOSIT,
            bidding_starts_at=starts,
            bidding_ends_at=starts + timedelta(days=1),
            offers=OffersInput(mode=mode),
        ),
    )
    lot = await draft_lot(pool, at, policy, me, case_id, draft)
    lot = await lot_action(pool, at, policy, me, lot.id, PublishInput())
    scene = OfferScene(
        lot=lot,
        case_id=case_id,
        bank=Party(bank_org, bank_user),
        operator=Party(op_org, op_user),
        pledgor=Party(p_org, p_user),
        bidder=Party(b_org, b_user),
        offeror=Party(o_org, o_user),
        ctx={"pool": pool, "clock": clock, "settings": settings},
    )
    if mode != "licences_only":
        await register(pool, at, scene.bidder, lot, scene.operator, bid=True)
    await register(pool, at, scene.pledgor, lot, scene.operator, bid=False)
    await register(pool, at, scene.offeror, lot, scene.operator, bid=False)
    if open_bidding and mode != "licences_only":
        clock.set(starts)
        await advance_lots(scene.ctx)
        scene.lot = await lots.get_lot(pool, bank_org, lot.id)
        assert scene.lot.status == "bidding"
    return scene


async def enrol_and_claim(pool: asyncpg.Pool, at: datetime, into: PoolOrg, case_id: int) -> None:
    """The case's loan enrolled in the pool, written off, the bank's claim paid."""
    row = await pool.fetchrow(
        "SELECT c.bank_org_id, c.opened_by, c.loan_id, l.pledgor_id, l.default_date"
        " FROM disposal_cases c JOIN loans l ON l.id = c.loan_id WHERE c.id = $1",
        case_id,
    )
    loan = Loan(row["bank_org_id"], row["opened_by"], row["loan_id"], case_id, row["pledgor_id"])
    # Enrolled before it defaulted (docs/rules.md §Guarantee pools): on the eve.
    enrolled_at = at
    if row["default_date"] is not None and row["default_date"] <= china_today(at):
        enrolled_at = datetime.combine(row["default_date"] - timedelta(days=1), time(10), CHINA)
    await as_user(
        pool,
        enrolled_at,
        loan.bank_user,
        enrol_loan,
        EnrolIn(loan_id=loan.loan_id, pool_code=into.code),
    )
    await write_off(pool, at, loan, china_today(at))
    await claim_and_pay(pool, at, loan, into)


def reverse_licence(start: date, **changes: Any) -> OfferIn:
    """The worked example's reverse licence to the pledgor (docs/rules.md §Licensing): five
    years, CNY 200,000 upfront, 6 % of forecast sales of CNY 5 m a year, minimum
    CNY 250,000 a year, paid yearly, under a bank guarantee of CNY 300,000 outlasting it."""
    end = date(start.year + 5, start.month, start.day) - timedelta(days=1)
    fields: dict[str, Any] = {
        "kind": "exclusive",
        "field_of_use": "锂电池正极材料",
        "territory": "中国大陆",
        "term_start": start,
        "term_end": end,
        "upfront_fen": 200_000_00,
        "royalty_rate_bp": 600,
        "forecast_net_sales_fen": 5_000_000_00,
        "minimum_annual_fen": 250_000_00,
        "period": "yearly",
        "security": BankGuarantee(amount_fen=300_000_00, expiry=end + timedelta(days=365)),
    }
    fields.update(changes)
    return OfferIn(licence=LicenceTerms(**fields))


def plain_licence(start: date, **changes: Any) -> OfferIn:
    """A small non-exclusive licence: CNY 50,000 upfront and 3 % with no minimum."""
    fields: dict[str, Any] = {
        "kind": "non_exclusive",
        "field_of_use": "储能电池",
        "territory": "广东省",
        "term_start": start,
        "term_end": date(start.year + 3, start.month, start.day) - timedelta(days=1),
        "upfront_fen": 50_000_00,
        "royalty_rate_bp": 300,
        "forecast_net_sales_fen": 1_000_000_00,
    }
    fields.update(changes)
    return OfferIn(licence=LicenceTerms(**fields))


async def submit(
    pool: asyncpg.Pool, at: datetime, party: Party, lot: LotOut, offer: OfferIn
) -> offers.OfferOut:
    act = await act_as(pool, at, party.user_id)
    return await act(offers.submit_offer, SubmitOffer(reference=lot.reference, offer=offer))


BID = 1_100_000_00  # the worked example's top bid (docs/rules.md §Licensing)


@dataclass
class Deciding:
    """A round closed with a bid and two licence offers standing, awaiting the bank."""

    scene: OfferScene
    reverse: offers.OfferOut  # the pledgor's exclusive reverse licence: it beats the hammer
    plain: offers.OfferOut  # a third party's small non-exclusive licence: it does not
    end: datetime  # the close


async def to_deciding(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    settings: Settings,
    *,
    enrol_in: PoolOrg | None = None,
    reverse_period: Period = "yearly",
) -> Deciding:
    """The lot takes a bid of BID and two licence offers, and closes into 'deciding'; the
    reverse licence pays per `reverse_period` (the worked example's: yearly)."""
    from auctions import closing
    from tests.auctions.test_closing import place_bids

    scene = await make_offer_scene(pool, clock, settings, enrol_in=enrol_in)
    end = scene.lot.bidding_ends_at
    assert end is not None
    await place_bids(pool, scene.lot.id, [(scene.bidder.registration_id, BID, clock.now())])
    start = china_today(end)
    reverse = await submit(
        pool, clock.now(), scene.pledgor, scene.lot, reverse_licence(start, period=reverse_period)
    )
    plain = await submit(pool, clock.now(), scene.offeror, scene.lot, plain_licence(start))
    result = await closing.close_when_due(pool, end, lots.policy_for(settings), scene.lot.id)
    assert result is not None and result.status == "deciding"
    return Deciding(scene=scene, reverse=reverse, plain=plain, end=end)
