"""The web pages and API controllers of the pools area, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

ROUTES: list[ControllerRouterHandler] = []
