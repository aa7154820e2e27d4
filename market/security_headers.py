"""The headers every answer carries (docs/rules.md §Security).

* Content-Security-Policy: scripts and everything else from the exchange itself only (an
  API answer: nothing at all, `API_CSP`);
  styles may be inline (charts' and htmx's style attributes); no plugin, no foreign
  form target, and no page of another origin may frame the exchange (`frame-ancestors
  'none'`, with X-Frame-Options: DENY for browsers that predate it) — clickjacking.
* Referrer-Policy: same-origin — a lot's or a case's address is not told to other sites.
* X-Content-Type-Options: nosniff — an uploaded document is never run as a script.
* Strict-Transport-Security under https (`Settings.hsts_max_age_seconds`).
* Cache-Control: no-store on every answer but the static files: pages show who is
  signed in and their organisation's objects, API answers are a tenant's data, and a
  shared computer's cache or a proxy must keep neither.

Applied around the whole app (market/app.py, Exchange), so the bid API's fast path, error
pages and unknown addresses carry them too. A header a handler set itself stays.
"""

from __future__ import annotations

from litestar.types import Message, Send

from market.settings import Settings

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# An API answer is JSON a browser never renders: it may load nothing and be framed by
# nothing (OWASP REST Security Cheat Sheet, "Security headers"). Short, as the bid API
# answers thousands a second.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
STATIC = "/static/"
API = "/api/"


class SecurityHeaders:
    """The headers of an app's answers, built once (an answer only merges them in): the
    bid API answers thousands of requests a second through this."""

    def __init__(self, settings: Settings) -> None:
        common = [
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"x-content-type-options", b"nosniff"),
        ]
        if settings.secure_cookies:  # served over https
            hsts = f"max-age={settings.hsts_max_age_seconds}; includeSubDomains"
            common.append((b"strict-transport-security", hsts.encode()))
        page = (b"content-security-policy", CSP.encode())
        no_store = (b"cache-control", b"no-store")
        self.static = (page, *common)
        self.private = (page, *common, no_store)
        self.api = ((b"content-security-policy", API_CSP.encode()), *common, no_store)

    def wrap(self, send: Send, path: str) -> Send:
        """`send`, adding the security headers to the answer's start (those not already
        set)."""
        static = path.startswith(STATIC)
        ours = self.static if static else self.api if path.startswith(API) else self.private

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = list(message.get("headers", ()))
                names = {k.lower() for k, _ in have}
                if b"cache-control" in names and not static:
                    # A private answer may say more (`private, no-store`), never less.
                    have = [
                        (k, v if k.lower() != b"cache-control" or b"no-store" in v else b"no-store")
                        for k, v in have
                    ]
                message["headers"] = have + [(k, v) for k, v in ours if k not in names]
            await send(message)

        return wrapped
