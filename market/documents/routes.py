"""The pages and API of the sale documents, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.documents.api import SaleDocumentsApi, VerifyApi
from market.documents.web import DocumentPages, VerifyPages

ROUTES: list[ControllerRouterHandler] = [VerifyPages, DocumentPages, VerifyApi, SaleDocumentsApi]
