"""Who is calling: the signed-in user of a page, the organisation behind an API token.

Each is resolved once per request and kept in the request's scope state: the permission
guard resolves it first (market/accounts/permissions.py), the handler's `me`, `viewer` or
`caller` dependency and the error handler (for the caller's language) read it back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from market import i18n
from market.accounts import services, sessions
from market.accounts.models import ApiCaller, Viewer
from market.errors import Unauthorized

_VIEWER = "viewer"
_CALLER = "caller"


def _state(connection: Any) -> dict[str, Any]:
    state: dict[str, Any] = connection.scope.setdefault("state", {})
    return state


async def viewer(connection: Any) -> Viewer | None:
    """The signed-in user of a page request, or None."""
    state = _state(connection)
    if _VIEWER in state:
        cached: Viewer | None = state[_VIEWER]
        return cached
    found = None
    app = connection.app.state
    token = connection.cookies.get(app.settings.cookie_name(sessions.BASE_NAME))
    if token:
        uid = await sessions.user_id(app.redis, token, app.settings.session_ttl_seconds)
        if uid is not None:
            found = await services.load_viewer(app.pool, uid)
    state[_VIEWER] = found
    return found


async def api_caller(connection: Any) -> ApiCaller:
    """The organisation an API request acts for, from its bearer token; else 401."""
    state = _state(connection)
    if _CALLER in state:
        cached: ApiCaller = state[_CALLER]
        return cached
    app = connection.app.state
    caller = await caller_for(
        app.pool, app.clock.now(), connection.headers.get("authorization", "")
    )
    state[_CALLER] = caller
    return caller


async def caller_for(pool: asyncpg.Pool, at: datetime, authorization: str) -> ApiCaller:
    """The caller named by an Authorization header at `at` (also the bid API's fast path,
    which passes the bid's own receive time rather than reading the clock twice)."""
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise Unauthorized("bearer_token_needed")
    return await services.authenticate_token(pool, at, credential.strip())


def known(connection: Any) -> Viewer | ApiCaller | None:
    """Whoever this request was already found to come from (no look-up)."""
    state = connection.scope.get("state", {})
    found: Viewer | ApiCaller | None = state.get(_CALLER) or state.get(_VIEWER)
    return found


def language(connection: Any) -> i18n.Lang:
    """The language of an API answer: Accept-Language, else the calling user's own
    preference, else Chinese."""
    asked = i18n.from_accept_language(connection.headers.get("accept-language"))
    if asked is not None:
        return asked
    who = known(connection)
    return who.language if who is not None else i18n.DEFAULT
