"""Payments out: the pages and API controllers; market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.payments.api import OperatorPaymentsApi, PaymentsApi
from market.payments.web import OperatorPaymentsPages, PaymentsPages

ROUTES: list[ControllerRouterHandler] = [
    PaymentsApi,
    OperatorPaymentsApi,
    PaymentsPages,
    OperatorPaymentsPages,
]
