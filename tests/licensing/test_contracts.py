"""Licence contracts (docs/rules.md §Licence contracts): created in the deciding command's
unit of work, numbered, with the CNIPA recordal due three months on and an audit row."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg
import pytest

from market.clock import FrozenClock
from market.commands import SYSTEM, Context, unit_of_work
from market.licensing.contracts import NewContract, create_contract
from market.licensing.royalties import RoyaltyTerms
from tests.factories import make_org
from tests.lots.factories import make_case

AT = datetime(2027, 1, 29, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


@pytest.mark.asyncio
async def test_a_contract_has_its_reference_recordal_due_and_audit_row(
    pool: asyncpg.Pool,
) -> None:
    bank, bank_user, _ = await make_org(pool, AT, kind="bank")
    case_id, _assets = await make_case(pool, AT, bank, bank_user)
    licensee, _, _ = await make_org(pool, AT, kind="buyer")
    terms = RoyaltyTerms(
        start=date(2027, 2, 1),
        end=date(2032, 1, 31),
        royalty_rate_bp=600,
        minimum_annual_fen=25_000_000,
    )
    ctx = Context(pool=pool, clock=FrozenClock(AT))
    async with unit_of_work(ctx, SYSTEM) as uow:
        with pytest.raises(ValueError):
            await create_contract(
                uow,
                NewContract(
                    case_id=case_id,
                    bank_org_id=bank,
                    licensee_org_id=licensee,
                    pledgor_org_id=None,
                    kind="sole",
                    terms=terms,
                ),
            )
        await uow.conn.execute(
            "INSERT INTO open_licences (case_id, asset_id, bank_org_id, pledgor_org_id, terms,"
            " status, created_at) SELECT $1, asset_id, $2, $3, '{}', 'declared', $4"
            " FROM case_assets WHERE case_id = $1 LIMIT 1",
            case_id,
            bank,
            licensee,
            AT,
        )
        open_id = await uow.conn.fetchval("SELECT max(id) FROM open_licences")
        contract = await create_contract(
            uow,
            NewContract(
                case_id=case_id,
                bank_org_id=bank,
                licensee_org_id=licensee,
                pledgor_org_id=None,
                kind="non_exclusive",
                terms=terms,
                open_licence_id=open_id,
            ),
        )
    assert contract.reference.startswith("XK-2027-")
    assert contract.status == "active" and contract.accepted_at == AT
    assert contract.recordal_due_on == date(2027, 4, 29)
    assert contract.terms == terms
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'licence_contract.create'"
        " AND object_id = $1",
        str(contract.id),
    )
    assert audited == 1
