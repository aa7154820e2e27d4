"""The rules a lot's floor and publication answer to, tried the ways round them: the
governing valuation and its objection window, lapsed assets, the lot's own assets'
valuation (docs/rules.md §Disposal cases and valuation, §Lot terms, §Lot lifecycle)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.cases import services as cases
from market.cases.checklist import required_items
from market.cases.models import (
    AppraisalIn,
    InternalIn,
    OpenCase,
    RecordValuation,
    Scores,
    UploadDocument,
)
from market.cases.valuation import INDICATORS
from market.clock import FrozenClock
from market.commands import Act
from market.errors import Conflict, Invalid
from market.lots import services as lots
from market.lots.lifecycle import IllegalTransition
from market.lots.models import DraftLot, LotDraft, LotUpdate, PublishLot, UpdateLot
from market.lots.terms import TermsInput
from market.problems import describe
from market.settings import Settings
from tests.cases.factories import bank_act, make_loan
from tests.factories import act_as, make_org
from tests.lots.factories import make_case

TODAY = date(2026, 1, 5)  # the frozen clock's date in China
PDF = b"%PDF-1.4 disclosure"


def _terms(clock: FrozenClock, start_fen: int) -> TermsInput:
    starts = clock.now() + timedelta(days=40)
    return TermsInput(
        start_price_fen=start_fen,
        deposit_fen=start_fen // 10,
        bidding_starts_at=starts,
        bidding_ends_at=starts + timedelta(days=1),
    )


async def _disclosed_case(pool: asyncpg.Pool, clock: FrozenClock, **loan: Any) -> tuple[Act, Any]:
    """A bank's open case on a defaulted loan, every disclosure document filed."""
    bank, _, act = await bank_act(pool, clock)
    made = await make_loan(pool, clock.now(), bank, **loan)
    case = await act(cases.open_case, OpenCase(loan_id=made.loan_id))
    for item in required_items({a.kind for a in case.assets}):
        await act(
            cases.upload_document,
            UploadDocument(case_id=case.id, item=item, filename=f"{item}.pdf", content=PDF),
        )
    return act, case


async def test_rule_governing_valuation_is_the_valid_appraisal_and_its_objection_window_holds_publication(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """An internal valuation recorded after a paid appraisal does not replace it: the floor
    stays 70 % of the appraisal, and no lot publishes inside the objection window."""
    act, case = await _disclosed_case(pool, clock)
    appraisal = AppraisalIn(
        appraiser="四川天健资产评估有限公司",
        report_no="川天健评报字〔2026〕第 0105 号",
        value_fen=4_000_000_00,
        valued_on=TODAY,
    )
    await act(cases.record_valuation, RecordValuation(case_id=case.id, valuation=appraisal))
    clock.advance(hours=1)
    internal = InternalIn(
        base_value_fen=2_000_000_00,
        basis="成本法",
        scores=Scores(**dict.fromkeys(INDICATORS, 85)),  # → CNY 2.83 m
    )
    with pytest.raises(Conflict) as err:
        await act(cases.record_valuation, RecordValuation(case_id=case.id, valuation=internal))
    assert (err.value.code, err.value.field) == ("appraisal_governs", "method")
    assert err.value.params == {"value_fen": 4_000_000_00, "valid_until": "2027-01-05"}
    policy = lots.policy_for(settings)
    low = LotDraft(title="专利包", terms=_terms(clock, 2_000_000_00))
    with pytest.raises(Invalid) as floor:
        await act(lots.draft_lot, DraftLot(case_id=case.id, lot=low, policy=policy))
    assert (floor.value.code, floor.value.params["floor_fen"]) == (
        "start_below_valuation_floor",
        2_800_000_00,
    )
    ok = LotDraft(title="专利包", terms=_terms(clock, 2_800_000_00))
    lot = await act(lots.draft_lot, DraftLot(case_id=case.id, lot=ok, policy=policy))
    # the objection window runs to 2026-01-10 (5 days from the recording, China dates)
    clock.set(clock.now().replace(day=10, hour=15))  # 23:00 on the 10th in China
    with pytest.raises(IllegalTransition) as early:
        await act(lots.publish_lot, PublishLot(lot_id=lot.id, policy=policy))
    assert [p.code for p in early.value.problems or []] == ["lot_objection_window_open"]
    clock.advance(hours=2)  # 01:00 on the 11th in China
    published = await act(lots.publish_lot, PublishLot(lot_id=lot.id, policy=policy))
    assert published.status == "announced" and published.valuation_fen == 4_000_000_00


async def test_rule_lapsed_asset_blocks_publication_and_the_page_dates_the_lapse(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """A lot carrying a lapsed patent is not published — refused naming the patent and
    the day it lapsed, not a warning; a lot whose patent lapses once it is public shows
    the day of the lapse, not the day monitoring noticed it (docs/rules.md §Lot lifecycle)."""
    org, user, _ = await make_org(pool, clock.now(), kind="bank")
    case_id, (good, bad) = await make_case(pool, clock.now(), org, user, assets=2)
    bad_number = await pool.fetchval("SELECT number FROM ip_assets WHERE id = $1", bad)
    # the annuity due on 2025-04-01 was never paid: more than 6 months on, the patent lapsed
    await pool.execute(
        "UPDATE ip_assets SET annuity_paid_through = '2025-03-31' WHERE id = $1", bad
    )
    act = await act_as(pool, clock, user)
    policy = lots.policy_for(settings)
    draft = LotDraft(title="专利包", terms=_terms(clock, 700_000_00))
    lot = await act(lots.draft_lot, DraftLot(case_id=case_id, lot=draft, policy=policy))
    with pytest.raises(IllegalTransition) as err:
        await act(lots.publish_lot, PublishLot(lot_id=lot.id, policy=policy))
    [problem] = err.value.problems or []
    assert (problem.code, problem.field) == ("lot_asset_lapsed", "asset_ids")
    assert problem.params == {"asset_number": bad_number, "lapsed_on": "2025-04-01"}
    assert bad_number in describe("zh", problem.code, problem.params)
    assert "2025-04-01" in describe("en", problem.code, problem.params)
    assert await pool.fetchval("SELECT status FROM lots WHERE id = $1", lot.id) == "draft"

    # withdrawn from the lot, the other patent alone publishes; then it lapses too, and
    # monitoring notices two days later
    alone = LotUpdate(
        title="专利",
        asset_ids=[good],
        valuation_fen=500_000_00,
        terms=_terms(clock, 350_000_00),
        version=lot.version,
    )
    await act(lots.update_lot, UpdateLot(lot_id=lot.id, lot=alone, policy=policy))
    published = await act(lots.publish_lot, PublishLot(lot_id=lot.id, policy=policy))
    await pool.execute(
        "UPDATE ip_assets SET legal_status = 'lapsed', annuity_paid_through = '2025-12-31'"
        " WHERE id = $1",
        good,
    )
    clock.advance(days=2)
    await pool.execute(
        "INSERT INTO monitoring_flags (bank_org_id, asset_id, kind, detail, raised_at)"
        " VALUES ($1, $2, 'lapsed', '{}', $3)",
        org,
        good,
        clock.now(),
    )
    page = await client.get(f"/lots/{published.reference}")
    assert page.status_code == 200
    warnings = page.text[page.text.index('data-testid="warnings"') :]
    warnings = warnings[: warnings.index("</section>")]
    assert "（2026-01-01 起）" in warnings and "2026-01-07" not in warnings


async def test_rule_floor_and_shown_valuation_are_the_lots_own_assets(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """A lot carrying some of the case's assets answers to those assets' part of the
    valuation — the appraisal's per-asset values — for its 70 % floor and on its public
    page; the bank cannot state another (docs/rules.md §Lot terms)."""
    act, case = await _disclosed_case(pool, clock)
    big, small = sorted(a.id for a in case.assets)
    appraisal = AppraisalIn(
        appraiser="四川天健资产评估有限公司",
        report_no="川天健评报字〔2026〕第 0106 号",
        value_fen=4_000_000_00,
        valued_on=TODAY,
        asset_values={big: 3_200_000_00, small: 800_000_00},
    )
    await act(cases.record_valuation, RecordValuation(case_id=case.id, valuation=appraisal))
    policy = lots.policy_for(settings)

    def draft(start_fen: int, valuation_fen: int | None = None) -> DraftLot:
        lot = LotDraft(
            title="一种电池热管理装置",
            asset_ids=[small],
            valuation_fen=valuation_fen,
            terms=_terms(clock, start_fen),
        )
        return DraftLot(case_id=case.id, lot=lot, policy=policy)

    with pytest.raises(Invalid) as err:  # 40 % of the small patent's value
        await act(lots.draft_lot, draft(320_000_00, valuation_fen=4_000_000_00))
    assert (err.value.code, err.value.field) == ("lot_valuation_is_assets_share", "valuation_fen")
    with pytest.raises(Invalid) as err:
        await act(lots.draft_lot, draft(559_999_99))
    assert (err.value.code, err.value.params["floor_fen"]) == (
        "start_below_valuation_floor",
        560_000_00,
    )
    lot = await act(lots.draft_lot, draft(560_000_00))
    assert lot.valuation_fen == 800_000_00
    clock.advance(days=6)  # past the objection window
    published = await act(lots.publish_lot, PublishLot(lot_id=lot.id, policy=policy))
    page = await client.get(f"/lots/{published.reference}")
    shown = page.text[page.text.index('data-testid="valuation"') :]
    shown = shown[: shown.index("</section>")]
    assert "¥800,000.00" in shown and "¥4,000,000.00" not in shown
    api = await client.get(f"/api/v1/lots/{published.reference}")
    assert api.status_code == 200 and api.json()["valuation"]["value_fen"] == 800_000_00
