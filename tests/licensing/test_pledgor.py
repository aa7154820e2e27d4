"""The pledgor as a party (docs/rules.md §The pledgor): its cases found by its credit code,
another's case 404, its consent given once and shown to the bank, its answer to a licence
back; and every new endpoint refusing a wrong value by name, writing nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.cases import services as cases
from market.clock import FrozenClock
from market.commands import SYSTEM, Context, unit_of_work
from market.errors import Conflict, Invalid, NotFound
from market.licensing import open_licence as ol
from market.licensing import pledgor
from market.licensing.contracts import NewContract, create_contract
from market.licensing.royalties import RoyaltyTerms
from tests.factories import csrf, make_org, make_token, sign_in
from tests.licensing.pledgor_scene import TERMS, declared, scene

AT = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # the client fixture's FrozenClock


async def test_the_pledgor_sees_its_cases_and_not_anothers(pool: asyncpg.Pool) -> None:
    mine = await scene(pool, AT)
    theirs = await scene(pool, AT)
    page = await pledgor.page_cases(pool, mine.pledgor, cursor=None, limit=10)
    assert [c.id for c in page.items] == [mine.case_id]
    assert page.items[0].outcome == "in_disposal" and page.items[0].surplus_fen == 0
    case = await pledgor.get_case(pool, mine.pledgor, mine.case_id, AT.date())
    assert [a.id for a in case.assets] == mine.asset_ids
    with pytest.raises(NotFound):
        await pledgor.get_case(pool, mine.pledgor, theirs.case_id, AT.date())
    with pytest.raises(NotFound):
        await (await mine.as_pledgor(pool, AT))(
            pledgor.give_licensing_consent, pledgor.CaseRef(case_id=theirs.case_id)
        )
    with pytest.raises(NotFound):
        await (await mine.as_pledgor(pool, AT))(
            ol.propose_open_licence,
            ol.ProposeOpenLicence(
                case_id=theirs.case_id, asset_id=theirs.asset_ids[0], terms=TERMS
            ),
        )
    assert await pool.fetchval("SELECT count(*) FROM licensing_consents") == 0


async def test_the_surplus_is_what_the_waterfall_owes_the_pledgor(pool: asyncpg.Pool) -> None:
    s = await scene(pool, AT)
    pledgor_row = await pool.fetchval(
        "SELECT l.pledgor_id FROM disposal_cases c JOIN loans l ON l.id = c.loan_id"
        " WHERE c.id = $1",
        s.case_id,
    )
    entry = await pool.fetchval(
        "INSERT INTO ledger_entries (source_kind, source_id, at) VALUES ('test', 'x', $1)"
        " RETURNING id",
        AT,
    )
    receipt = await pool.fetchval(
        "INSERT INTO receipts (case_id, kind, source, amount_fen, status, entry_id, received_at)"
        " VALUES ($1, 'auction', 'test:1', 500000, 'routed', $2, $3) RETURNING id",
        s.case_id,
        entry,
        AT,
    )
    for n, (amount, status) in enumerate([(12_345, "received"), (100, "reversed")]):
        await pool.execute(
            "INSERT INTO payouts (receipt_id, case_id, payee_kind, pledgor_id, amount_fen,"
            " reference, status, created_at) VALUES ($1, $2, 'pledgor', $3, $4, $5, $6, $7)",
            receipt,
            s.case_id,
            pledgor_row,
            amount,
            f"SUR-{n}",
            status,
            AT,
        )
    case = await pledgor.get_case(pool, s.pledgor, s.case_id, AT.date())
    assert case.surplus_fen == 12_345 and len(case.payouts) == 2
    page = await pledgor.page_cases(pool, s.pledgor, cursor=None, limit=10)
    assert page.items[0].surplus_fen == 12_345


async def test_consent_is_given_once_audited_and_shown_to_the_bank(pool: asyncpg.Pool) -> None:
    s = await scene(pool, AT)
    acts = [await s.as_pledgor(pool, AT) for _ in range(3)]
    results = await asyncio.gather(
        *(a(pledgor.give_licensing_consent, pledgor.CaseRef(case_id=s.case_id)) for a in acts),
        return_exceptions=True,
    )
    assert sum(isinstance(r, pledgor.ConsentOut) for r in results) == 1
    assert all(
        isinstance(r, Conflict) and r.code == "licensing_consent_given"
        for r in results
        if not isinstance(r, pledgor.ConsentOut)
    )
    bank_case = await cases.get_case(pool, s.bank, s.case_id)
    assert bank_case.licensing_consented_at == AT
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'licensing.consent'")
        == 2
    )  # the pledgor's chain and the bank's
    told = await pool.fetchrow(
        "SELECT recipient_org_id, payload FROM outbox WHERE event = 'licensing_consent_given'"
    )
    assert told["recipient_org_id"] == s.bank
    assert told["payload"]["case_id"] == s.case_id


async def _licence_back(pool: asyncpg.Pool, s: Any) -> int:
    """A contract awaiting the pledgor's acceptance (made here from an open licence: the
    offers that make licences back are built elsewhere)."""
    open_id = await declared(pool, AT, s, number=f"KF-{s.case_id}")
    async with unit_of_work(Context(pool=pool, clock=FrozenClock(AT)), SYSTEM) as uow:
        contract = await create_contract(
            uow,
            NewContract(
                case_id=s.case_id,
                bank_org_id=s.bank,
                licensee_org_id=s.pledgor,
                pledgor_org_id=s.pledgor,
                kind="non_exclusive",
                terms=RoyaltyTerms(
                    start=AT.date(), end=AT.date().replace(year=2030), royalty_rate_bp=500
                ),
                open_licence_id=open_id,
                needs_acceptance=True,
            ),
        )
    return contract.id


async def test_the_pledgor_accepts_a_licence_back(pool: asyncpg.Pool) -> None:
    s = await scene(pool, AT)
    contract_id = await _licence_back(pool, s)
    acts = [await s.as_pledgor(pool, AT) for _ in range(2)]
    results = await asyncio.gather(
        acts[0](
            pledgor.answer_licence_back,
            pledgor.AnswerContract(contract_id=contract_id, accept=True),
        ),
        acts[1](
            pledgor.answer_licence_back,
            pledgor.AnswerContract(contract_id=contract_id, accept=False, reason="太贵"),
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    row = await pool.fetchrow(
        "SELECT status, accepted_at, termination_reason FROM licence_contracts WHERE id = $1",
        contract_id,
    )
    assert row["status"] in ("active", "terminated")
    events = await pool.fetch(
        "SELECT event, recipient_org_id FROM outbox WHERE event LIKE 'licence_back_%'"
    )
    assert len(events) == 1 and events[0]["recipient_org_id"] == s.bank


async def test_a_declined_licence_back_ends_terminated_with_its_reason(
    pool: asyncpg.Pool,
) -> None:
    s = await scene(pool, AT)
    contract_id = await _licence_back(pool, s)
    act = await s.as_pledgor(pool, AT)
    with pytest.raises(Invalid) as no_reason:
        await act(
            pledgor.answer_licence_back,
            pledgor.AnswerContract(contract_id=contract_id, accept=False, reason="  "),
        )
    assert no_reason.value.field == "reason"
    out = await act(
        pledgor.answer_licence_back,
        pledgor.AnswerContract(contract_id=contract_id, accept=False, reason="费率过高"),
    )
    assert out.status == "terminated" and out.terminated_at == AT
    assert (
        await pool.fetchval(
            "SELECT termination_reason FROM licence_contracts WHERE id = $1", contract_id
        )
        == "费率过高"
    )
    told = await pool.fetchrow("SELECT payload FROM outbox WHERE event = 'licence_back_declined'")
    assert told["payload"]["reason"] == "费率过高"
    other = await scene(pool, AT)
    with pytest.raises(NotFound):
        await (await other.as_pledgor(pool, AT))(
            pledgor.answer_licence_back,
            pledgor.AnswerContract(contract_id=contract_id, accept=True),
        )


# --- the endpoints ---------------------------------------------------------------------------

TABLES = ("licensing_consents", "open_licences", "licence_contracts", "outbox", "audit_log")


async def _counts(pool: asyncpg.Pool) -> list[int]:
    return [await pool.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES]


async def test_the_api_and_pages_of_the_pledgor_and_another_case_is_404(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock.now())
    other = await scene(pool, clock.now())
    token = await make_token(pool, clock.now(), s.pledgor_user, ["pledgor:read", "pledgor:write"])
    auth = {"Authorization": f"Bearer {token}"}
    r = await client.get("/api/v1/pledgor/cases", headers=auth)
    assert r.status_code == 200 and [c["id"] for c in r.json()["items"]] == [s.case_id]
    r = await client.get(f"/api/v1/pledgor/cases/{other.case_id}", headers=auth)
    assert r.status_code == 404
    r = await client.post(f"/api/v1/pledgor/cases/{s.case_id}/licensing-consent", headers=auth)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/pledgor/cases/{s.case_id}/licensing-consent", headers=auth)
    assert r.status_code == 409
    await sign_in(client, s.pledgor_email)
    page = await client.get(f"/pledgor/cases/{s.case_id}")
    assert page.status_code == 200 and 'data-testid="consent-given"' in page.text
    assert (await client.get(f"/pledgor/cases/{other.case_id}")).status_code == 404
    listing = await client.get("/pledgor/cases")
    assert listing.status_code == 200
    assert f"/pledgor/cases/{s.case_id}" in listing.text
    assert f'/pledgor/cases/{other.case_id}"' not in listing.text
    form = {
        "_csrf_token": await csrf(client),
        "asset_id": str(s.asset_ids[0]),
        "royalty_rate": "3.5",
        "ends_on": "2030-12-31",
        "period": "yearly",
    }
    r = await client.post(
        f"/pledgor/cases/{s.case_id}/open-licences", data=form, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    terms = await pool.fetchval("SELECT terms FROM open_licences WHERE case_id = $1", s.case_id)
    assert terms["royalty_rate_bp"] == 350


async def test_every_new_endpoint_names_the_wrong_field_and_writes_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock.now())
    open_id = await declared(pool, clock.now(), s)
    contract_id = 1  # no such contract: the body is refused before it is looked up
    p_token = await make_token(pool, clock.now(), s.pledgor_user, ["pledgor:write"])
    b_token = await make_token(pool, clock.now(), s.bank_user, ["collateral:write"])
    _, buyer, _ = await make_org(pool, clock.now(), kind="buyer")
    t_token = await make_token(pool, clock.now(), buyer, ["bids:write"])
    before = await _counts(pool)
    bad: list[tuple[str, str, dict[str, Any], str, str]] = [
        (
            p_token,
            f"/api/v1/pledgor/cases/{s.case_id}/open-licences",
            {"asset_id": s.asset_ids[0], "terms": {"ends_on": "2030-12-31", "royalty_rate_bp": -1}},
            "terms.royalty_rate_bp",
            "",
        ),
        (
            p_token,
            f"/api/v1/pledgor/cases/{s.case_id}/open-licences",
            {"asset_id": s.asset_ids[0], "terms": {"ends_on": "2030-12-31", "kind": "exclusive"}},
            "terms.kind",
            "",
        ),
        (
            p_token,
            f"/api/v1/pledgor/cases/{s.case_id}/open-licences",
            {"asset_id": s.asset_ids[0], "terms": {"ends_on": "2045-01-01", "royalty_rate_bp": 1}},
            "terms.ends_on",
            "licence_term_past_patent_expiry",
        ),
        (
            p_token,
            f"/api/v1/pledgor/cases/{s.case_id}/open-licences",
            {"asset_id": "x", "terms": {"ends_on": "2030-12-31", "royalty_rate_bp": 1}},
            "asset_id",
            "",
        ),
        (
            p_token,
            f"/api/v1/pledgor/open-licences/{open_id}/declaration",
            {"cnipa_number": "", "declared_on": "2026-01-05"},
            "cnipa_number",
            "",
        ),
        (
            p_token,
            f"/api/v1/pledgor/open-licences/{open_id}/withdrawal",
            {"withdrawn_on": "2026-13-01"},
            "withdrawn_on",
            "",
        ),
        (
            p_token,
            f"/api/v1/pledgor/open-licences/{open_id}/withdrawal",
            {"withdrawn_on": "2099-01-01"},
            "withdrawn_on",
            "open_licence_date_in_future",
        ),
        (
            p_token,
            f"/api/v1/pledgor/licence-contracts/{contract_id}/answer",
            {"accept": "yes"},
            "accept",
            "",
        ),
        (
            p_token,
            f"/api/v1/pledgor/licence-contracts/{contract_id}/answer",
            {"accept": False, "reason": "x" * 1001},
            "reason",
            "",
        ),
    ]
    for token, url, body, field, code in bad:
        r = await client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert 400 <= r.status_code < 500, (url, r.text)
        problem = r.json()
        named = {problem.get("field")} | {e.get("field") for e in problem.get("errors", [])}
        assert field in named, (url, problem)
        if code:
            assert problem["code"] == code, problem
    # Body-less commands: an id that is not one is 404, and a wrong state 409.
    for token, url in [
        (b_token, "/api/v1/bank/open-licences/999999/consent"),
        (t_token, "/api/v1/open-licences/999999/takers"),
        (p_token, "/api/v1/pledgor/cases/999999/licensing-consent"),
    ]:
        r = await client.post(url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 404, (url, r.text)
    r = await client.post(
        f"/api/v1/bank/open-licences/{open_id}/consent",
        headers={"Authorization": f"Bearer {b_token}"},
    )
    assert r.status_code == 409
    r = await client.get("/api/v1/open-licences?status=proposed")
    assert r.status_code == 400 and "status" in r.text
    assert await _counts(pool) == before
    # And the public list shows the declared one.
    r = await client.get("/api/v1/open-licences")
    assert [o["id"] for o in r.json()["items"]] == [open_id]


async def test_the_pages_speak_english_too(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock.now())
    open_id = await declared(pool, clock.now(), s)
    client.cookies["ipx_lang"] = "en"
    await sign_in(client, s.pledgor_email)
    for url in (
        "/pledgor/cases",
        f"/pledgor/cases/{s.case_id}",
        "/open-licences",
        f"/open-licences/{open_id}",
    ):
        r = await client.get(url)
        assert r.status_code == 200, url
        assert "pledgor." not in r.text and "openlicence." not in r.text, url
    r = await client.get(f"/open-licences/{open_id}")
    assert "Annuity reduced while the open licence runs" in r.text
