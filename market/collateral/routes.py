"""The web pages and API controllers of this area, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.collateral.api import CollateralApi, CollateralImportApi
from market.collateral.web import CollateralAssetForm, CollateralPages, CollateralUploadPages

ROUTES: list[ControllerRouterHandler] = [
    CollateralPages,
    CollateralUploadPages,
    CollateralAssetForm,
    CollateralApi,
    CollateralImportApi,
]
