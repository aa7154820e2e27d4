"""The buyer's page and its API; market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.buyer.api import ActivityApi
from market.buyer.web import ActivityPages

ROUTES: list[ControllerRouterHandler] = [ActivityPages, ActivityApi]
