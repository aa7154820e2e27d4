"""Closing's pages and API controllers, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from auctions.api_closing import PaymentsApi
from auctions.web_closing import PaymentPages

ROUTES: list[ControllerRouterHandler] = [PaymentPages, PaymentsApi]
