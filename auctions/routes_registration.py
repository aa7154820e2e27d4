"""The pages and API controllers of taking part in auctions; market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from auctions.api_registration import AgreementApi, DepositsApi, RegistrationApi
from auctions.web_registration import AgreementPages, BuyerPages, OperatorDepositPages

ROUTES: list[ControllerRouterHandler] = [
    AgreementPages,
    BuyerPages,
    OperatorDepositPages,
    AgreementApi,
    RegistrationApi,
    DepositsApi,
]
