"""The licensing area's pages and API controllers (offers and decisions, licence contracts, the
exchange's clearing account); market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.licensing.api_contracts import ClearingApi, LicenceContractsApi
from market.licensing.api_offers import OffersApi
from market.licensing.web_contracts import LicencePages, OperatorLicencePages
from market.licensing.web_offers import DecisionPages, OfferorPages

ROUTES: list[ControllerRouterHandler] = [
    OffersApi,
    OfferorPages,
    DecisionPages,
    LicenceContractsApi,
    ClearingApi,
    LicencePages,
    OperatorLicencePages,
]
