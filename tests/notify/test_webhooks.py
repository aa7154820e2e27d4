"""Webhook sending against a real local HTTP receiver on 127.0.0.1, not a mock: the json format's signature and idempotency key, the
WeCom and DingTalk robot bodies and DingTalk's 加签, and how every kind of answer is classed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pytest

from market.notify.errors import TerminalDeliveryError, TransientDeliveryError
from market.notify.webhooks import (
    WECOM_MAX_BYTES,
    PublicHostsOnly,
    WebhookEndpoint,
    WebhookMessage,
    http_client,
    send,
    signature,
    truncate_utf8,
    verify,
)

NOW = datetime(2026, 3, 2, 1, 30, 15, 250_000, tzinfo=UTC)
SECRET = "whsec_test-secret"
ROBOT_KEY = "6a1f7c52-0b1e-4d8e-9a3b-2c9d1f00beef"
DING_SECRET = "SECbd1a4b7c7f0e8a9d2f3e4c5b6a7980fedcba9876543210"

REASONS = {200: "OK", 204: "No Content", 301: "Moved Permanently", 400: "Bad Request"}


# --- the receiver ---------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    target: str  # path and query exactly as sent
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """A small HTTP/1.1 server that records every request and answers as told.

    It runs its own event loop in a thread: the app under test may be driven from another
    loop (Litestar's test client), and a receiver sharing the test's loop would stall.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._replies: deque[Reply] = deque()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(
        self,
        status: int = 200,
        body: bytes | dict[str, Any] = b"",
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Queue the answer to the next request (then 200 with an empty body)."""
        raw = msgspec.json.encode(body) if isinstance(body, dict) else body
        self._replies.append(Reply(status, raw, headers or {}, delay))

    def start(self) -> None:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def shut() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Received(method, target, headers, body))
                reply = self._replies.popleft() if self._replies else Reply()
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                head = [f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}"]
                head += [f"{k}: {v}" for k, v in reply.headers.items()]
                head += [f"Content-Length: {len(reply.body)}", "Content-Type: application/json"]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + reply.body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def endpoint(url: str, fmt: str = "json", secret: str = SECRET) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=7,
        org_id=3,
        url=url,
        format=fmt,  # type: ignore[arg-type]
        secret=secret,
        events=(),
        active=True,
        created_at=NOW,
    )


def message(**kw: Any) -> WebhookMessage:
    values: dict[str, Any] = {
        "id": "ipx-delivery-42",
        "event": "outbid",
        "notification_id": 4242,
        "subject": "lot:7",
        "sequence": 3,
        "created_at": NOW - timedelta(seconds=2),
        "lot_reference": "IPX-2026-0007",
        "title": "您的出价已被超越",
        "text": "拍品 IPX-2026-0007 当前价 ¥1,250,000.00，请及时加价。",
        "payload": {"price_fen": 125_000_000, "round": 1},
    }
    values.update(kw)
    return WebhookMessage(**values)


# --- json --------------------------------------------------------------------------------------


async def test_json_body_is_signed_and_verifies(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    await send(
        endpoint(receiver.url + "/hooks/ipx"),
        message(),
        idempotency_key="ipx-delivery-42",
        client=http,
        now=NOW,
    )
    [req] = receiver.requests
    assert req.method == "POST" and req.target == "/hooks/ipx"
    body = req.json()
    assert body == {
        "version": "2026-12-01",
        "id": "ipx-delivery-42",
        "event": "outbid",
        "notification_id": 4242,
        "subject": "lot:7",
        "sequence": 3,
        "created_at": "2026-03-02T01:30:13.250000Z",
        "title": "您的出价已被超越",
        "text": "拍品 IPX-2026-0007 当前价 ¥1,250,000.00，请及时加价。",
        "lot_reference": "IPX-2026-0007",
        "payload": {"price_fen": 125_000_000, "round": 1},
    }
    h = req.headers
    assert h["x-ipx-event"] == "outbid"
    assert h["x-ipx-timestamp"] == str(int(NOW.timestamp()))
    assert h["idempotency-key"] == "ipx-delivery-42"
    assert h["user-agent"].startswith("IPX-Webhooks/")
    assert h["content-type"].startswith("application/json")
    # What a receiver computes on its own, independently of our helper:
    mac = hmac.new(SECRET.encode(), h["x-ipx-timestamp"].encode() + b"." + req.body, "sha256")
    assert h["x-ipx-signature"] == "sha256=" + mac.hexdigest()
    assert verify(SECRET, h["x-ipx-timestamp"], req.body, h["x-ipx-signature"], NOW)


async def test_tampering_stale_or_foreign_requests_fail_verification(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    await send(endpoint(receiver.url), message(), idempotency_key="k", client=http, now=NOW)
    [req] = receiver.requests
    ts, sig = req.headers["x-ipx-timestamp"], req.headers["x-ipx-signature"]
    tampered = req.body.replace(b"125000000", b"100")
    assert tampered != req.body
    assert not verify(SECRET, ts, tampered, sig, NOW)
    assert not verify("whsec_another", ts, req.body, sig, NOW)
    assert not verify(SECRET, str(int(ts) + 1), req.body, sig, NOW)  # timestamp is signed too
    sent = datetime.fromtimestamp(int(ts), UTC)
    assert verify(SECRET, ts, req.body, sig, sent + timedelta(seconds=300))
    assert not verify(SECRET, ts, req.body, sig, sent + timedelta(seconds=301))  # replayed late
    assert not verify(SECRET, ts, req.body, sig, sent - timedelta(seconds=301))  # from the future
    assert not verify(SECRET, "not-a-number", req.body, sig, NOW)
    assert verify(SECRET, ts, req.body.decode(), sig, NOW)  # str bodies are taken as UTF-8


async def test_retries_keep_the_idempotency_key_and_sign_afresh(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.reply(500, b"database is down")
    ep, msg = endpoint(receiver.url), message()
    with pytest.raises(TransientDeliveryError) as first:
        await send(ep, msg, idempotency_key="ipx-delivery-9", client=http, now=NOW)
    assert first.value.status == 500
    assert "database is down" in first.value.message
    later = NOW + timedelta(seconds=30)
    await send(ep, msg, idempotency_key="ipx-delivery-9", client=http, now=later)
    a, b = receiver.requests
    assert a.headers["idempotency-key"] == b.headers["idempotency-key"] == "ipx-delivery-9"
    assert a.body == b.body  # the same notification, byte for byte
    assert int(b.headers["x-ipx-timestamp"]) - int(a.headers["x-ipx-timestamp"]) == 30
    assert verify(SECRET, b.headers["x-ipx-timestamp"], b.body, b.headers["x-ipx-signature"], later)


def test_signature_helper_matches_the_documented_scheme() -> None:
    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signature("k", 1700000000, b"{}") == f"sha256={expected}"


# --- classification -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientDeliveryError),
        (502, TransientDeliveryError),
        (503, TransientDeliveryError),
        (429, TransientDeliveryError),
        (408, TransientDeliveryError),
        (400, TerminalDeliveryError),
        (401, TerminalDeliveryError),
        (404, TerminalDeliveryError),
        (410, TerminalDeliveryError),
        (301, TerminalDeliveryError),
        (200, None),
        (202, None),
        (204, None),
    ],
)
async def test_http_status_decides_retry_or_not(
    receiver: Receiver, http: httpx.AsyncClient, status: int, error: type[Exception] | None
) -> None:
    headers = {"Location": "http://127.0.0.1:1/elsewhere"} if status == 301 else {}
    receiver.reply(status, b"" if status == 204 else b'{"errcode": 1}', headers=headers)
    if error is None:
        await send(endpoint(receiver.url), message(), idempotency_key="k", client=http, now=NOW)
    else:
        with pytest.raises(error) as raised:
            await send(endpoint(receiver.url), message(), idempotency_key="k", client=http, now=NOW)
        assert raised.value.status == status  # type: ignore[attr-defined]
        assert f"HTTP {status}" in str(raised.value)
    assert len(receiver.requests) == 1  # never a redirect followed, never a second request


async def test_retry_after_is_passed_on(receiver: Receiver, http: httpx.AsyncClient) -> None:
    receiver.reply(429, headers={"Retry-After": "17"})
    with pytest.raises(TransientDeliveryError) as raised:
        await send(endpoint(receiver.url), message(), idempotency_key="k", client=http, now=NOW)
    assert raised.value.retry_after == 17.0


async def test_a_slow_receiver_is_a_transient_timeout(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.reply(200, delay=3.0)
    started = asyncio.get_running_loop().time()
    with pytest.raises(TransientDeliveryError, match=r"did not answer within 0\.3 s"):
        await send(
            endpoint(receiver.url),
            message(),
            idempotency_key="k",
            client=http,
            now=NOW,
            timeout_s=0.3,
        )
    assert asyncio.get_running_loop().time() - started < 2.0
    assert len(receiver.requests) == 1


async def test_nobody_listening_is_transient(http: httpx.AsyncClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The port is free again and nothing listens there: the connection is refused.
    with pytest.raises(TransientDeliveryError, match=r"could not reach 127\.0\.0\.1"):
        await send(
            endpoint(f"http://127.0.0.1:{port}/x"),
            message(),
            idempotency_key="k",
            client=http,
            now=NOW,
        )


# --- WeCom ---------------------------------------------------------------------------------------


async def test_wecom_markdown_body(receiver: Receiver, http: httpx.AsyncClient) -> None:
    receiver.reply(200, {"errcode": 0, "errmsg": "ok"})
    url = f"{receiver.url}/cgi-bin/webhook/send?key={ROBOT_KEY}"
    await send(endpoint(url, "wecom", ""), message(), idempotency_key="k", client=http, now=NOW)
    [req] = receiver.requests
    assert req.query == {"key": [ROBOT_KEY]}
    assert req.json() == {
        "msgtype": "markdown",
        "markdown": {
            "content": "**您的出价已被超越**\n拍品 IPX-2026-0007 当前价 ¥1,250,000.00，请及时加价。"
        },
    }
    assert "x-ipx-signature" not in req.headers


async def test_wecom_content_is_cut_to_4096_bytes_on_a_character_boundary(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    long_text = "质押专利处置通知" * 400  # 3 bytes a character: far beyond 4096 bytes
    url = f"{receiver.url}/cgi-bin/webhook/send?key={ROBOT_KEY}"
    await send(
        endpoint(url, "wecom", ""),
        message(text=long_text),
        idempotency_key="k",
        client=http,
        now=NOW,
    )
    content = receiver.requests[0].json()["markdown"]["content"]
    raw = content.encode()
    assert len(raw) <= WECOM_MAX_BYTES
    assert len(raw) > WECOM_MAX_BYTES - 6  # cut where needed, not far before
    assert content.startswith("**您的出价已被超越**\n质押专利")
    assert content.endswith("…")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"errcode": 0, "errmsg": "ok"}, None),
        ({"errcode": 45009, "errmsg": "api freq out of limit"}, TransientDeliveryError),
        ({"errcode": -1, "errmsg": "system busy"}, TransientDeliveryError),
        ({"errcode": 93000, "errmsg": "invalid webhook url"}, TerminalDeliveryError),
        ({"errcode": 40058, "errmsg": "content exceed max length"}, TerminalDeliveryError),
    ],
)
async def test_wecom_errcodes(
    receiver: Receiver,
    http: httpx.AsyncClient,
    answer: dict[str, Any],
    error: type[Exception] | None,
) -> None:
    receiver.reply(200, answer)
    url = f"{receiver.url}/cgi-bin/webhook/send?key={ROBOT_KEY}"
    ep = endpoint(url, "wecom", "")
    if error is None:
        await send(ep, message(), idempotency_key="k", client=http, now=NOW)
        return
    with pytest.raises(error) as raised:
        await send(ep, message(), idempotency_key="k", client=http, now=NOW)
    text = str(raised.value)
    assert f"errcode {answer['errcode']}" in text and answer["errmsg"] in text
    assert ROBOT_KEY not in text  # the key is the robot's credential


# --- DingTalk ------------------------------------------------------------------------------------


async def test_dingtalk_markdown_and_signing(receiver: Receiver, http: httpx.AsyncClient) -> None:
    receiver.reply(200, {"errcode": 0, "errmsg": "ok"})
    url = f"{receiver.url}/robot/send?access_token=abc123token"
    await send(
        endpoint(url, "dingtalk", DING_SECRET), message(), idempotency_key="k", client=http, now=NOW
    )
    [req] = receiver.requests
    assert req.json() == {
        "msgtype": "markdown",
        "markdown": {
            "title": "您的出价已被超越",
            "text": "#### 您的出价已被超越\n\n拍品 IPX-2026-0007 当前价 ¥1,250,000.00，请及时加价。",
        },
    }
    q = req.query
    assert q["access_token"] == ["abc123token"]
    ms = int(NOW.timestamp() * 1000)
    assert q["timestamp"] == [str(ms)] and ms % 1000 == 250
    # DingTalk's documented check, recomputed here: base64(HMAC-SHA256(secret, "ts\nsecret")).
    mac = hmac.new(DING_SECRET.encode(), f"{ms}\n{DING_SECRET}".encode(), hashlib.sha256)
    assert q["sign"] == [base64.b64encode(mac.digest()).decode()]
    # and it travelled URL-encoded: base64's + / = never appear raw in the query
    raw_sign = urlsplit(req.target).query.split("sign=", 1)[1]
    assert not set(raw_sign) & set("+/=")


async def test_dingtalk_without_secret_adds_no_parameters(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    url = f"{receiver.url}/robot/send?access_token=abc123token"
    await send(endpoint(url, "dingtalk", ""), message(), idempotency_key="k", client=http, now=NOW)
    assert receiver.requests[0].query == {"access_token": ["abc123token"]}


async def test_dingtalk_signs_each_attempt_at_its_own_time(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.reply(200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
    receiver.reply(200, {"errcode": 0, "errmsg": "ok"})
    ep = endpoint(f"{receiver.url}/robot/send?access_token=t", "dingtalk", DING_SECRET)
    with pytest.raises(TransientDeliveryError, match="errcode 130101"):
        await send(ep, message(), idempotency_key="k", client=http, now=NOW)
    await send(ep, message(), idempotency_key="k", client=http, now=NOW + timedelta(minutes=2))
    first, second = (int(r.query["timestamp"][0]) for r in receiver.requests)
    assert second - first == 120_000


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"errcode": 310000, "errmsg": "keywords not in content"}, TerminalDeliveryError),
        ({"errcode": 300001, "errmsg": "token is not exist"}, TerminalDeliveryError),
        ({"errcode": -1, "errmsg": "系统繁忙"}, TransientDeliveryError),
        ({"ok": True}, None),  # a relay in front of the robot: no errcode, HTTP 200 decides
        (b"", None),
    ],
)
async def test_dingtalk_errcodes(
    receiver: Receiver,
    http: httpx.AsyncClient,
    answer: dict[str, Any] | bytes,
    error: type[Exception] | None,
) -> None:
    receiver.reply(200, answer)
    ep = endpoint(f"{receiver.url}/robot/send?access_token=t", "dingtalk", "")
    if error is None:
        await send(ep, message(), idempotency_key="k", client=http, now=NOW)
    else:
        with pytest.raises(error):
            await send(ep, message(), idempotency_key="k", client=http, now=NOW)
    assert len(receiver.requests) == 1


async def test_json_endpoints_ignore_an_errcode_in_a_2xx_answer(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.reply(200, {"errcode": 93000})
    await send(endpoint(receiver.url), message(), idempotency_key="k", client=http, now=NOW)
    assert len(receiver.requests) == 1


# --- helpers -------------------------------------------------------------------------------------


def test_truncate_utf8() -> None:
    assert truncate_utf8("abc", 3) == "abc"
    assert truncate_utf8("abcd", 3) == "…"  # the ellipsis itself is 3 bytes
    cut = truncate_utf8("中文" * 10, 10)
    assert cut == "中文…" and len(cut.encode()) <= 10
    cut = truncate_utf8("a中文" * 10, 12)  # a cut inside a character drops the partial one
    assert cut == "a中文a…" and len(cut.encode()) == 11


async def test_private_hosts_are_refused_unless_allowed(receiver: Receiver) -> None:
    """A webhook URL must not make the exchange POST into its own network: a host that
    resolves to loopback (here the receiver, and `localhost`) is a terminal failure and
    nothing reaches it; the setting for development lets it through."""
    async with http_client(private_hosts=False) as guarded:
        for url in (receiver.url + "/hooks", receiver.url.replace("127.0.0.1", "localhost")):
            with pytest.raises(TerminalDeliveryError, match="not a public address"):
                await send(
                    endpoint(url), message(), idempotency_key="ipx-x", client=guarded, now=NOW
                )
    assert receiver.requests == []
    async with http_client(private_hosts=True) as open_client:
        await send(
            endpoint(receiver.url + "/hooks"),
            message(),
            idempotency_key="ipx-y",
            client=open_client,
            now=NOW,
        )
    assert len(receiver.requests) == 1


def _pinned_client(answers: list[list[str]], asked: list[str]) -> httpx.AsyncClient:
    """A guarded client whose resolver gives `answers` in turn (a rebinding DNS server)
    and which counts loopback as public, so the receiver can stand in for a bank."""

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[min(len(asked), len(answers)) - 1]

    transport = PublicHostsOnly(allowed=lambda a: a.startswith("127."), resolve=resolve)
    return httpx.AsyncClient(follow_redirects=False, transport=transport)


async def test_a_webhook_goes_to_the_address_that_was_checked(receiver: Receiver) -> None:
    """DNS rebinding: the name is resolved once, and the request goes to that checked
    address. `.test` names never resolve in real DNS, so a second resolution by the
    connection would fail; the second answer (an internal address) is never asked for."""
    asked: list[str] = []
    url = f"http://hooks.rebind.test:{receiver.port}/hooks"
    async with _pinned_client([["127.0.0.1"], ["10.0.0.5"]], asked) as client:
        await send(endpoint(url), message(), idempotency_key="ipx-p", client=client, now=NOW)
    assert asked == ["hooks.rebind.test"]
    [got] = receiver.requests
    assert got.headers["host"] == f"hooks.rebind.test:{receiver.port}"  # the name, not the IP
    assert got.target == "/hooks"


async def test_a_host_with_any_internal_address_is_refused(receiver: Receiver) -> None:
    asked: list[str] = []
    url = f"http://hooks.rebind.test:{receiver.port}/hooks"
    async with _pinned_client([["127.0.0.1", "10.0.0.5"]], asked) as client:
        with pytest.raises(TerminalDeliveryError, match=r"resolves to 10\.0\.0\.5, not a public"):
            await send(endpoint(url), message(), idempotency_key="ipx-q", client=client, now=NOW)
    assert receiver.requests == []


async def test_an_address_that_refuses_the_connection_gives_way_to_the_next(
    receiver: Receiver,
) -> None:
    """Nothing listens on 127.0.0.2 (the receiver is bound to 127.0.0.1): the next
    checked address is tried, as a plain connection would."""
    asked: list[str] = []
    url = f"http://hooks.rebind.test:{receiver.port}/hooks"
    async with _pinned_client([["127.0.0.2", "127.0.0.1"]], asked) as client:
        await send(endpoint(url), message(), idempotency_key="ipx-r", client=client, now=NOW)
    assert asked == ["hooks.rebind.test"] and len(receiver.requests) == 1
