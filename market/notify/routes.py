"""The web pages and API controllers of notifications, registered by market/app.py."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from market.notify.api import FailedDeliveriesApi, InboxApi, PreferencesApi
from market.notify.web import FailedNotificationPages, InboxPages, PreferencePages

ROUTES: list[ControllerRouterHandler] = [
    InboxPages,
    PreferencePages,
    FailedNotificationPages,
    InboxApi,
    PreferencesApi,
    FailedDeliveriesApi,
]
