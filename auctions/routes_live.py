"""The live lot page's stream and bid forms; market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from auctions.web_bidding import LivePages

ROUTES: list[ControllerRouterHandler] = [LivePages]
