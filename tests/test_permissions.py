"""Who may do what, read off the route table (market/accounts/permissions.py).

1. Every route declares exactly one permission, or is on the public list.
2. The tenancy matrix, generated from that table: for every route that takes an id, an
   organisation of every kind calls it with ids of another organisation's objects (the
   demo exchange's) — every answer is 403 or 404, and nothing in the database changed.
3. A pending organisation can create no API token and no webhook.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.testing import AsyncTestClient

from market.accounts.permissions import (
    ALL_KINDS,
    PERMISSIONS,
    PUBLIC,
    PUBLIC_PATHS,
    SCOPES_BY_KIND,
    Permission,
    permission_of,
)
from market.app import create_app
from market.clock import FrozenClock
from market.demo import DEMO_PASSWORD, seed_demo
from market.pools.reconciliation import ImportStatement, MatchLine, import_statement, match_line
from market.settings import Settings
from tests.factories import PASSWORD, act_as, csrf, make_org, make_token, sign_in


def _routes(app: Litestar) -> Iterator[tuple[str, str, HTTPRouteHandler]]:
    """(method, path, handler) of every route the app answers, but Litestar's own."""
    for route in app.routes:
        if route.path.startswith(PUBLIC_PATHS):
            continue
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or handler.http_methods == {"OPTIONS"}:
                continue
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                yield method, route.path, handler


def test_every_route_declares_a_permission_or_is_public(settings: Settings) -> None:
    # A sandbox answers every route production does, and its clock's (market/sandbox).
    app = create_app(msgspec.structs.replace(settings, mode="sandbox"))
    seen: set[str] = set()
    undeclared = []
    for method, path, handler in _routes(app):
        operation = str(handler.operation_id)
        seen.add(operation)
        permission = permission_of(handler)
        if operation in PUBLIC:
            assert permission is None, f"{operation} is public and declares {permission}"
        elif permission is None:
            undeclared.append(f"{method} {path} ({operation})")
    assert undeclared == [], "routes without a permission: " + ", ".join(undeclared)
    assert seen >= PUBLIC, f"public list names no route: {sorted(PUBLIC - seen)}"
    used = {permission_of(h) for _, _, h in _routes(app)} - {None}
    assert used == set(PERMISSIONS), f"unused permissions: {set(PERMISSIONS) - used}"


# --- the tenancy matrix ------------------------------------------------------------------

# Where an id in a path comes from: a path parameter's name → a query returning ids of
# the demo exchange's objects, none of them the caller's (a fresh organisation owns only
# itself, its user and its token).
ID_SOURCES: dict[str, str] = {
    "case_id": "SELECT id FROM disposal_cases",
    "loan_id": "SELECT id FROM loans",
    "asset_id": "SELECT id FROM ip_assets",
    "import_id": "SELECT id FROM collateral_imports",
    "document_id": "SELECT id FROM case_documents",
    "lot_id": "SELECT id FROM lots",
    "reference": "SELECT reference FROM lots",
    "token_id": "SELECT id FROM api_tokens",
    "endpoint_id": "SELECT id FROM webhook_endpoints",
    "interest_id": "SELECT id FROM saved_interests",
    "item_id": "SELECT id FROM inbox",
    "registration_id": "SELECT id FROM registrations",
    "pool_id": "SELECT id FROM pools",
    "claim_id": "SELECT id FROM compensation_claims",
    "statement_id": "SELECT id FROM statements",
    "line_id": "SELECT id FROM statement_lines",
    "shortfall_id": "SELECT id FROM payout_shortfalls",
    "receipt_id": "SELECT id FROM receipts",
    "delivery_id": "SELECT id FROM deliveries",
    "org_id": "SELECT id FROM organisations",
    "sale_id": "SELECT id FROM sales",
    "invitation_id": "SELECT id FROM invitations",
    "user_id": "SELECT id FROM users",
    # The demo makes no licence offer: an id that is none answers as another's would.
    "offer_id": "SELECT coalesce(max(id), 1) FROM licence_offers",
    "open_licence_id": "SELECT id FROM open_licences",
    "contract_id": "SELECT id FROM licence_contracts",
    "code": "SELECT code FROM sale_documents",
    "notice_id": "SELECT id FROM transfer_notices",
    "disposal_id": "SELECT id FROM agreed_disposals",
    # The demo exports no invoices: an id that is none answers as another's would.
    "export_id": "SELECT coalesce(max(id), 1) FROM invoice_exports",
    "pledgor_id": "SELECT id FROM pledgors",
    # The demo exports no payment file (the operator's alone): an id that is none.
    "file_id": "SELECT coalesce(max(id), 1) FROM payment_files",
}
# Path parameters that are no id: a value the route takes.
WORDS = {"decision": "approve", "action": "publish"}
# A well-formed body for the routes whose body is decoded before anything is looked up,
# so that what answers is the route's look-up of the other's object, not the decoding.
TERMS = {
    "start_price_fen": 100_000_00,
    "deposit_fen": 10_000_00,
    "bidding_starts_at": "2026-03-01T02:00:00Z",
    "bidding_ends_at": "2026-03-02T02:00:00Z",
}
ACCOUNT = {"account_name": "甲", "account_number": "12345678", "bank_name": "工商银行"}
JSON_BODIES: dict[str, Any] = {
    "propose_acquisition": {"amount_fen": 100, "consent_document_id": 1},
    "propose_equity_conversion": {
        "amount_fen": 100,
        "consent_document_id": 1,
        "appraisal_document_id": 1,
        "appraiser": "评估所",
        "report_no": "1",
        "appraised_fen": 100,
        "valued_on": "2026-01-01",
        "equity_percent": "1",
    },
    "object_to_agreed_disposal": {"reason": "价格偏低"},
    "answer_agreed_disposal": {"decision": "accept"},
    "set_pool_settlement_account": ACCOUNT,
    "set_pledgor_settlement_account": ACCOUNT,
    "place_bid": {"type": "bid", "amount_fen": 100_000_00},
    "record_case_valuation": {
        "method": "appraisal",
        "appraiser": "评估公司",
        "report_no": "R-1",
        "value_fen": 100_000_00,
        "valued_on": "2026-01-01",
    },
    "lot_action": {"action": "publish"},
    "create_lot": {"title": "拍品", "terms": TERMS},
    "update_lot": {"title": "拍品", "terms": TERMS, "version": 1},
    "bank_case_cost": {"kind": "appraisal", "amount_fen": 100},
    "bank_write_off": {"written_off_on": "2026-01-01"},
    "set_aside_statement_line": {"note": "非追偿款"},
    "settle_shortfall": {"line_id": 1},
    "write_off_shortfall": {"note": "手续费"},
    "pool_add_rule": {"rule": {}, "effective_from": "2026-01-01"},
    "pool_decide_claim": {"decision": "approve"},
    "set_user_role": {"role": "officer"},
    "register_for_lot": {"agreement_version": "2020-01"},
    "register_to_offer": {"reference": "x", "agreement_version": "2020-01"},
    "decide_offers": {"offer_ids": [], "reason": "维持成交"},
    "submit_offer": {
        "licence": {
            "kind": "non_exclusive",
            "field_of_use": "储能电池",
            "territory": "广东省",
            "term_start": "2027-01-01",
            "term_end": "2028-12-31",
            "royalty_rate_bp": 300,
        }
    },
    "propose_open_licence": {
        "asset_id": 1,
        "terms": {"ends_on": "2030-12-31", "royalty_rate_bp": 1},
    },
    "declare_open_licence": {"cnipa_number": "KF-1", "declared_on": "2026-01-01"},
    "withdraw_open_licence": {"withdrawn_on": "2026-01-01"},
    "answer_licence_back": {"accept": True},
    "report_royalty_sales": {"period": "2026Q1", "net_sales_fen": 100},
    "adjust_royalty": {"period": "2026Q1", "net_sales_fen": 100, "reason": "审计"},
    "terminate_licence_contract": {"reason": "逾期"},
    "record_recordal_cancellation": {
        "cancellation_number": "2026990000001-ZX",
        "cancelled_on": "2026-01-01",
    },
    "upload_pledge_release": {
        "kind": "pledge_release",
        "number": "ZX1",
        "issued_on": "2026-01-01",
        "filename": "a.pdf",
        "content": "JVBERi0xLjcKJSVFT0YK",
    },
    "upload_transfer_recordal": {
        "kind": "patent_recordal",
        "number": "BG1",
        "issued_on": "2026-01-01",
        "filename": "a.pdf",
        "content": "JVBERi0xLjcKJSVFT0YK",
    },
    "record_licence_recordal": {
        "recordal_number": "2026990000001",
        "recorded_on": "2026-01-01",
        "filename": "a.pdf",
        "content": "JVBERi0xLjcKJSVFT0YK",
    },
}
# Routes that act on another organisation's object by design: a declared open licence is
# offered to every approved buyer and acquirer (专利法 art. 51), so taking the demo's is
# no leak for those kinds (every other kind is still refused).
OPEN_TO_EVERY_FIRM = {"take_open_licence", "web_take_open_licence"}
FORMS: dict[str, dict[str, str]] = {
    "web_bank_pools_write_off": {"written_off_on": "2026-01-01"},
    "web_reconciliation_set_aside": {"note": "非追偿款"},
    "web_reconciliation_write_off_shortfall": {"note": "手续费"},
    "web_pool_decide_claim": {"decision": "approve"},
    "web_set_user_role": {"role": "officer"},
    "web_object_to_agreed_disposal": {"reason": "价格偏低"},
    "web_answer_agreed_disposal": {"decision": "accept"},
    "web_propose_acquisition": {"amount": "1", "consent": "1"},
}
FILES = {"upload_case_document": {"file": ("a.pdf", b"%PDF-1.7\n%%EOF\n", "application/pdf")}}
PARAM = re.compile(r"\{(\w+):\w+\}")


async def _digest(pool: asyncpg.Pool) -> dict[str, str]:
    """Every table's content, as one hash each (a token's last use is bookkeeping)."""
    tables = [
        r["tablename"]
        for r in await pool.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    ]
    digest = {}
    for table in tables:
        row = "(t)::text" if table != "api_tokens" else "(t.id, t.scopes, t.revoked_at)::text"
        digest[table] = await pool.fetchval(
            f"SELECT md5(coalesce(string_agg({row}, '|' ORDER BY {row}), '')) FROM \"{table}\" t"
        )
    return digest


async def _owned_by_others(pool: asyncpg.Pool, settings: Settings, clock: FrozenClock) -> None:
    """Objects of every kind the demo does not make, for its organisations: a token, a
    webhook, an interest, a delivered notice in an inbox, a reconciled statement."""
    bank = await pool.fetchrow("SELECT u.id, u.org_id FROM users u WHERE email = 'bank@ipx.demo'")
    buyer = await pool.fetchrow("SELECT u.id, u.org_id FROM users u WHERE email = 'buyer@ipx.demo'")
    manager = await pool.fetchval("SELECT id FROM users WHERE email = 'pool@ipx.demo'")
    assert bank and buyer and manager
    await make_token(pool, clock.now(), bank["id"], ["collateral:read"])
    # The demo's buyer holds a licence of the demo bank's patent (an open licence taken).
    assert await pool.fetchval(
        "SELECT count(*) FROM licence_contracts WHERE licensee_org_id = $1", buyer["org_id"]
    )
    statement = (settings.data_dir / "demo" / "demo-statement.csv").read_bytes()
    act = await act_as(pool, datetime.now(UTC), manager)  # the demo's statement is of today
    await act(import_statement, ImportStatement(data=statement, filename="demo.csv"))
    # Its line ¥20.00 short of its payout, matched for bank charges: a shortfall.
    short = await pool.fetchrow(
        "SELECT id, candidate_id FROM statement_lines WHERE status = 'amount_mismatch'"
    )
    assert short is not None
    await act(
        match_line,
        MatchLine(
            line_id=short["id"], payout_id=short["candidate_id"], short_reason="bank_charges"
        ),
    )
    notice = await pool.fetchval(
        "SELECT id FROM outbox WHERE recipient_user_id = $1 ORDER BY id LIMIT 1", buyer["id"]
    )
    assert notice is not None
    await pool.execute(
        "INSERT INTO inbox (user_id, outbox_id, event, title, body, created_at) "
        "SELECT $1, id, event, 'x', 'x', now() FROM outbox WHERE id = $2",
        buyer["id"],
        notice,
    )
    await pool.execute(
        "INSERT INTO deliveries (outbox_id, channel, target, status, created_at) "
        "VALUES ($1, 'inbox', $2, 'failed', now())",
        notice,
        str(buyer["id"]),
    )
    await pool.execute(
        "INSERT INTO webhook_endpoints (org_id, url, format, secret, created_at) "
        "VALUES ($1, 'https://bank.example.cn/hook', 'json', 'x', now())",
        bank["org_id"],
    )
    await pool.execute(
        "INSERT INTO saved_interests (user_id, keywords, created_at) VALUES ($1, '{专利}', now())",
        buyer["id"],
    )
    # An acquisition at an agreed price the demo bank proposed, in its objection window.
    await pool.execute(
        "INSERT INTO agreed_disposals (case_id, bank_org_id, kind, taker_org_id, amount_fen,"
        " floor_fen, consent_document_id, status, objection_until, proposed_by, proposed_at)"
        " SELECT d.case_id, $1, 'acquisition', $1, 100, 100, d.id, 'pending',"
        " now() + interval '10 days', $2, now()"
        " FROM case_documents d JOIN disposal_cases c ON c.id = d.case_id"
        " WHERE c.bank_org_id = $1 ORDER BY d.id LIMIT 1",
        bank["org_id"],
        bank["id"],
    )


def _cases(app: Litestar) -> Iterator[tuple[str, str, str, Permission]]:
    for method, path, handler in _routes(app):
        permission = permission_of(handler)
        if PARAM.search(path) and permission is not None:
            yield method, path, str(handler.operation_id), permission


async def test_no_organisation_reaches_another_organisations_objects(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> None:
    await seed_demo(settings, force=True)
    await _owned_by_others(pool, settings, clock)
    ids: dict[str, Any] = {}
    for name, query in ID_SOURCES.items():
        ids[name] = await pool.fetchval(query + " ORDER BY 1 LIMIT 1")
    ids |= WORDS
    app = create_app(settings, clock)
    cases = list(_cases(app))
    missing = sorted(
        {p for _, path, _, _ in cases for p in PARAM.findall(path) if ids.get(p) is None}
    )
    assert missing == [], f"no object to try for {missing}"
    # The callers: a fresh approved organisation of every kind, signed in (pages) and with
    # a token holding every scope its kind may hold (API).
    callers: dict[str, tuple[str, str]] = {}
    for kind in sorted(ALL_KINDS):
        _, user, email = await make_org(pool, clock.now(), kind=kind)
        callers[kind] = (
            email,
            await make_token(pool, clock.now(), user, sorted(SCOPES_BY_KIND[kind])),
        )
    # And the demo's second bank, onboarded as a real one is (market/demo.py), against the
    # first bank's objects: two banks, each other's objects 404.
    second = await pool.fetchval("SELECT id FROM users WHERE email = 'bank2@ipx.demo'")
    assert (
        await pool.fetchval("SELECT count(DISTINCT bank_org_id) FROM disposal_cases") == 1
        and second
    )
    callers["bank (second)"] = (
        "bank2@ipx.demo",
        await make_token(pool, clock.now(), second, sorted(SCOPES_BY_KIND["bank"])),
    )
    before = await _digest(pool)
    leaks: list[str] = []
    tried = 0
    for kind, (email, token) in callers.items():
        async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as client:
            await sign_in(client, email, DEMO_PASSWORD if email.endswith("@ipx.demo") else PASSWORD)
            form = {"_csrf_token": await csrf(client)}
            for method, path, operation, permission in cases:
                if permission.exchange_wide and kind in permission.kinds:
                    continue  # the operator acts on everyone's objects by design
                if operation in OPEN_TO_EVERY_FIRM and kind in permission.kinds:
                    continue
                url = PARAM.sub(lambda m: str(ids[m.group(1)]), path)
                body: dict[str, Any] = {}
                if operation in FILES:
                    body = {"files": FILES[operation], "data": {"item": "valuation_report"}}
                elif path.startswith("/api/") and method in ("POST", "PUT", "PATCH"):
                    body = {"json": JSON_BODIES.get(operation, {})}
                elif method == "POST":
                    body = {"data": {**form, **FORMS.get(operation, {})}}
                if path.startswith("/api/"):
                    headers = {"Authorization": f"Bearer {token}"}
                    r = await client.request(method, url, headers=headers, **body)
                else:
                    r = await client.request(method, url, follow_redirects=False, **body)
                tried += 1
                if r.status_code not in (403, 404):
                    leaks.append(f"{kind}: {method} {url} → {r.status_code}")
    assert tried > 100
    assert leaks == [], "\n".join(leaks)
    assert await _digest(pool) == before


# --- pending organisations ---------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "rejected", "suspended"])
async def test_an_organisation_not_approved_makes_no_token_and_no_webhook(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, status: str
) -> None:
    _, _, email = await make_org(pool, clock.now(), kind="buyer", status=status)
    await sign_in(client, email)
    token = await csrf(client)
    r = await client.post(
        "/account/tokens", data={"name": "x", "scopes": "bids:write", "_csrf_token": token}
    )
    assert r.status_code == 403 and "尚未通过交易所审核" in r.text
    r = await client.post(
        "/account/webhooks",
        data={"url": "https://example.cn/hook", "format": "json", "_csrf_token": token},
    )
    assert r.status_code == 403
    assert await pool.fetchval("SELECT count(*) FROM api_tokens") == 0
    assert await pool.fetchval("SELECT count(*) FROM webhook_endpoints") == 0
    page = await client.get("/account")
    assert page.status_code == 200 and 'action="/account/tokens"' not in page.text


def test_the_documented_table_is_the_table() -> None:
    from market.accounts.permissions import table
    from market.settings import ROOT

    assert table() in (ROOT / "docs" / "permissions.md").read_text(encoding="utf-8")


# --- the lists: nobody else's rows ---------------------------------------------------------


def _lists(app: Litestar) -> Iterator[tuple[str, Permission]]:
    """Every paged API list (market/paging.py): GET, no id in its path, answering a Page."""
    for method, path, handler in _routes(app):
        permission = permission_of(handler)
        returns = str(handler.parsed_fn_signature.return_type.annotation)
        if (
            method == "GET"
            and path.startswith("/api/")
            and not PARAM.search(path)
            and permission is not None
            and "Page[" in returns
        ):
            yield path, permission


async def test_no_list_shows_another_organisations_objects(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> None:
    await seed_demo(settings, force=True)
    await _owned_by_others(pool, settings, clock)
    app = create_app(settings, clock)
    lists = list(_lists(app))
    assert len(lists) >= 14
    leaks = []
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as client:
        for kind in sorted(ALL_KINDS):
            _, user, _ = await make_org(pool, clock.now(), kind=kind)
            token = await make_token(pool, clock.now(), user, sorted(SCOPES_BY_KIND[kind]))
            own_token = await pool.fetchval("SELECT max(id) FROM api_tokens")
            for path, permission in lists:
                if kind not in permission.kinds or permission.exchange_wide:
                    continue
                r = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200, (kind, path, r.text)
                # A fresh organisation owns nothing but its own token.
                own = [own_token] if path == "/api/v1/tokens" else []
                if [item["id"] for item in r.json()["items"]] != own:
                    leaks.append(f"{kind}: {path} → {r.json()['items']}")
    assert leaks == [], "\n".join(leaks)
