"""The saved-interests page and API; market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.notify.web_interests import InterestApi, InterestPages

ROUTES: list[ControllerRouterHandler] = [InterestPages, InterestApi]
