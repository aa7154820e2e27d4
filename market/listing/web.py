"""The listing's pages (docs/rules.md §Listing), thin adapters over the commands the API
runs (market/listing/api.py).

/listings/{reference} is public, as the catalogue is: the listing's state, price, period
and its ends; the intending buyer of a negotiated transfer finds its signature form there,
the bank its countersignature and, after a period without intent, the extension. The
operator follows every listing on /operator/listings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import asyncpg
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.accounts.permissions import BID, MANAGE_LOTS, OPERATE, allow
from market.deps import ActDep, MeDep, PoolDep, SettingsDep, ViewerDep
from market.errors import NotFound
from market.listing import period, transfer, views
from market.listing.transfer import BankConfirms, BuyerConfirms
from market.lots.services import policy_for
from market.money import MAX_FEN
from market.web import Form, page


async def _page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    viewer: Viewer | None,
    reference: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    try:
        found, parties = await views.listing(pool, reference)
    except NotFound:
        # A lot auctioned, not listed (or no such lot): the page says so.
        return page(request, "listing/listing.html", viewer, listing=None, reference=reference)
    org = viewer.org_id if viewer is not None else None
    return page(
        request,
        "listing/listing.html",
        viewer,
        status_code=status_code,
        listing=found,
        reference=reference,
        is_bank=org is not None and org == parties.bank_org_id,
        is_buyer=org is not None and org == parties.buyer_org_id,
        errors=errors or {},
        values=values or {},
    )


async def _submit(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    reference: str,
    form: Form,
    call: Callable[[], Awaitable[object]],
) -> Template | Redirect:
    """Run the form's command: back to the listing, or its page with the refusal."""
    done = await form.submit(call)
    if done is None:
        return await _page(
            request,
            pool,
            me,
            reference,
            errors=form.errors,
            values=form.values,
            status_code=form.status,
        )
    return Redirect(f"/listings/{quote(reference, safe='')}")


class ListingPages(Controller):
    include_in_schema = False

    @get("/listings/{reference:str}", operation_id="web_listing")
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        reference: FromPath[str],
    ) -> Template:
        """A listing: state, price, period and its ends, the negotiated transfer."""
        return await _page(request, pool, viewer, reference)

    @post(
        "/listings/{reference:str}/transfer/confirmation",
        operation_id="web_confirm_listing_transfer",
        guards=[allow(BID)],
    )
    async def buyer(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        reference: FromPath[str],
    ) -> Template | Redirect:
        """The intending buyer signs, at the listing price or the price it types."""
        form = await Form.read(request, me, fields={"price_fen": "price"})
        price = form.yuan("price", max_fen=MAX_FEN, required=False)
        data = BuyerConfirms(reference=reference, price_fen=price)
        return await _submit(
            request, pool, me, reference, form, lambda: act(transfer.buyer_confirms, data)
        )

    @post(
        "/listings/{reference:str}/transfer/countersignature",
        operation_id="web_countersign_listing_transfer",
        guards=[allow(MANAGE_LOTS)],
    )
    async def bank(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        settings: SettingsDep,
        me: MeDep,
        reference: FromPath[str],
    ) -> Template | Redirect:
        """The bank countersigns after the buyer: the sale is written."""
        form = await Form.read(request, me)
        data = BankConfirms(reference=reference, policy=policy_for(settings))
        return await _submit(
            request, pool, me, reference, form, lambda: act(transfer.bank_confirms, data)
        )

    @post(
        "/listings/{reference:str}/extension",
        operation_id="web_extend_listing",
        guards=[allow(MANAGE_LOTS)],
    )
    async def extend(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        settings: SettingsDep,
        me: MeDep,
        reference: FromPath[str],
    ) -> Template | Redirect:
        """Extend a period that found no intent by 5 working days."""
        form = await Form.read(request, me)
        data = period.ExtendListingPeriod(reference=reference, policy=policy_for(settings))
        return await _submit(
            request, pool, me, reference, form, lambda: act(period.extend_listing, data)
        )


class OperatorListingPages(Controller):
    include_in_schema = False
    guards = [allow(OPERATE)]

    @get("/operator/listings", operation_id="web_operator_listings")
    async def index(self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep) -> Template:
        """Every listing: its period's end, last outcome and transfer."""
        rows = await views.operator_listings(pool)
        return page(request, "listing/operator.html", me, listings=rows)
