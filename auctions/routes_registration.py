"""The pages and API controllers of taking part in auctions; market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from auctions.api_registration import DepositsApi, RegistrationApi
from auctions.web_registration import BuyerPages, OperatorDepositPages

ROUTES: list[ControllerRouterHandler] = [
    BuyerPages,
    OperatorDepositPages,
    RegistrationApi,
    DepositsApi,
]
