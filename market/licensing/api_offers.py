"""The licence offers API (docs/rules.md §Licence offers and decision): an offeror
registers for a lot that takes offers, makes, lists and withdraws its offers; the bank —
and a pool that bore loss on the loan — reads the comparison; the bank decides."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath

from auctions.registration import Registered, RegisterForLot
from market import api_docs
from market.accounts.permissions import (
    MAKE_OFFERS,
    MANAGE_LOTS,
    OPERATE,
    READ_OFFER_DECISIONS,
    allow,
)
from market.deps import ActDep, CallerDep, PoolDep, SettingsDep
from market.licensing import deciding, offers
from market.licensing.deciding import Decide, DecideLot, DecisionOut
from market.licensing.offers import OfferIn, OfferOut, OfferRef, SubmitOffer
from market.lots.services import policy_for
from market.paging import DEFAULT_LIMIT, Cursor, Keyset, Limit, Page

OFFERS: Keyset[tuple[int]] = Keyset("offers", tuple[int], "id")

REGISTER = api_docs.body(
    RegisterForLot, {"reference": "LOT-2026-000123", "agreement_version": "2020-01"}
)
LICENCE = {
    "type": "licence",
    "licence": {
        "kind": "exclusive",
        "field_of_use": "锂电池正极材料",
        "territory": "中国大陆",
        "term_start": "2026-03-01",
        "term_end": "2031-02-28",
        "upfront_fen": 20_000_000,
        "royalty_rate_bp": 600,
        "forecast_net_sales_fen": 500_000_000,
        "minimum_annual_fen": 25_000_000,
        "period": "yearly",
        "security": {"kind": "bank_guarantee", "amount_fen": 30_000_000, "expiry": "2032-02-28"},
    },
}
SALE_BACK = {
    "type": "sale_and_licence_back",
    "price_fen": 120_000_000,
    "licence": {
        "kind": "non_exclusive",
        "field_of_use": "锂电池正极材料",
        "territory": "中国大陆",
        "term_start": "2026-03-01",
        "term_end": "2029-02-28",
        "royalty_rate_bp": 300,
        "period": "quarterly",
    },
    "buy_back": [{"until": "2028-02-29", "price_fen": 130_000_000}],
}
OFFER = api_docs.body(OfferIn, LICENCE, SALE_BACK)
DECIDE = api_docs.body(
    Decide,
    {"offer_ids": [12], "reason": "独占许可现值高于最高出价逾 10%，且有银行保函"},
    {"offer_ids": [], "reason": "拍卖价款为现金，维持成交"},
)


class OffersApi(Controller):
    path = "/api/v1"
    tags = ["licensing"]

    @post(
        "/lots/{reference:str}/offerors",
        operation_id="register_to_offer",
        summary="Register for a lot to make licence offers",
        guards=[allow(MAKE_OFFERS)],
        status_code=200,
    )
    async def register(
        self, reference: FromPath[str], data: Annotated[RegisterForLot, REGISTER], act: ActDep
    ) -> Registered:
        """As a bidder registers (the bidding agreement, then the deposit); a pledgor may,
        and never bids. The body's `reference` is ignored: the path names the lot."""
        body = RegisterForLot(reference=reference, agreement_version=data.agreement_version)
        return await act(offers.register_to_offer, body)

    @post(
        "/lots/{reference:str}/offers",
        operation_id="submit_offer",
        summary="Make a licence offer, or a sale and licence back",
        guards=[allow(MAKE_OFFERS)],
        status_code=201,
    )
    async def submit(
        self, reference: FromPath[str], data: Annotated[OfferIn, OFFER], act: ActDep
    ) -> OfferOut:
        """While the lot takes offers, with the deposit confirmed; a wrong value answers
        422 naming its field (`licence.term_end`) and nothing is written."""
        return await act(offers.submit_offer, SubmitOffer(reference=reference, offer=data))

    @get(
        "/offers",
        operation_id="list_own_offers",
        summary="List the organisation's offers",
        guards=[allow(MAKE_OFFERS)],
    )
    async def list(
        self,
        caller: CallerDep,
        pool: PoolDep,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[OfferOut]:
        """Newest first."""
        return await OFFERS.read(
            pool,
            offers.Q.offers_of_org,
            caller.org_id,
            cursor=cursor,
            limit=limit,
            item=offers.offer_out,
        )

    @get(
        "/offers/{offer_id:int}",
        operation_id="get_own_offer",
        summary="Read one of the organisation's offers",
        guards=[allow(MAKE_OFFERS)],
    )
    async def one(self, offer_id: FromPath[int], caller: CallerDep, pool: PoolDep) -> OfferOut:
        """With its terms and status; another organisation's offer answers 404."""
        return await offers.get_offer(pool, caller.org_id, offer_id)

    @post(
        "/offers/{offer_id:int}/withdraw",
        operation_id="withdraw_offer",
        summary="Withdraw an offer before the close",
        guards=[allow(MAKE_OFFERS)],
        status_code=200,
    )
    async def withdraw(self, offer_id: FromPath[int], act: ActDep) -> OfferOut:
        """Before the lot stops taking offers; the deposit goes back at the close."""
        return await act(offers.withdraw_offer, OfferRef(offer_id=offer_id))

    @get(
        "/lots/{lot_id:int}/offer-decision",
        operation_id="get_offer_decision",
        summary="Compare a lot's offers with the top bid, and the decision",
        guards=[allow(READ_OFFER_DECISIONS)],
    )
    async def comparison(
        self, lot_id: FromPath[int], caller: CallerDep, pool: PoolDep
    ) -> DecisionOut:
        """Every offer and the top bid in money of today, line by line, the sets that
        can stand together, the winner under the announced margin, and the decision once
        made. The lot's bank, or a pool that bore loss on its loan; others 404."""
        return await deciding.get_decision(pool, caller.org_id, lot_id)

    @get(
        "/operator/lots/{lot_id:int}/offer-decision",
        operation_id="get_any_offer_decision",
        summary="Read any lot's offer comparison and decision (the operator)",
        guards=[allow(OPERATE)],
    )
    async def any_comparison(self, lot_id: FromPath[int], pool: PoolDep) -> DecisionOut:
        """The comparison and decision of any lot, read-only, for the exchange's operator."""
        return await deciding.get_decision(pool, None, lot_id)

    @post(
        "/lots/{lot_id:int}/offer-decision",
        operation_id="decide_offers",
        summary="Decide: the hammer stands, or choose licences",
        guards=[allow(MANAGE_LOTS)],
        status_code=200,
    )
    async def decide(
        self,
        lot_id: FromPath[int],
        data: Annotated[Decide, DECIDE],
        act: ActDep,
        settings: SettingsDep,
    ) -> DecisionOut:
        """No offer chosen: the hammer stands (with no bid, nothing is chosen). Offers
        chosen must stand together and beat the top bid by the margin; a reason is
        required. 409 once decided or past the deadline."""
        data_in = DecideLot(lot_id=lot_id, decision=data, policy=policy_for(settings))
        return await act(deciding.decide_lot, data_in)
