"""The API's list and token controllers, registered by market/app.py: every collection a
page lists, a page at a time (market/paging.py), and token management."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from auctions.api_buyer import BuyerApi
from market.accounts.api_tokens import TokensApi
from market.collateral.api_lists import CollateralListsApi
from market.lots.api_lists import BankLotsListApi
from market.notify.api_lists import NotificationsApi
from market.pools.api_lists import ClaimListsApi

ROUTES: list[ControllerRouterHandler] = [
    TokensApi,
    CollateralListsApi,
    BankLotsListApi,
    BuyerApi,
    ClaimListsApi,
    NotificationsApi,
]
