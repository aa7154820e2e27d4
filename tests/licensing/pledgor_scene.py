"""A case with its pledgor organisation linked by credit code, and an open licence through
its steps, for the pledgor and open-licence tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from market.clock import Clock
from market.commands import Act
from market.licensing import open_licence as ol
from tests.factories import act_as, make_org
from tests.lots.factories import make_case

TERMS = ol.OpenLicenceTerms(
    ends_on=date(2030, 12, 31),
    period="yearly",
    royalty_rate_bp=300,
    minimum_annual_fen=5_000_000,
)


@dataclass
class Scene:
    bank: int
    bank_user: int
    case_id: int
    asset_ids: list[int]
    pledgor: int
    pledgor_user: int
    pledgor_email: str

    async def as_pledgor(self, pool: asyncpg.Pool, at: datetime | Clock) -> Act:
        return await act_as(pool, at, self.pledgor_user)

    async def as_bank(self, pool: asyncpg.Pool, at: datetime | Clock) -> Act:
        return await act_as(pool, at, self.bank_user)


async def link_pledgor(pool: asyncpg.Pool, at: datetime, case_id: int) -> tuple[int, int, str]:
    """A pledgor organisation whose credit code is the case's borrower's."""
    org, user, email = await make_org(pool, at, kind="pledgor")
    await pool.execute(
        "UPDATE organisations o SET credit_code = p.credit_code FROM disposal_cases c"
        " JOIN loans l ON l.id = c.loan_id JOIN pledgors p ON p.id = l.pledgor_id"
        " WHERE c.id = $2 AND o.id = $1",
        org,
        case_id,
    )
    return org, user, email


async def scene(pool: asyncpg.Pool, at: datetime, *, assets: int = 1) -> Scene:
    bank, bank_user, _ = await make_org(pool, at, kind="bank")
    case_id, asset_ids = await make_case(pool, at, bank, bank_user, assets=assets)
    org, user, email = await link_pledgor(pool, at, case_id)
    return Scene(bank, bank_user, case_id, asset_ids, org, user, email)


async def declared(pool: asyncpg.Pool, at: datetime, s: Scene, number: str = "KF-1") -> int:
    """An open licence of the scene's first patent: proposed, consented, declared at `at`."""
    pledgor, bank = await s.as_pledgor(pool, at), await s.as_bank(pool, at)
    proposed = await pledgor(
        ol.propose_open_licence,
        ol.ProposeOpenLicence(case_id=s.case_id, asset_id=s.asset_ids[0], terms=TERMS),
    )
    await bank(ol.consent_open_licence, ol.OpenLicenceRef(open_licence_id=proposed.id))
    done = await pledgor(
        ol.declare_open_licence,
        ol.DeclareOpenLicence(
            open_licence_id=proposed.id, cnipa_number=number, declared_on=at.date()
        ),
    )
    assert done.status == "declared" and done.annuity_reduced
    return done.id
