"""Open licences (docs/rules.md §Open licence): proposed by the pledgor, consented by the
bank, declared, taken by any approved firm — each with its own contract and schedule, one
per firm even under concurrent clicks — and withdrawn without touching the contracts made.
An exclusive or sole licence is refused while one stands."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import asyncpg
import msgspec
import pytest

from market.errors import Conflict, Invalid, NotFound
from market.licensing import open_licence as ol
from market.licensing import payments, reports
from market.licensing.royalties import periods
from tests.factories import act_as, make_org
from tests.licensing.pledgor_scene import TERMS, declared, scene

AT = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


async def test_three_firms_take_one_open_licence_each_with_its_own_contract(
    pool: asyncpg.Pool,
) -> None:
    s = await scene(pool, AT)
    open_id = await declared(pool, AT, s)
    contracts = []
    for n in range(3):
        firm = await make_org(pool, AT, kind="buyer" if n < 2 else "acquirer")
        at = AT + timedelta(days=40 * n)
        taker = await act_as(pool, at, firm[1])
        contracts.append(
            await taker(ol.take_open_licence, ol.OpenLicenceRef(open_licence_id=open_id))
        )
    assert len({c.reference for c in contracts}) == 3
    for n, c in enumerate(contracts):
        assert c.kind == "non_exclusive" and c.status == "active" and c.open_licence_id == open_id
        assert c.terms.start == (AT + timedelta(days=40 * n)).date()
        assert c.terms.end == TERMS.ends_on
        assert (c.terms.royalty_rate_bp, c.terms.minimum_annual_fen) == (300, 5_000_000)
    # Each schedule starts on its own taking day: the first periods differ.
    firsts = [periods(c.terms)[0].start for c in contracts]
    assert firsts == [date(2026, 6, 1), date(2026, 7, 11), date(2026, 8, 20)]
    # A fourth firm taking twice has one contract.
    fourth = await make_org(pool, AT, kind="buyer")
    taker = await act_as(pool, AT, fourth[1])
    first = await taker(ol.take_open_licence, ol.OpenLicenceRef(open_licence_id=open_id))
    with pytest.raises(Conflict) as again:
        await taker(ol.take_open_licence, ol.OpenLicenceRef(open_licence_id=open_id))
    assert again.value.code == "open_licence_taken"
    assert again.value.params["reference"] == first.reference
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM licence_contracts WHERE open_licence_id = $1", open_id
        )
        == 4
    )
    # The bank and the pledgor hear of every taking.
    told = await pool.fetch(
        "SELECT recipient_org_id FROM outbox WHERE event = 'open_licence_taken' ORDER BY id"
    )
    assert [r["recipient_org_id"] for r in told] == [s.bank, s.pledgor] * 4
    out = await ol.get_public(pool, open_id, AT.date())
    assert out.takers == 4 and out.open_to_takers


async def test_concurrent_takes_by_one_firm_make_one_contract(pool: asyncpg.Pool) -> None:
    s = await scene(pool, AT)
    open_id = await declared(pool, AT, s)
    _, user, _ = await make_org(pool, AT, kind="buyer")
    takers = [await act_as(pool, AT, user) for _ in range(6)]
    results = await asyncio.gather(
        *(t(ol.take_open_licence, ol.OpenLicenceRef(open_licence_id=open_id)) for t in takers),
        return_exceptions=True,
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(made) == 1 and len(refused) == 5, results
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM licence_contracts WHERE open_licence_id = $1", open_id
        )
        == 1
    )


async def test_withdrawal_stops_new_takers_and_keeps_the_contracts(pool: asyncpg.Pool) -> None:
    s = await scene(pool, AT)
    open_id = await declared(pool, AT, s)
    _, early, _ = await make_org(pool, AT, kind="buyer")
    kept = await (await act_as(pool, AT, early))(
        ol.take_open_licence, ol.OpenLicenceRef(open_licence_id=open_id)
    )
    later = AT + timedelta(days=30)
    withdrawn = await (await s.as_pledgor(pool, later))(
        ol.withdraw_open_licence,
        ol.WithdrawOpenLicence(open_licence_id=open_id, withdrawn_on=later.date()),
    )
    assert withdrawn.status == "withdrawn" and withdrawn.withdrawn_on == later.date()
    assert not withdrawn.annuity_reduced and not withdrawn.open_to_takers
    _, late, _ = await make_org(pool, AT, kind="buyer")
    with pytest.raises(Conflict) as refused:
        await (await act_as(pool, later, late))(
            ol.take_open_licence, ol.OpenLicenceRef(open_licence_id=open_id)
        )
    assert refused.value.code == "open_licence_not_declared"
    status = await pool.fetchval("SELECT status FROM licence_contracts WHERE id = $1", kept.id)
    assert status == "active"  # 专利法 art. 50: licences already granted stand
    # Withdrawn, the patent may be opened again.
    again = await (await s.as_pledgor(pool, later))(
        ol.propose_open_licence,
        ol.ProposeOpenLicence(case_id=s.case_id, asset_id=s.asset_ids[0], terms=TERMS),
    )
    assert again.status == "proposed"


async def test_exclusive_and_sole_are_refused_while_the_declaration_stands(
    pool: asyncpg.Pool,
) -> None:
    s = await scene(pool, AT, assets=2)
    async with pool.acquire() as conn:
        assert not await ol.open_licence_standing(conn, s.asset_ids)
    open_id = await declared(pool, AT, s)
    async with pool.acquire() as conn:
        assert await ol.open_licence_standing(conn, s.asset_ids)
        assert await ol.open_licence_standing(conn, s.asset_ids[:1])
        assert not await ol.open_licence_standing(conn, s.asset_ids[1:])
        for kind in ("exclusive", "sole"):
            with pytest.raises(Conflict) as refused:
                await ol.refuse_exclusive_while_open(conn, s.asset_ids, kind)
            assert refused.value.code == "open_licence_standing"
            assert refused.value.field == "kind"
        await ol.refuse_exclusive_while_open(conn, s.asset_ids, "non_exclusive")
    await (await s.as_pledgor(pool, AT))(
        ol.withdraw_open_licence,
        ol.WithdrawOpenLicence(open_licence_id=open_id, withdrawn_on=AT.date()),
    )
    async with pool.acquire() as conn:
        assert not await ol.open_licence_standing(conn, s.asset_ids)
        await ol.refuse_exclusive_while_open(conn, s.asset_ids, "exclusive")


async def test_the_steps_in_order_and_the_bank_must_consent(pool: asyncpg.Pool) -> None:
    s = await scene(pool, AT)
    pledgor, bank = await s.as_pledgor(pool, AT), await s.as_bank(pool, AT)
    proposed = await pledgor(
        ol.propose_open_licence,
        ol.ProposeOpenLicence(case_id=s.case_id, asset_id=s.asset_ids[0], terms=TERMS),
    )
    with pytest.raises(Conflict) as twice:
        await pledgor(
            ol.propose_open_licence,
            ol.ProposeOpenLicence(case_id=s.case_id, asset_id=s.asset_ids[0], terms=TERMS),
        )
    assert twice.value.code == "open_licence_exists"
    declaration = ol.DeclareOpenLicence(
        open_licence_id=proposed.id, cnipa_number="KF-9", declared_on=AT.date()
    )
    with pytest.raises(Conflict) as early:
        await pledgor(ol.declare_open_licence, declaration)
    assert early.value.code == "open_licence_needs_bank_consent"
    # Not yet declared: nobody may take it, and the public does not see it.
    _, buyer, _ = await make_org(pool, AT, kind="buyer")
    with pytest.raises(NotFound):
        await (await act_as(pool, AT, buyer))(
            ol.take_open_licence, ol.OpenLicenceRef(open_licence_id=proposed.id)
        )
    with pytest.raises(NotFound):
        await ol.get_public(pool, proposed.id, AT.date())
    # Another bank cannot consent for this one.
    _, other_bank, _ = await make_org(pool, AT, kind="bank")
    with pytest.raises(NotFound):
        await (await act_as(pool, AT, other_bank))(
            ol.consent_open_licence, ol.OpenLicenceRef(open_licence_id=proposed.id)
        )
    await bank(ol.consent_open_licence, ol.OpenLicenceRef(open_licence_id=proposed.id))
    done = await pledgor(ol.declare_open_licence, declaration)
    assert done.cnipa_number == "KF-9" and done.declared_on == AT.date()
    assert done.expiry == date(2039, 2, 28)
    actions = await pool.fetch(
        "SELECT action, chain_org_id FROM audit_log WHERE object_kind = 'open_licence' ORDER BY id"
    )
    assert {(r["action"], r["chain_org_id"]) for r in actions} == {
        ("open_licence.propose", s.pledgor),
        ("open_licence.propose", s.bank),
        ("open_licence.bank_consent", s.bank),
        ("open_licence.declare", s.pledgor),
        ("open_licence.declare", s.bank),
    }


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"ends_on": date(2040, 1, 1)}, "licence_term_past_patent_expiry", "terms.ends_on"),
        ({"ends_on": date(2026, 5, 1)}, "open_licence_ends_before_today", "terms.ends_on"),
        ({"royalty_rate_bp": 0, "minimum_annual_fen": 0}, "royalty_nothing_due", None),
        ({"royalty_rate_bp": 10_001}, None, "terms.royalty_rate_bp"),
    ],
)
async def test_published_terms_are_checked(
    pool: asyncpg.Pool, change: dict[str, object], code: str | None, field: str | None
) -> None:
    s = await scene(pool, AT)
    terms = msgspec.structs.replace(TERMS, **change)
    with pytest.raises(Invalid) as refused:
        await (await s.as_pledgor(pool, AT))(
            ol.propose_open_licence,
            ol.ProposeOpenLicence(case_id=s.case_id, asset_id=s.asset_ids[0], terms=terms),
        )
    if code:
        assert refused.value.code == code
    assert refused.value.field == (field or "terms.royalty_rate_bp")
    assert await pool.fetchval("SELECT count(*) FROM open_licences") == 0


async def test_three_takers_report_and_pay_on_the_published_terms_each_receipt_routed_once(
    pool: asyncpg.Pool,
) -> None:
    """The published terms (3 % of net sales, a minimum of CNY 50,000 a year, pro-rated by
    days for a first short year) make each taker's 2026 royalty; each payment is one receipt
    routed through the waterfall, and a second record of it routes nothing."""
    s = await scene(pool, AT)
    open_id = await declared(pool, AT, s)
    _, operator_user, _ = await make_org(pool, AT, kind="operator")
    operator = await act_as(pool, datetime(2027, 1, 20, 2, tzinfo=UTC), operator_user)
    # (taking day, 2026 net sales in fen, the royalty by hand)
    takers = [
        # 3 % × 5,000,000.00 = 150,000.00, above the minimum
        (AT, 500_000_000, 15_000_000),
        # 3 % × 1,000,000.00 = 30,000.00; minimum 50,000 × 174/365 = 23,835.62: the royalty
        (AT + timedelta(days=40), 100_000_000, 3_000_000),
        # 3 % × 100,000.00 = 3,000.00; minimum 50,000 × 134/365 = 18,356.164… → 18,356.16
        (AT + timedelta(days=80), 10_000_000, 1_835_616),
    ]
    contracts = []
    for n, (taken, sales, _due) in enumerate(takers):
        firm = await make_org(pool, AT, kind="buyer" if n < 2 else "acquirer")
        taker = await act_as(pool, taken, firm[1])
        contract = await taker(ol.take_open_licence, ol.OpenLicenceRef(open_licence_id=open_id))
        reporter = await act_as(pool, datetime(2027, 1, 5, 2, tzinfo=UTC), firm[1])
        await reporter(
            reports.report_sales,
            reports.ReportSales(
                contract_id=contract.id,
                lines=(reports.SalesIn(period="2026", net_sales_fen=sales),),
            ),
        )
        contracts.append(contract)
    for contract, (_, _, due) in zip(contracts, takers, strict=True):
        got = await operator(
            payments.record_royalty_payment,
            payments.RecordPayment(
                contract_id=contract.id, period="2026", amount_fen=due, paid_on=date(2027, 1, 20)
            ),
        )
        assert (got.amount_fen, got.interest_fen) == (due, 0)
        with pytest.raises(Conflict) as again:
            await operator(
                payments.record_royalty_payment,
                payments.RecordPayment(
                    contract_id=contract.id,
                    period="2026",
                    amount_fen=due,
                    paid_on=date(2027, 1, 20),
                ),
            )
        assert again.value.code == "royalty_paid_already"
    receipts = await pool.fetch(
        "SELECT r.source, r.amount_fen, r.kind, (SELECT sum(p.amount_fen) FROM payouts p"
        " WHERE p.receipt_id = r.id) AS paid_out FROM receipts r ORDER BY r.id"
    )
    assert [r["source"] for r in receipts] == [f"royalty:{c.id}:2026" for c in contracts]
    assert [r["amount_fen"] for r in receipts] == [due for _, _, due in takers]
    assert all(r["kind"] == "royalty" for r in receipts)
    # Everything that came in goes out again, once: to the bank's claim, the pledgor last.
    assert all(r["paid_out"] == r["amount_fen"] for r in receipts)
    assert await pool.fetchval("SELECT count(*) FROM royalty_payments") == 3
