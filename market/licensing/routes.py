"""The licence contracts' API controllers, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.licensing.api_contracts import ClearingApi, LicenceContractsApi

ROUTES: list[ControllerRouterHandler] = [LicenceContractsApi, ClearingApi]
