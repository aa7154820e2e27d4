"""The acquisition scene (tests/acquisition/scene.py) with the case's patent pledged and put
on the market as a listing that found no intent: a real lot whose first round failed, at
the floor of the agreed price (70 % of the valuation), and an approved acquisition
institution the bank can name as the taker."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from market.acquisition import agreement
from market.cases.checklist import required_items
from market.clock import FrozenClock
from market.lots import services as lots
from market.lots.jobs import advance_lots
from market.lots.models import PublishInput
from market.settings import Settings
from tests.acquisition.scene import Scene, make_scene
from tests.factories import make_org, viewer
from tests.listing.scene import PERIOD_END, PUBLISHED, listing_draft
from tests.lots.factories import draft_lot, lot_action, patent_number
from tests.pools.scene import as_user

VALUATION = 150_000_000
PRICE = 105_000_000  # the listing price and the agreed price's floor: 70 % of the valuation


@dataclass
class TakerScene:
    s: Scene
    lot_id: int
    acquirer: tuple[int, int]  # (org, user)
    operator_user: int


async def _pledge_a_patent(pool: asyncpg.Pool, at: datetime, s: Scene) -> None:
    """The loan's pledge of one invention patent, the case's asset, and the disclosure
    documents a lot needs."""
    loan = s.loan
    async with pool.acquire() as conn, conn.transaction():
        asset = await conn.fetchval(
            "INSERT INTO ip_assets (bank_org_id, pledgor_id, kind, number, title, abstract,"
            " patent_type, filing_date, term_ends_on, ipc_codes, annuity_paid_through, owners,"
            " legal_status, created_at, updated_at) VALUES ($1, $2, 'patent', $3, $4, $5,"
            " 'invention', '2019-03-01', '2039-02-28', $6, '2026-12-31', $7, 'valid', $8, $8)"
            " RETURNING id",
            loan.bank_org,
            loan.pledgor_id,
            patent_number(900_000 + loan.case_id),
            f"一种光电探测器的封装方法{loan.case_id}",
            "本发明公开了一种光电探测器的封装方法……",
            ["H01L 31/02"],
            ["中山光电科技有限公司"],
            at,
        )
        pledge = await conn.fetchval(
            "INSERT INTO pledges (bank_org_id, registration_no, pledgor_id, secured_amount_fen,"
            " created_at, updated_at) VALUES ($1, $2, $3, 300000000, $4, $4) RETURNING id",
            loan.bank_org,
            f"ZX-T-{loan.case_id:06d}",
            loan.pledgor_id,
            at,
        )
        await conn.execute("INSERT INTO pledge_assets VALUES ($1, $2)", pledge, asset)
        await conn.execute("UPDATE loans SET pledge_id = $2 WHERE id = $1", loan.loan_id, pledge)
        await conn.execute("INSERT INTO case_assets VALUES ($1, $2)", loan.case_id, asset)
        content = b"%PDF-1.4 disclosure"
        digest = hashlib.sha256(content).digest()
        await conn.execute(
            "INSERT INTO document_blobs VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            digest,
            content,
            len(content),
        )
        for item in required_items(["patent"]):
            await conn.execute(
                "INSERT INTO case_documents (case_id, item, filename, content_type, size_bytes,"
                " sha256, uploaded_by, uploaded_at) VALUES ($1, $2, $3, 'application/pdf', $4,"
                " $5, $6, $7)",
                loan.case_id,
                item,
                f"{item}.pdf",
                len(content),
                digest,
                loan.bank_user,
                at,
            )


async def make_taker_scene(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> TakerScene:
    """At the listing's period end (24:00 on 10 October 2026, Beijing) the round failed."""
    clock.set(PUBLISHED - timedelta(days=10))  # the valuation's objection window passes
    s = await make_scene(pool, clock, valuation_fen=VALUATION, failed_start_fen=None)
    await _pledge_a_patent(pool, clock.now(), s)
    clock.set(PUBLISHED)
    policy = lots.policy_for(settings)
    bank = await viewer(pool, s.loan.bank_user)
    lot = await draft_lot(
        pool, clock.now(), policy, bank, s.loan.case_id, listing_draft(price=PRICE)
    )
    await lot_action(pool, clock.now(), policy, bank, lot.id, PublishInput())
    clock.set(PERIOD_END)
    await advance_lots({"pool": pool, "clock": clock, "settings": settings})
    assert await pool.fetchval("SELECT status FROM lots WHERE id = $1", lot.id) == "failed"
    org, user, _ = await make_org(
        pool, clock.now(), kind="acquirer", name="中国长城资产管理股份有限公司"
    )
    return TakerScene(s, lot.id, (org, user), s.operator[1])


async def propose_to(
    pool: asyncpg.Pool, at: datetime, t: TakerScene, taker_org_id: int, amount_fen: int = PRICE
) -> agreement.Agreement:
    offer = agreement.AcquisitionIn(
        amount_fen=amount_fen, consent_document_id=t.s.consent_id, taker_org_id=taker_org_id
    )
    data = agreement.Propose(case_id=t.s.loan.case_id, offer=offer)
    return await as_user(pool, at, t.s.loan.bank_user, agreement.propose, data)


async def answer_as(
    pool: asyncpg.Pool, at: datetime, user_id: int, disposal_id: int, decision: str = "accept"
) -> agreement.Agreement:
    data = agreement.Answer(disposal_id=disposal_id, decision=decision)  # type: ignore[arg-type]
    return await as_user(pool, at, user_id, agreement.answer, data)
