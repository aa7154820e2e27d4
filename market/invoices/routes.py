"""The invoices' pages and API controllers; market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.invoices.api import InvoicesApi, OperatorInvoicesApi
from market.invoices.web import InvoicePages, OperatorInvoicePages

ROUTES: list[ControllerRouterHandler] = [
    InvoicesApi,
    OperatorInvoicesApi,
    InvoicePages,
    OperatorInvoicePages,
]
