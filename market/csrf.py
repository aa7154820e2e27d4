"""Cross-site request forgery: every form and htmx request carries a token bound to the
session it was issued for (docs/rules.md §Security).

A token is `nonce + HMAC(secret, nonce | binding)`, where the binding is a hash of the
session cookie (empty before sign-in). The token is also the CSRF cookie, and a request
that changes something must send it back in the form (`_csrf_token`) or the
`X-CSRFToken` header. A token someone planted in the browser — through a sibling
subdomain, or copied from their own session — was issued for another session, or for
none, and is refused: it cannot be made without the secret and the victim's session.

Sign-in hands out a new token bound to the new session (market/accounts/web.py); a GET
whose cookie is not bound to the current session gets a fresh one. The API authenticates
by bearer token only, never by cookie, so it is not checked here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.datastructures.cookie import Cookie
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from market.accounts import sessions
from market.settings import Settings

BASE_NAME = "ipx_csrf"
HEADER = "x-csrftoken"
FIELD = "_csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
EXCLUDE = re.compile(r"^/api/")  # bearer tokens only (see above)
_NONCE_HEX = 32


def _binding(session_token: str | None) -> str:
    return hashlib.sha256(session_token.encode()).hexdigest() if session_token else ""


def _mac(secret: str, nonce: str, session_token: str | None) -> str:
    message = f"{nonce}|{_binding(session_token)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def issue(secret: str, session_token: str | None) -> str:
    """A new token for the session `session_token` (None: not signed in)."""
    nonce = secrets.token_hex(_NONCE_HEX // 2)
    return nonce + _mac(secret, nonce, session_token)


def valid(secret: str, token: str, session_token: str | None) -> bool:
    """Whether `token` was issued by this exchange for this very session."""
    if len(token) != _NONCE_HEX + 64:
        return False
    nonce, mac = token[:_NONCE_HEX], token[_NONCE_HEX:]
    return hmac.compare_digest(mac, _mac(secret, nonce, session_token))


def cookie(settings: Settings, token: str) -> Cookie:
    """The CSRF cookie: readable by the page's script (htmx sends it as a header)."""
    return Cookie(
        key=settings.cookie_name(BASE_NAME),
        value=token,
        path="/",
        secure=settings.secure_cookies,
        httponly=False,
        samesite="lax",
    )


class SessionBoundCSRF:
    """The middleware: refuses a state-changing request whose token is missing, differs
    from the cookie, or was not issued for the request's session (403); hands a GET a
    token bound to its session for the page's forms."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or EXCLUDE.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        litestar_app = scope["litestar_app"]
        settings: Settings = litestar_app.state.settings
        request: Any = litestar_app.request_class(scope=scope, receive=receive)
        session_token = request.cookies.get(settings.cookie_name(sessions.BASE_NAME))
        cookie_token = request.cookies.get(settings.cookie_name(BASE_NAME)) or ""
        state = ScopeState.from_scope(scope)
        if request.method in SAFE_METHODS:
            if valid(settings.secret_key, cookie_token, session_token):
                state.csrf_token = cookie_token
                await self.app(scope, receive, send)
                return
            state.csrf_token = fresh = issue(settings.secret_key, session_token)
            await self.app(scope, receive, _setting_cookie(send, cookie(settings, fresh)))
            return
        sent = request.headers.get(HEADER)
        content_type, _ = request.content_type
        if not sent and content_type in (
            RequestEncodingType.URL_ENCODED,
            RequestEncodingType.MULTI_PART,
        ):
            sent = (await request.form()).get(FIELD)
        if not (
            isinstance(sent, str)
            and cookie_token
            and hmac.compare_digest(sent, cookie_token)
            and valid(settings.secret_key, sent, session_token)
        ):
            raise PermissionDeniedException("CSRF token verification failed")
        state.csrf_token = sent
        await self.app(scope, receive, send)


def _setting_cookie(send: Send, new: Cookie) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableScopeHeaders.from_message(message)
            name = new.key.encode()
            # A handler that set the cookie itself (sign-in, sign-out) knows better.
            if not any(
                k.lower() == b"set-cookie" and v.startswith(name + b"=")
                for k, v in message.get("headers", ())
            ):
                headers.add("set-cookie", new.to_header(header=""))
        await send(message)

    return wrapped
