"""The listing's API (docs/rules.md §Listing): anyone reads a listing; the intending buyer
(BID) and the bank (MANAGE_LOTS) confirm the negotiated transfer; the bank extends a period
that found no intent; the operator lists every listing (OPERATE). The pages
(market/listing/web.py) run the same commands."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from msgspec import Meta

from market import api_docs
from market.accounts.permissions import BID, MANAGE_LOTS, OPERATE, allow
from market.deps import ActDep, PoolDep, SettingsDep
from market.listing import period, transfer, views
from market.listing.transfer import BankConfirms, BuyerConfirms, Transfer
from market.listing.views import ListingOut, OperatorListing
from market.lots.api import after_change
from market.lots.models import LotOut
from market.lots.services import policy_for
from market.money import MAX_FEN


class BuyerConfirmation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The intending buyer's signature: at the listing price unless it names more."""

    price_fen: Annotated[int, Meta(gt=0, le=MAX_FEN)] | None = None


BUYER_CONFIRMATION = api_docs.body(BuyerConfirmation, {}, {"price_fen": 71_000_000})


class ListingApi(Controller):
    path = "/api/v1/listings"
    tags = ["listing"]

    @get("/{reference:str}", operation_id="get_listing", summary="Read a listing (挂牌)")
    async def get(self, pool: PoolDep, reference: FromPath[str]) -> ListingOut:
        """A published listing: its state, price, period (working days, its end), the
        ends of its periods and its negotiated transfer; a lot that is not a listing
        answers 404 `no_such_listing`."""
        found, _ = await views.listing(pool, reference)
        return found

    @post(
        "/{reference:str}/transfer/confirmation",
        operation_id="confirm_listing_transfer",
        summary="Confirm a negotiated transfer as the intending buyer",
        guards=[allow(BID)],
        status_code=200,
    )
    async def buyer(
        self,
        act: ActDep,
        reference: FromPath[str],
        data: Annotated[BuyerConfirmation, BUYER_CONFIRMATION],
    ) -> Transfer:
        """The one qualified intent signs by the deadline, at the listing price or more
        (`price_fen`, 422 below it); the bank countersigns after."""
        return await act(
            transfer.buyer_confirms, BuyerConfirms(reference=reference, price_fen=data.price_fen)
        )


class BankListingApi(Controller):
    path = "/api/v1/bank/listings"
    tags = ["listing"]
    guards = [allow(MANAGE_LOTS)]

    @post(
        "/{reference:str}/transfer/confirmation",
        operation_id="countersign_listing_transfer",
        summary="Countersign a negotiated transfer as the bank",
        status_code=200,
    )
    async def countersign(
        self, act: ActDep, settings: SettingsDep, reference: FromPath[str]
    ) -> Transfer:
        """After the buyer signed, by the deadline: the sale is written (payment reference,
        deadline) and the lot is sold; 409 `listing_transfer_awaits_buyer` before."""
        data = BankConfirms(reference=reference, policy=policy_for(settings))
        return await act(transfer.bank_confirms, data)

    @post(
        "/{reference:str}/extension",
        operation_id="extend_listing",
        summary="Extend a listing that found no intent",
        status_code=200,
    )
    async def extend(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        settings: SettingsDep,
        reference: FromPath[str],
    ) -> LotOut:
        """List again for 5 working days (docs/rules.md §Listing) a listing whose period
        ended without a qualified intent; once per period (409 otherwise)."""
        data = period.ExtendListingPeriod(reference=reference, policy=policy_for(settings))
        lot = await act(period.extend_listing, data)
        await after_change(request, lot)
        return lot


class OperatorListingApi(Controller):
    path = "/api/v1/operator/listings"
    tags = ["listing"]
    guards = [allow(OPERATE)]

    @get("/", operation_id="list_operator_listings", summary="Every listing, newest first")
    async def index(self, pool: PoolDep) -> list[OperatorListing]:
        """Every published listing with its period's end, the last period's outcome and its
        negotiated transfer (the latest 200)."""
        return await views.operator_listings(pool)
