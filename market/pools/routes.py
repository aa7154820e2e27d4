"""The web pages and API controllers of the pools area, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.pools.api_bank import BankPoolsApi, OperatorReceiptsApi
from market.pools.api_pool import PoolsApi
from market.pools.api_streams import PoolStreamsApi
from market.pools.reconciliation_api import ReconciliationApi
from market.pools.reconciliation_web import ReconciliationPages
from market.pools.web_bank import BankPoolPages, OperatorReceiptPages
from market.pools.web_pool import PoolPages
from market.pools.web_streams import PoolStreamPages

ROUTES: list[ControllerRouterHandler] = [
    BankPoolPages,
    BankPoolsApi,
    OperatorReceiptPages,
    OperatorReceiptsApi,
    PoolPages,
    PoolsApi,
    PoolStreamPages,
    PoolStreamsApi,
    ReconciliationApi,
    ReconciliationPages,
]
