"""The web pages and API controllers of this area, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.lots.api import LotsApi
from market.lots.web import LotPages

ROUTES: list[ControllerRouterHandler] = [LotPages, LotsApi]
