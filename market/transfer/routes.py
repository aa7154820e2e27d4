"""The transfer of title's pages and API controllers; market/app.py registers them."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.transfer.api import OperatorTransfersApi, TransfersApi
from market.transfer.web import OperatorTransferPages, TransferPages

ROUTES: list[ControllerRouterHandler] = [
    TransfersApi,
    OperatorTransfersApi,
    TransferPages,
    OperatorTransferPages,
]
