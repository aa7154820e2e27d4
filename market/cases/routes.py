"""The web pages and API controllers of this area, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.cases.api import CasesApi, OperatorCasesApi
from market.cases.web import CasePages, OperatorCasePages

ROUTES: list[ControllerRouterHandler] = [CasePages, CasesApi, OperatorCasesApi, OperatorCasePages]
