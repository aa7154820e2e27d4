"""The webhook endpoint page and API controllers, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.notify.web_webhooks import WebhookPages, WebhooksApi

ROUTES: list[ControllerRouterHandler] = [WebhookPages, WebhooksApi]
