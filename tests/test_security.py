"""The exchange's defences, each probed as someone looking for a way round would
(docs/rules.md §Security)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market import i18n
from tests.factories import csrf, make_org, sign_in

PARAM = re.compile(r"\{(\w+):(\w+)\}")


def _concrete(path: str) -> str:
    """A route's path with a value in each parameter (ids 1, text "x")."""
    return PARAM.sub(lambda m: "1" if m.group(2) == "int" else "x", path)


def _routes(app: Any, methods: set[str]) -> Iterator[tuple[str, str]]:
    """(method, path) of every route the app answers with one of `methods`."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            for method in sorted(handler.http_methods & methods):
                yield method, _concrete(route.path)


def _plant(client: AsyncTestClient[Any], token: str) -> None:
    """What a sibling subdomain or a shared computer could do: set the victim's CSRF
    cookie to a token the attacker holds."""
    client.cookies.delete("ipx_csrf")
    client.cookies.set("ipx_csrf", token)


# --- CSRF -----------------------------------------------------------------------------------


async def test_csrf_token_bound_to_the_session_and_host_prefixed_under_https(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: Any, settings: Any
) -> None:
    """Every form of the site, posted for a signed-in victim with a CSRF cookie and token
    the attacker obtained (signed out, or signed in as themselves), is refused: 0 accepted.
    Under https the cookies are `__Host-` cookies, and signing in works with them."""
    _, _, victim = await make_org(pool, clock.now(), kind="operator")
    _, _, attacker = await make_org(pool, clock.now())
    assert (await sign_in(client, victim)).status_code in (302, 303)
    refused_text = i18n.gettext("zh", "problem.csrf_failed")

    from market.app import create_app

    async with AsyncTestClient(app=create_app(settings, clock), base_url=str(client.base_url)) as a:
        anonymous = await csrf(a)
        await sign_in(a, attacker)
        own = str(a.cookies["ipx_csrf"])

    forms = [
        (m, p)
        for m, p in _routes(client.app, {"POST", "PUT", "PATCH", "DELETE"})
        if not p.startswith("/api/")
    ]
    assert len(forms) >= 40
    accepted = []
    planted_tokens = list(dict.fromkeys((anonymous, own)))  # sign-in hands out a new one
    for planted in planted_tokens:
        for method, path in forms:
            _plant(client, planted)
            r = await client.request(
                method, path, data={"_csrf_token": planted}, follow_redirects=False
            )
            if not (r.status_code == 403 and refused_text in r.text):
                accepted.append((planted[:6], method, path, r.status_code))
    assert accepted == [], (
        f"{len(accepted)} of {len(planted_tokens) * len(forms)} accepted: {accepted[:5]}"
    )
    assert len(planted_tokens) == 2
    # The victim's own token, bound to the session, still works.
    client.cookies.delete("ipx_csrf")
    await client.get("/account")
    r = await client.post(
        "/lang", data={"lang": "en", "_csrf_token": await csrf(client)}, follow_redirects=False
    )
    assert r.status_code in (302, 303)
    await _host_prefixed_sign_in(pool, clock, settings)


async def _host_prefixed_sign_in(pool: asyncpg.Pool, clock: Any, settings: Any) -> None:
    import msgspec

    from market.app import create_app

    https = msgspec.structs.replace(settings, public_base_url="https://ipx.example.cn")
    _, _, email = await make_org(pool, clock.now())
    async with AsyncTestClient(
        app=create_app(https, clock), base_url="https://ipx.example.cn"
    ) as c:
        page = await c.get("/login")
        cookie = page.headers["set-cookie"]
        assert cookie.startswith("__Host-ipx_csrf=") and "Secure" in cookie and "Path=/" in cookie
        token = str(c.cookies["__Host-ipx_csrf"])
        r = await c.post(
            "/login",
            data={"email": email, "password": "correct horse battery", "_csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code in (302, 303)
        assert "__Host-ipx_session" in c.cookies
        assert (await c.get("/account")).status_code == 200


# --- headers --------------------------------------------------------------------------------


async def test_security_headers_on_every_route(
    pool: asyncpg.Pool, clock: Any, settings: Any
) -> None:
    """Every route of the route table (and an unknown address), each method, answers with
    the CSP forbidding framing, X-Frame-Options DENY, a Referrer-Policy, HSTS (https) and
    — all but the static files — Cache-Control: no-store."""
    import msgspec

    from market.app import create_app

    https = msgspec.structs.replace(settings, public_base_url="https://ipx.example.cn")
    app = create_app(https, clock)
    methods = {"GET", "POST", "PUT", "PATCH", "DELETE"}
    routes = [*_routes(app, methods), ("GET", "/no/such/page"), ("GET", "/static/app.css")]
    missing = []
    async with AsyncTestClient(app=app, base_url="https://ipx.example.cn") as c:
        for method, path in routes:
            r = await c.request(method, path, follow_redirects=False)
            h = r.headers
            checks = {
                "csp": "frame-ancestors 'none'" in h.get("content-security-policy", ""),
                "xfo": h.get("x-frame-options") == "DENY",
                "referrer": h.get("referrer-policy") == "same-origin",
                "hsts": h.get("strict-transport-security", "").startswith("max-age=31536000"),
                "no-store": path.startswith("/static/") or "no-store" in h.get("cache-control", ""),
            }
            missing += [(method, path, name) for name, ok in checks.items() if not ok]
    assert len(routes) > 150
    assert missing == [], f"{len(missing)} missing: {missing[:8]}"
    async with AsyncTestClient(app=create_app(settings, clock)) as c:  # plain http: no HSTS
        r = await c.get("/login")
        assert (
            "strict-transport-security" not in r.headers
            and "no-store" in r.headers["cache-control"]
        )


# --- the webhook address guard ----------------------------------------------------------------

# Internal IPv4 addresses (loopback, private, the cloud metadata service) in every IPv6
# form that embeds IPv4: NAT64, NAT64 for local use, 6to4, IPv4-compatible, IPv4-mapped,
# IPv4-translated, Teredo (client 127.0.0.1 obfuscated).
INTERNAL_V6 = [
    form.format(**v4)
    for v4 in (
        {"hi": "7f00", "lo": "1", "dotted": "127.0.0.1"},
        {"hi": "a00", "lo": "5", "dotted": "10.0.0.5"},
        {"hi": "a9fe", "lo": "a9fe", "dotted": "169.254.169.254"},
        {"hi": "c0a8", "lo": "101", "dotted": "192.168.1.1"},
    )
    for form in (
        "64:ff9b::{hi}:{lo}",
        "64:ff9b::{dotted}",
        "64:ff9b:1::{hi}:{lo}",
        "2002:{hi}:{lo}::",
        "2002:{hi}:{lo}:1234::1",
        "::{dotted}",
        "::{hi}:{lo}",
        "::ffff:{dotted}",
        "::ffff:0:{hi}:{lo}",
    )
] + ["2001:0:4136:e378:8000:63bf:80ff:fffe"]  # Teredo, client 127.0.0.1
PUBLIC_V6 = ["64:ff9b::808:808", "2002:808:808::1", "2001:4860:4860::8888", "::ffff:8.8.8.8"]


async def test_webhook_guard_refuses_every_ipv6_form_of_an_internal_ipv4() -> None:
    """Refused when an endpoint is saved (a literal address in the URL) and again at
    connect time (a name that resolves to one): 0 of the forms accepted."""
    import httpx

    from market.errors import Invalid
    from market.notify import endpoints
    from market.notify.errors import TerminalDeliveryError
    from market.notify.webhooks import PublicHostsOnly

    def saved(address: str) -> bool:
        try:
            endpoints.validate_url(f"https://[{address}]/hook", private_hosts=False)
        except Invalid as exc:
            return (exc.code, exc.field) != ("webhook_host_not_public", "url")
        return True

    async def connected(address: str) -> bool:
        async def resolve(host: str, port: int) -> list[str]:
            return [address]

        transport = PublicHostsOnly(resolve=resolve)
        async with httpx.AsyncClient(transport=transport) as client:
            try:
                await client.post("http://hooks.bank.test/hook", content=b"{}")
            except TerminalDeliveryError as exc:
                return exc.code != "webhook_address_not_public"
            except httpx.HTTPError:
                return True  # let through to the connection (nothing listens there)
        return True

    assert len(INTERNAL_V6) == 37
    accepted = [a for a in INTERNAL_V6 if saved(a)]
    accepted += [f"{a} (connect)" for a in INTERNAL_V6 if await connected(a)]
    assert accepted == [], f"{len(accepted)} of {2 * len(INTERNAL_V6)} accepted: {accepted}"
    assert all(saved(a) for a in PUBLIC_V6)  # public ones, in the same forms, still are


# --- smaller things: sessions, names, robots' markdown, charsets -----------------------------


async def test_sessions_rotate_names_plain_robot_markdown_escaped_charset_once(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: Any
) -> None:
    import pytest

    from market.cases import services as cases
    from market.cases.models import OpenCase, UploadDocument
    from market.errors import Invalid
    from market.notify.webhooks import build_request
    from tests.cases.factories import make_loan
    from tests.factories import act_as
    from tests.notify.test_webhooks import NOW, endpoint, message

    # A sign-in ends the session the browser held before it.
    bank, user, email = await make_org(pool, clock.now(), kind="bank")
    await sign_in(client, email)
    old = str(client.cookies["ipx_session"])
    await sign_in(client, email)
    new = str(client.cookies["ipx_session"])
    assert new != old
    client.cookies.delete("ipx_session")
    client.cookies.set("ipx_session", old)
    assert (await client.get("/account", follow_redirects=False)).status_code in (302, 303)
    client.cookies.delete("ipx_session")
    client.cookies.set("ipx_session", new)
    assert (await client.get("/account")).status_code == 200

    # An organisation's name holds no bidi override or zero-width character.
    for sneaky in ("成都\u202eABC有限公司", "成都\u200b锂能有限公司", "\ufeff成都锂能有限公司"):
        with pytest.raises(Invalid) as refused:
            await make_org(pool, clock.now(), name=sneaky)
        assert (refused.value.code, refused.value.field) == ("name_invisible_character", "name")

    # A lot's title reaches a WeCom or DingTalk group as text, never as a link or markup.
    title = '专利包[点击领取保证金](http://evil.example/x) <font color="warning">急</font>'
    for fmt in ("wecom", "dingtalk"):
        _, body, _ = build_request(
            endpoint("https://qyapi.weixin.qq.com/x?key=k", fmt, ""),
            message(title=title, text=f"拍品：{title}\n# 标题\n- 列表"),
            idempotency_key="k",
            now=NOW,
        )
        markdown = json.loads(body)["markdown"]
        sent = markdown.get("content") or markdown["text"]
        assert re.findall(r"(?<!\\)[\[\]<>]", sent) == []  # every bracket escaped
        assert "\\# 标题" in sent and "\\- 列表" in sent

    # A text document is served with its charset once.
    act = await act_as(pool, clock, user)
    loan = await make_loan(pool, clock.now(), bank, kinds=("patent",))
    case = await act(cases.open_case, OpenCase(loan_id=loan.loan_id))
    doc = await act(
        cases.upload_document,
        UploadDocument(
            case_id=case.id,
            item="payment_accounts",
            filename="账户.txt",
            content="收款账户：中国建设银行".encode("gb18030"),
        ),
    )
    r = await client.get(f"/bank/cases/{case.id}/documents/{doc.id}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=gb18030"


# --- sign-in throttling -------------------------------------------------------------------


async def test_sign_in_throttle_is_atomic_per_account_and_client_behind_trusted_proxies(
    pool: asyncpg.Pool, redis: Any, settings: Any, clock: Any, monkeypatch: Any
) -> None:
    """50 wrong passwords sent at once for one account from one address: at most the
    limit reach the password check; the real user, from their own address, still signs
    in; the guesser's wait grows; X-Forwarded-For counts only from a trusted proxy."""
    import asyncio
    from datetime import timedelta

    import msgspec
    from litestar import Request

    from market.accounts import services
    from market.errors import RateLimited, Unauthorized
    from market.web import client_address
    from tests.factories import PASSWORD

    _, _, email = await make_org(pool, clock.now())
    checked = 0
    verify = services.verify_password

    async def counted(hashed: str | None, password: str) -> bool:
        nonlocal checked
        checked += 1
        return await verify(hashed, password)

    monkeypatch.setattr(services, "verify_password", counted)

    async def try_(password: str, client: str) -> int:
        try:
            await services.sign_in(
                pool,
                redis,
                settings,
                email=email,
                password=password,
                client=client,
                at=clock.now(),
            )
        except RateLimited as exc:
            return -exc.retry_after
        except Unauthorized:
            return 401
        return 200

    guesser, user = "203.0.113.9", "198.51.100.7"
    answers = await asyncio.gather(*(try_("wrong guess!", guesser) for _ in range(50)))
    limit = settings.login_max_failures
    assert checked <= limit and answers.count(401) == checked == limit
    assert set(answers) == {401, -settings.login_delay_seconds}
    assert await try_(PASSWORD, user) == 200  # someone else's guessing locks nobody out
    assert await try_(PASSWORD, guesser) == -settings.login_delay_seconds  # not even with it
    clock.advance(timedelta(seconds=settings.login_delay_seconds))
    assert await try_("wrong guess!", guesser) == 401  # one more try, then twice as long
    assert await try_("wrong guess!", guesser) == -2 * settings.login_delay_seconds

    proxied = msgspec.structs.replace(settings, trusted_proxies=("10.0.0.0/8",))

    def seen(peer: str, forwarded: str, s: Any = proxied) -> str:
        scope = {
            "type": "http",
            "client": (peer, 4000),
            "path": "/",
            "method": "POST",
            "headers": [(b"x-forwarded-for", forwarded.encode())],
        }
        return client_address(Request(scope), s)  # type: ignore[arg-type]

    assert seen("10.0.0.2", "203.0.113.5, 10.0.0.3") == "203.0.113.5"
    assert seen("198.51.100.1", "203.0.113.5") == "198.51.100.1"  # not a proxy: ignored
    assert seen("10.0.0.2", "203.0.113.5", settings) == "10.0.0.2"  # none configured
