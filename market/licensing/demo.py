"""The demo's pledgor in licensing, for `market seed-demo`: the borrower of one of the demo
bank's defaulted loans (linked by its credit code) consents to licensing its case, declares
an open licence of one of its patents with the bank's consent, and the demo buyer takes it.
Every step goes through the same commands a person's clicks run."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from market.accounts import services as accounts
from market.cases.services import china_today
from market.clock import Clock
from market.commands import Act, Actor, Context
from market.db import Queries
from market.licensing import open_licence as ol
from market.licensing import pledgor
from market.licensing.value import patent_expiry

Q = Queries("pledgor")


async def _act(pool: asyncpg.Pool, clock: Clock, email: str) -> Act | None:
    user_id = await pool.fetchval(Q.demo_user, email)
    viewer = None if user_id is None else await accounts.load_viewer(pool, user_id)
    return None if viewer is None else Act(Context(pool=pool, clock=clock), Actor.of(viewer))


async def seed_pledgor_demo(pool: asyncpg.Pool, clock: Clock) -> None:
    """Once: nothing is done when the demo pledgor has no case or already consented."""
    as_pledgor = await _act(pool, clock, "pledgor@ipx.demo")
    as_bank = await _act(pool, clock, "bank@ipx.demo")
    as_buyer = await _act(pool, clock, "buyer@ipx.demo")
    if as_pledgor is None or as_bank is None or as_buyer is None:
        return
    org = as_pledgor.actor.org
    cases = await pledgor.page_cases(pool, org, cursor=None, limit=10)
    open_cases = [c for c in cases.items if c.status == "open"]
    if not open_cases or open_cases[0].licensing_consented_at is not None:
        return
    case_id = open_cases[-1].id  # the oldest open case
    await as_pledgor(pledgor.give_licensing_consent, pledgor.CaseRef(case_id=case_id))
    now: datetime = clock.now()
    today = china_today(now)
    patent = await pool.fetchrow(Q.demo_open_licence_patent, case_id, today)
    if patent is None:
        return
    expiry = patent_expiry(patent["patent_type"], patent["filing_date"])
    terms = ol.OpenLicenceTerms(
        ends_on=min(expiry, today + timedelta(days=5 * 365)),
        period="yearly",
        royalty_rate_bp=300,  # 3 % of net sales
        minimum_annual_fen=2_000_000,  # ¥20,000 a year
    )
    proposed = await as_pledgor(
        ol.propose_open_licence,
        ol.ProposeOpenLicence(case_id=case_id, asset_id=patent["id"], terms=terms),
    )
    await as_bank(ol.consent_open_licence, ol.OpenLicenceRef(open_licence_id=proposed.id))
    await as_pledgor(
        ol.declare_open_licence,
        ol.DeclareOpenLicence(
            open_licence_id=proposed.id,
            cnipa_number=f"KF{today.year}-DEMO-{proposed.id:04d}",
            declared_on=today,
        ),
    )
    await as_buyer(ol.take_open_licence, ol.OpenLicenceRef(open_licence_id=proposed.id))
