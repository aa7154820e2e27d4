"""The auction engine's pages and API, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from auctions.api_bidding import BiddingApi
from auctions.routes_closing import ROUTES as CLOSING
from auctions.routes_live import ROUTES as LIVE
from auctions.routes_registration import ROUTES as REGISTRATION

ROUTES: list[ControllerRouterHandler] = [BiddingApi, *REGISTRATION, *CLOSING, *LIVE]
