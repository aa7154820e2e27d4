"""Disposal by agreement's pages and API controllers; market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.acquisition.api import AgreementApi, BankAgreementApi, OperatorAgreementApi
from market.acquisition.web import AgreementPages, BankAgreementPages

ROUTES: list[ControllerRouterHandler] = [
    BankAgreementApi,
    AgreementApi,
    OperatorAgreementApi,
    BankAgreementPages,
    AgreementPages,
]
