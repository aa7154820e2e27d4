"""A sandbox exchange from the outside: HTTP only, to a server and a worker running as
their own processes with the demo's data. A lot goes from publication through bidding,
its close, the buyer's payment and the waterfall's payouts in well under a minute of real
time, because the operator moves the clock over the 30-day announcement, the day of
bidding and the wait for the close.

Nothing of the exchange is imported here but the helpers that start its processes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.servers import run_market, running_server, running_worker

SANDBOX = {"MARKET_MODE": "sandbox"}
DEMO_PASSWORD = "ipx-demo-2026"  # the demo's logins, as `market run` prints them
SECRET = re.compile(r'data-testid="new-token">([^<]+)<')


@pytest.fixture
def exchange(settings: Any, pool: Any) -> Iterator[str]:
    """A sandbox exchange with the demo's data: `market seed-demo`, the web server and the
    worker, all in sandbox mode; yields the server's base URL."""
    run_market(settings, "seed-demo", env=SANDBOX)
    with running_worker(settings, env=SANDBOX), running_server(settings, env=SANDBOX) as url:
        yield url


def _signed_in(url: str, email: str) -> httpx.Client:
    web = httpx.Client(base_url=url, timeout=30)
    web.get("/login")  # the CSRF cookie
    r = web.post(
        "/login",
        data={"email": email, "password": DEMO_PASSWORD, "_csrf_token": web.cookies["ipx_csrf"]},
    )
    assert r.status_code in (302, 303), r.text
    return web


def _api(url: str, email: str, scopes: list[str]) -> httpx.Client:
    """An API client with a token made on the account page (tokens have no API)."""
    web = _signed_in(url, email)
    try:
        r = web.post(
            "/account/tokens",
            data={"name": "sandbox", "scopes": scopes, "_csrf_token": web.cookies["ipx_csrf"]},
        )
    finally:
        web.close()
    assert r.status_code == 201, r.text
    found = SECRET.search(r.text)
    assert found is not None
    return httpx.Client(
        base_url=url, timeout=30, headers={"Authorization": f"Bearer {found.group(1)}"}
    )


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _until(what: str, check: Any, within: float = 20.0) -> Any:
    """Poll `check()` until it returns something true (the worker is another process)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {within} s")


def test_a_lot_from_publication_to_payout_in_under_a_minute(exchange: str) -> None:
    with (
        _api(
            exchange,
            "bank@ipx.demo",
            ["collateral:read", "lots:write", "pools:read", "transfers:read", "transfers:write"],
        ) as bank,
        _api(exchange, "buyer@ipx.demo", ["bids:write", "transfers:write"]) as buyer,
        _api(exchange, "operator@ipx.demo", ["operator:write", "clock:write"]) as operator,
        httpx.Client(base_url=exchange, timeout=30) as public,
    ):
        _from_publication_to_payout(bank, buyer, operator, public)


def _from_publication_to_payout(
    bank: httpx.Client, buyer: httpx.Client, operator: httpx.Client, public: httpx.Client
) -> None:
    # Every page of a sandbox says so.
    assert 'data-testid="sandbox-banner"' in public.get("/").text
    began = time.monotonic()

    # The bank publishes its demo draft lot: bidding opens after the 30-day announcement.
    draft = next(
        (case["id"], lot)
        for summary in _ok(bank.get("/api/v1/cases"))["items"]
        for case in [_ok(bank.get(f"/api/v1/cases/{summary['id']}"))]
        for lot in case["lots"]
        if lot["status"] == "draft"
    )
    case_id, lot = draft
    published = _ok(bank.post(f"/api/v1/bank/lots/{lot['id']}/actions", json={"action": "publish"}))
    assert published["status"] == "announced"
    reference = published["reference"]
    starts = datetime.fromisoformat(published["terms"]["bidding_starts_at"])
    ends = datetime.fromisoformat(published["terms"]["bidding_ends_at"])
    start_fen = published["terms"]["start_price_fen"]

    # The buyer registers; the operator confirms its deposit.
    registration = _ok(
        buyer.post(
            f"/api/v1/lots/{reference}/registrations", json={"agreement_version": "2020-01"}
        ),
        201,
    )
    _ok(
        operator.post(
            "/api/v1/operator/deposits/confirm",
            json={
                "transfer_reference": registration["transfer_reference"],
                "amount_fen": registration["deposit_fen"],
            },
        )
    )
    bid = {"type": "bid", "amount_fen": start_fen}
    refused = buyer.post(f"/api/v1/lots/{reference}/bids", json=bid)
    assert (refused.status_code, refused.json()["code"]) == (409, "lot_not_open")

    # A month on: bidding is open.
    now = datetime.fromisoformat(_ok(public.get("/api/v1/sandbox/clock"))["now"])
    assert starts - now > timedelta(days=29)
    moved = _ok(operator.post("/api/v1/sandbox/clock/advance", json={"to": starts.isoformat()}))
    assert datetime.fromisoformat(moved["now"]) >= starts
    _ok(buyer.post(f"/api/v1/lots/{reference}/bids", json=bid), 201)
    _until(
        "the worker opens the lot",
        lambda: _ok(public.get(f"/api/v1/lots/{reference}"))["status"] == "bidding",
    )

    # A day on: the lot closes at once, sold to the buyer; a later bid is refused.
    seconds = int((ends - datetime.fromisoformat(moved["now"])).total_seconds()) + 60
    _ok(operator.post("/api/v1/sandbox/clock/advance", json={"seconds": seconds}))
    late = buyer.post(f"/api/v1/lots/{reference}/bids", json={**bid, "amount_fen": 2 * start_fen})
    assert late.status_code == 409, late.text
    _until(
        "the worker closes the lot",
        lambda: _ok(public.get(f"/api/v1/lots/{reference}"))["status"] == "sold",
    )

    # The operator records the buyer's transfer: the price is held in escrow until the title
    # has moved; the bank releases the pledge, the buyer records the transfer, the operator
    # confirms — then the proceeds go down the waterfall.
    due = next(
        p for p in _ok(operator.get("/api/v1/operator/payments")) if p["lot_reference"] == reference
    )
    assert due["price_fen"] == start_fen and not due["overdue"]
    paid = _ok(
        operator.post(
            "/api/v1/operator/payments",
            json={
                "payment_reference": due["payment_reference"],
                "amount_fen": due["balance_due_fen"],
            },
        )
    )
    assert paid["status"] == "paid"
    held = _ok(bank.get(f"/api/v1/bank/cases/{case_id}/receipts"))
    assert not [r for r in held["receipts"] if r["status"] == "routed"]
    transfer = next(
        t for t in _ok(bank.get("/api/v1/transfers?in_escrow=true")) if t["sale_id"] == paid["id"]
    )
    today = datetime.fromisoformat(_ok(public.get("/api/v1/sandbox/clock"))["now"])
    pdf = "JVBERi0xLjQKMSAwIG9iajw8L1R5cGUvQ2F0YWxvZz4+ZW5kb2JqCnRyYWlsZXI8PC9Sb290IDEgMCBSPj4KJSVFT0YK"
    for client, route, kind in [
        (bank, "release", "pledge_release"),
        *[(buyer, "recordal", k) for k in transfer["needed"] if k != "pledge_release"],
    ]:
        notice = {
            "kind": kind,
            "number": f"N{paid['id']}{kind[:3].upper()}",
            "issued_on": today.astimezone(timezone(timedelta(hours=8))).date().isoformat(),
            "filename": "notice.pdf",
            "content": pdf,
        }
        _ok(client.post(f"/api/v1/transfers/{paid['id']}/{route}", json=notice))
    done = _ok(operator.post(f"/api/v1/operator/transfers/{paid['id']}/confirm"))
    assert done["status"] == "completed"
    money = _ok(bank.get(f"/api/v1/bank/cases/{case_id}/receipts"))
    receipts = [r for r in money["receipts"] if r["status"] == "routed"]
    assert receipts and all(r["payouts"] for r in receipts)
    assert sum(d["amount_fen"] for r in receipts for d in r["distributions"]) > 0
    assert time.monotonic() - began < 60

    # Moves were audited commands; the clock never went back.
    clock = _ok(public.get("/api/v1/sandbox/clock"))
    assert clock["offset_ms"] >= (ends - now).total_seconds() * 1000
    back = operator.post("/api/v1/sandbox/clock/advance", json={"seconds": -3600})
    assert (back.status_code, back.json()["field"]) == (422, "seconds")
    assert _ok(public.get("/api/v1/sandbox/clock"))["offset_ms"] == clock["offset_ms"]
