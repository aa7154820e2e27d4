"""The listing's pages and API controllers; market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.listing.api import BankListingApi, ListingApi, OperatorListingApi
from market.listing.web import ListingPages, OperatorListingPages

ROUTES: list[ControllerRouterHandler] = [
    ListingApi,
    BankListingApi,
    OperatorListingApi,
    ListingPages,
    OperatorListingPages,
]
