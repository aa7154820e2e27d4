"""The web pages and API controllers of this area, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.catalogue.api import CatalogueApi
from market.catalogue.web import CataloguePages

ROUTES: list[ControllerRouterHandler] = [CataloguePages, CatalogueApi]
