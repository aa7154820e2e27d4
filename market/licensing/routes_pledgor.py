"""The pages and API of the pledgor and of open licences, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.licensing.api_pledgor import BankOpenLicenceApi, OpenLicencesApi, PledgorApi
from market.licensing.web_pledgor import BankOpenLicencePages, OpenLicencePages, PledgorPages

ROUTES: list[ControllerRouterHandler] = [
    PledgorPages,
    BankOpenLicencePages,
    OpenLicencePages,
    PledgorApi,
    BankOpenLicenceApi,
    OpenLicencesApi,
]
