"""Webhooks for organisations' systems (docs/rules.md §Notifications): one POST per delivery.

Three formats an endpoint can choose:

* ``json`` — for a bank's own systems. The body is the `WebhookMessage` as JSON, with
  headers::

      X-IPX-Event: outbid
      X-IPX-Timestamp: 1767578400                  (unix seconds when we sent it)
      X-IPX-Signature: sha256=<hex>                (HMAC-SHA256 with the endpoint's secret
                                                    over b"<timestamp>." + raw body)
      Idempotency-Key: ipx-delivery-42             (the same on every retry of a delivery)

  A receiver verifies before trusting anything: take the raw body bytes as received (not
  re-serialised JSON), compute ``hmac_sha256(secret, timestamp + "." + body)`` in hex,
  compare with the header's hex part in constant time, and refuse a timestamp more than a
  few minutes from its own clock (replays). `verify()` below does exactly that for
  receivers written in Python. Then it should record Idempotency-Key and ignore a key it
  has already processed: a delivery whose answer was lost in transit is sent again.
  Answer 2xx quickly; 429 and 5xx are retried, any other status is a terminal failure.

* ``wecom`` — 企业微信群机器人: ``{"msgtype": "markdown", "markdown": {"content": …}}``
  posted to the robot's URL (which carries its key); content at most 4,096 bytes.
* ``dingtalk`` — 钉钉自定义机器人: ``{"msgtype": "markdown", "markdown": {"title", "text"}}``;
  with a secret, the "加签" parameters ``timestamp`` (ms) and ``sign`` are appended to the URL.

Robots answer HTTP 200 with ``{"errcode": N, "errmsg": …}``; only errcode 0 delivered, and
their rate-limit codes are transient. A robot reply without an errcode is taken at its HTTP
status (a relay in front of the robot may answer plainly).

`send()` returns when delivered and raises TransientDeliveryError (retry later) or
TerminalDeliveryError (do not retry) otherwise, with a code for the person who reads it
(market/notify/errors.py). Errors name the host only: a robot URL's query string is its
credential.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote_plus, urlsplit

import httpx
import msgspec

from market.notify.errors import TerminalDeliveryError, TransientDeliveryError

WebhookFormat = Literal["json", "wecom", "dingtalk"]
FORMATS: tuple[WebhookFormat, ...] = ("json", "wecom", "dingtalk")

USER_AGENT = "IPX-Webhooks/1.0"
# A short timeout, so a stuck receiver delays nobody else's notifications (docs/rules.md
# §Notifications); a retry comes later. Each phase (connect, write, read) gets this much, and
# a whole attempt twice as much, so a receiver that trickles its answer cannot hold us.
TIMEOUT_SECONDS = 5.0
# How much of a receiver's answer we read: enough for a robot's errcode and an error text.
MAX_RESPONSE_BYTES = 64 * 1024
# Verification tolerance: a signed request older or newer than this is refused (replay).
SIGNATURE_TOLERANCE_SECONDS = 300

# 企业微信群机器人: a markdown message's content is at most 4096 bytes of UTF-8.
WECOM_MAX_BYTES = 4096
# 钉钉: no precise ceiling is published for a markdown robot message; 20,000 bytes keeps a
# notification far from any limit while leaving room for every template we send.
DINGTALK_MAX_BYTES = 20_000
# Robot errcodes that mean "too many messages, try later"; every other non-zero is terminal.
# 钉钉 130101: send too fast (more than 20 a minute); 企业微信 45009: API frequency limit;
# -1 on both: system busy.
TRANSIENT_ERRCODES: dict[str, frozenset[int]] = {
    "wecom": frozenset({45009, -1}),
    "dingtalk": frozenset({130101, -1}),
}


class WebhookEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A row of webhook_endpoints: where one organisation wants its notifications."""

    id: int
    org_id: int
    url: str
    format: WebhookFormat
    secret: str  # json: HMAC key; dingtalk: the robot's 加签 secret or ""; wecom: ""
    events: tuple[str, ...]  # empty: every event of the organisation
    active: bool
    created_at: datetime


# The version of the json format's body (docs/webhooks.md); the OpenAPI document's
# `webhooks` describe it (market/notify/payloads.py). A change a receiver could trip over
# — a field removed, renamed or retyped — is a new version; added fields are not.
VERSION = "2026-12-01"


class WebhookMessage(msgspec.Struct, frozen=True, kw_only=True):
    """What one notification says; also the json format's body, field for field
    (market/notify/payloads.py documents it per event)."""

    version: str = VERSION
    id: str = ""  # the delivery's idempotency key: one per (endpoint, event), every retry
    event: str
    notification_id: int  # the outbox row's id: the same for every channel and retry
    subject: str = ""  # the stream the sequence counts in: "lot:{id}", "asset:{id}" …
    sequence: int = 0  # 1, 2, 3 … per endpoint and subject, in the order of the events
    created_at: datetime
    title: str  # rendered in the recipient organisation's language
    text: str
    lot_reference: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


# --- signatures -------------------------------------------------------------------------


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, b"<timestamp>." + body)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    signature_header: str,
    now: datetime,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Whether a json-format request is ours and fresh: for tests and Python receivers.

    `timestamp` and `signature_header` are the X-IPX-Timestamp and X-IPX-Signature headers
    as received; `body` the raw request body.
    """
    raw = body.encode() if isinstance(body, str) else body
    try:
        sent_at = int(str(timestamp))
    except ValueError:
        return False
    if abs(now.timestamp() - sent_at) > tolerance:
        return False
    expected = signature(secret, str(timestamp), raw)
    return hmac.compare_digest(expected.encode(), signature_header.strip().encode())


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """钉钉加签: base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")), before URL-encoding."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


# What markdown reads as markup anywhere in a line (emphasis, code, links and images, HTML
# such as WeCom's <font>, tables, strike-through), and at a line's start (headings,
# quotes, lists).
_MARKUP = re.compile(r"([\\`*_\[\]<>|~])")
_LINE_START = re.compile(r"^(\s*(?:\d+)?)([#>+=.)-])", re.MULTILINE)


def markdown_text(text: str) -> str:
    """Plain text that a robot's markdown shows as written: a lot's title such as
    `[点击领取](http://…)` stays text, never a link in a bank's group chat
    (docs/rules.md §Security)."""
    escaped = _MARKUP.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", escaped)


def truncate_utf8(text: str, limit: int, ellipsis: str = "…") -> str:
    """`text` cut to at most `limit` bytes of UTF-8 without splitting a character."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    room = limit - len(ellipsis.encode())
    # errors="ignore" drops the partial character a byte cut may leave at the end.
    return raw[:room].decode(errors="ignore") + ellipsis


# --- the request of each format ---------------------------------------------------------


def _base_headers(idempotency_key: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": idempotency_key,
    }


def build_request(
    endpoint: WebhookEndpoint, message: WebhookMessage, *, idempotency_key: str, now: datetime
) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) of the POST that delivers `message` to `endpoint`."""
    headers = _base_headers(idempotency_key)
    url = endpoint.url
    if endpoint.format == "json":
        body = msgspec.json.encode(message)
        timestamp = int(now.timestamp())
        headers["X-IPX-Event"] = message.event
        headers["X-IPX-Timestamp"] = str(timestamp)
        headers["X-IPX-Signature"] = signature(endpoint.secret, timestamp, body)
    elif endpoint.format == "wecom":
        title, text = markdown_text(message.title), markdown_text(message.text)
        content = truncate_utf8(f"**{title}**\n{text}", WECOM_MAX_BYTES)
        body = msgspec.json.encode({"msgtype": "markdown", "markdown": {"content": content}})
    else:
        title = markdown_text(message.title)
        text = truncate_utf8(f"#### {title}\n\n{markdown_text(message.text)}", DINGTALK_MAX_BYTES)
        body = msgspec.json.encode(
            {"msgtype": "markdown", "markdown": {"title": message.title, "text": text}}
        )
        if endpoint.secret:
            # DingTalk refuses a timestamp more than an hour from its clock, so it is taken
            # at each attempt, never reused from the first one.
            ms = int(now.timestamp() * 1000)
            sign = quote_plus(dingtalk_sign(endpoint.secret, ms))
            url += f"{'&' if '?' in url else '?'}timestamp={ms}&sign={sign}"
    return url, body, headers


# --- sending ------------------------------------------------------------------------------


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from receivers; our own schedule applies
    return max(seconds, 0.0)


def _snippet(data: bytes) -> str:
    text = data[:200].decode(errors="replace").strip()
    return f": {text}" if text else ""


# IPv6 prefixes that carry an IPv4 address in their last 32 bits (docs/rules.md §Security):
# NAT64's well-known prefix (RFC 6052), SIIT's IPv4-translated form (RFC 2765) and the
# deprecated IPv4-compatible form (RFC 4291).
_LAST_32_BITS = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "::ffff:0:0:0/96", "::/96"))
# NAT64 for a network's own use (RFC 8215): what it reaches is the operator's choice.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: IPv4-mapped (::ffff:a.b.c.d), 6to4
    (2002::/16), Teredo (2001::/32, its server and its client), NAT64 (64:ff9b::/96),
    IPv4-translated (::ffff:0:a.b.c.d) and IPv4-compatible (::a.b.c.d)."""
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    found += [
        ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) for net in _LAST_32_BITS if address in net
    ]
    return [a for a in found if a is not None]


def is_public(address: str) -> bool:
    """Whether an IP address (text, an IPv6 zone allowed) is a public one: global, and so
    is every IPv4 address it embeds — `[64:ff9b::7f00:1]` is loopback by NAT64."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    if not ip.is_global:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        return ip not in _LOCAL_NAT64 and all(v4.is_global for v4 in embedded_ipv4(ip))
    return True


async def _resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to, in the resolver's order, each once."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))


class PublicHostsOnly(httpx.AsyncHTTPTransport):
    """A transport that sends only to public addresses (not loopback, private, link-local,
    reserved…), so a webhook URL cannot reach the exchange's own network.

    The host is resolved once, here; every address it resolves to must be public, and the
    request is then sent to one of those very addresses (the Host header and the TLS
    server name and certificate check stay the host's). Letting the connection resolve
    the name again would leave a window in which a DNS answer changed since the check —
    rebinding — points the request at an internal address. Connections are not kept
    alive: the pool knows a connection by its address only, and a connection verified for
    one host must not carry another host's request that resolves to the same address."""

    def __init__(
        self,
        *,
        allowed: Callable[[str], bool] = is_public,
        resolve: Callable[[str, int], Awaitable[list[str]]] = _resolve,
    ) -> None:
        super().__init__(limits=httpx.Limits(max_keepalive_connections=0))
        self._allowed = allowed
        self._resolve = resolve

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            addresses = [str(ipaddress.ip_address(host))]  # a literal address: nothing to resolve
        except ValueError:
            try:
                addresses = await self._resolve(host, port)
            except OSError as exc:
                raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from None
        for address in addresses:
            if not self._allowed(address):
                raise TerminalDeliveryError(
                    f"{host} resolves to {address}, not a public address: webhooks go to "
                    "public hosts only",
                    code="webhook_address_not_public",
                    params={"host": host, "address": address},
                )
        failure = httpx.ConnectError(f"{host} resolves to no address", request=request)
        for address in addresses:  # in the resolver's order, as a plain connection would
            pinned = httpx.Request(
                request.method,
                request.url.copy_with(host=address),
                headers=request.headers,  # with the Host header of the URL's host
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": host},
            )
            try:
                return await super().handle_async_request(pinned)
            except httpx.ConnectError as exc:  # nothing was sent: the next address
                failure = exc
        raise failure


def http_client(*, private_hosts: bool) -> httpx.AsyncClient:
    """The client webhooks are sent with: no redirects, public hosts only unless the
    setting `webhook_private_hosts` allows private ones."""
    return httpx.AsyncClient(
        follow_redirects=False, transport=None if private_hosts else PublicHostsOnly()
    )


async def _post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
) -> tuple[int, httpx.Headers, bytes]:
    host = urlsplit(url).netloc.rpartition("@")[2]
    try:
        async with asyncio.timeout(2 * timeout_s):
            async with client.stream(
                "POST",
                url,
                content=body,
                headers=headers,
                timeout=httpx.Timeout(timeout_s),
                follow_redirects=False,
            ) as response:
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) >= MAX_RESPONSE_BYTES:
                        break
                return response.status_code, response.headers, bytes(data)
    except (httpx.TimeoutException, TimeoutError):
        raise TransientDeliveryError(
            f"{host} did not answer within {timeout_s:g} s",
            code="webhook_timeout",
            params={"host": host, "seconds": f"{timeout_s:g}"},
        ) from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise TerminalDeliveryError(
            f"cannot send to this URL: {type(exc).__name__}", code="webhook_bad_url"
        ) from None
    except httpx.TransportError as exc:
        raise TransientDeliveryError(
            f"could not reach {host}: {type(exc).__name__} {exc}".strip(),
            code="webhook_unreachable",
            params={"host": host},
        ) from None


def _check_status(host: str, status: int, headers: httpx.Headers, data: bytes) -> None:
    if 200 <= status < 300:
        return
    message = f"{host} answered HTTP {status}{_snippet(data)}"
    params = {"host": host, "status": status}
    if status in (408, 429) or status >= 500:
        raise TransientDeliveryError(
            message,
            code="webhook_http_status",
            params=params,
            status=status,
            retry_after=_retry_after(headers.get("retry-after")),
        )
    # 3xx included: we never follow redirects (the endpoint's URL should be the final one,
    # and following could carry a signed body somewhere nobody registered).
    raise TerminalDeliveryError(message, code="webhook_http_status", params=params, status=status)


def _check_errcode(fmt: WebhookFormat, host: str, status: int, data: bytes) -> None:
    try:
        answer = msgspec.json.decode(data) if data.strip() else None
    except msgspec.DecodeError:
        return
    if not isinstance(answer, dict) or "errcode" not in answer:
        return
    code = answer["errcode"]
    if code == 0:
        return
    errmsg = str(answer.get("errmsg", ""))[:200]
    message = f"{fmt} robot at {host} refused: errcode {code} {errmsg}".strip()
    params = {"host": host, "errcode": str(code)}
    if isinstance(code, int) and code in TRANSIENT_ERRCODES[fmt]:
        raise TransientDeliveryError(
            message, code="webhook_robot_refused", params=params, status=status
        )
    raise TerminalDeliveryError(message, code="webhook_robot_refused", params=params, status=status)


async def send(
    endpoint: WebhookEndpoint,
    message: WebhookMessage,
    *,
    idempotency_key: str,
    client: httpx.AsyncClient,
    now: datetime,
    timeout_s: float = TIMEOUT_SECONDS,
) -> None:
    """Deliver `message` to `endpoint` once; raise Transient/TerminalDeliveryError if not.

    `idempotency_key` must be the same on every attempt of one delivery (e.g.
    ``ipx-delivery-{id}``) so the receiver can drop a repeat. `now` is the clock's time of
    this attempt: it goes into the signature timestamps.
    """
    url, body, headers = build_request(endpoint, message, idempotency_key=idempotency_key, now=now)
    host = urlsplit(url).netloc.rpartition("@")[2]
    status, response_headers, data = await _post(client, url, body, headers, timeout_s)
    _check_status(host, status, response_headers, data)
    if endpoint.format != "json":
        _check_errcode(endpoint.format, host, status, data)
