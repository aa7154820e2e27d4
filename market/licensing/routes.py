"""The licensing area's pages and API controllers; market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.licensing.api_offers import OffersApi

ROUTES: list[ControllerRouterHandler] = [OffersApi]
