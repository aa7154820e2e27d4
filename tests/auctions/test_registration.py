"""Taking part (docs/rules.md §Registration and deposits) against real PostgreSQL:
registration rules, bidder codes, pre-emptive ranks, deposits confirmed, released, applied
and forfeited exactly once."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from auctions import bidding, deposits, registration
from auctions.deposits import ConfirmDeposit
from auctions.registration import RegisterForLot
from market import i18n, ledger, problems
from market.clock import FrozenClock
from market.commands import SYSTEM, UnitOfWork
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.lots import services
from market.lots.models import LotDraft, LotOut, PublishInput, WithdrawInput
from market.lots.terms import PreemptiveHolder, TermsInput
from market.settings import Settings
from tests.factories import AGREEMENT, OneConnectionPool, act_as, make_org, viewer
from tests.lots.factories import draft_lot, lot_action, make_case

DEPOSIT = 70_000_00
CODE = re.compile(r"^[A-Z0-9]{4,8}$")
UNAMBIGUOUS = re.compile(r"^[A-HJ-NP-Z2-9]+$")  # no I, O, 0, 1


async def published_lot(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    settings: Settings,
    *,
    holders: tuple[PreemptiveHolder, ...] = (),
    open_bidding: bool = False,
) -> LotOut:
    """An announced lot (bidding if asked) of a fresh bank, deposit CNY 70,000."""
    bank_org, bank_user, _ = await make_org(pool, clock.now(), kind="bank")
    bank = await viewer(pool, bank_user)
    case_id, _ = await make_case(pool, clock.now(), bank_org, bank_user)
    starts = clock.now() + timedelta(days=30, hours=1)
    policy = services.policy_for(settings)
    draft = LotDraft(
        title="锂电池正极材料专利包",
        terms=TermsInput(
            start_price_fen=700_000_00,
            deposit_fen=DEPOSIT,
            bidding_starts_at=starts,
            bidding_ends_at=starts + timedelta(days=1),
            preemptive_holders=holders,
        ),
    )
    lot = await draft_lot(pool, clock.now(), policy, bank, case_id, draft)
    lot = await lot_action(pool, clock.now(), policy, bank, lot.id, PublishInput())
    if open_bidding:
        assert await services.open_due_lots(pool, starts, policy) == [lot.id]
        lot = await services.get_lot(pool, bank_org, lot.id)
    return lot


async def withdraw(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, lot: LotOut) -> None:
    async with pool.acquire() as conn:
        bank_user = await conn.fetchval(
            "SELECT u.id FROM users u JOIN lots l ON l.bank_org_id = u.org_id WHERE l.id = $1",
            lot.id,
        )
    await lot_action(
        pool,
        clock.now(),
        services.policy_for(settings),
        await viewer(pool, bank_user),
        lot.id,
        WithdrawInput(reason="借款人已清偿"),
    )


async def buyer(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    *,
    status: str = "approved",
    kind: str = "buyer",
    name: str | None = None,
) -> tuple[int, int]:
    """(organisation id, user id) of a new organisation, an approved buyer by default."""
    org, user, _ = await make_org(pool, clock.now(), kind=kind, status=status, name=name)
    return org, user


async def registered(
    pool: asyncpg.Pool, clock: FrozenClock, reference: str, org_user: tuple[int, int]
) -> registration.Registered:
    """The organisation's user registers through the command, at the clock's instant."""
    act = await act_as(pool, clock.now(), org_user[1])
    return await act(
        registration.register_for_lot,
        RegisterForLot(reference=reference, agreement_version=AGREEMENT),
    )


async def register(
    pool: asyncpg.Pool, clock: FrozenClock, lot: LotOut, org_user: tuple[int, int]
) -> registration.Registration:
    return (await registered(pool, clock, lot.reference, org_user)).registration


async def confirm_reference(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    reference: str,
    operator: tuple[int, int],
    amount: int = DEPOSIT,
) -> deposits.Confirmation:
    """The operator's user confirms a transfer through the command."""
    act = await act_as(pool, clock.now(), operator[1])
    data = ConfirmDeposit(transfer_reference=reference, amount_fen=amount)
    return await act(deposits.confirm_deposit, data)


async def confirm(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    reg: registration.Registration,
    operator: tuple[int, int],
    amount: int = DEPOSIT,
) -> deposits.Confirmation:
    return await confirm_reference(pool, clock, reg.transfer_reference, operator, amount)


async def scalar(pool: asyncpg.Pool, sql: str, *args: Any) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def entries(pool: asyncpg.Pool, kind: str, registration_id: int) -> int:
    return int(
        await scalar(
            pool,
            "SELECT count(*) FROM ledger_entries WHERE source_kind = $1 AND source_id = $2",
            kind,
            str(registration_id),
        )
    )


async def books_balance(pool: asyncpg.Pool) -> int:
    return int(await scalar(pool, "SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs"))


# --- registration ---------------------------------------------------------------------------


async def test_register_gives_codes_and_awaits_the_deposit(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    org, user = await buyer(pool, clock)
    done = await registered(pool, clock, lot.reference, (org, user))
    reg = done.registration
    assert done.created
    assert reg.lot_id == lot.id and reg.round == 1 and reg.lot_reference == lot.reference
    assert reg.deposit_status == "awaiting" and reg.deposit_fen == DEPOSIT
    assert CODE.match(reg.bidder_code) and not re.match(r"^P\d", reg.bidder_code)
    assert reg.preemptive_rank is None
    assert re.fullmatch(r"BZJ[A-HJ-NP-Z2-9]{10}", reg.transfer_reference)
    audited = await scalar(
        pool,
        "SELECT count(*) FROM audit_log WHERE action = 'registration.create' AND chain_org_id = $1",
        org,
    )
    assert audited == 1


async def test_registering_twice_answers_the_same_registration(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings, open_bidding=True)
    org, user = await buyer(pool, clock)
    first = await registered(pool, clock, lot.reference, (org, user))
    clock.advance(minutes=1)
    again = await registered(pool, clock, lot.reference, (org, user))
    assert first.created and not again.created
    assert again.registration == first.registration
    assert await scalar(pool, "SELECT count(*) FROM registrations") == 1


async def test_concurrent_registrations_of_one_organisation_make_one_row(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    _, user = await buyer(pool, clock)
    act = await act_as(pool, clock.now(), user)
    data = RegisterForLot(reference=lot.reference, agreement_version=AGREEMENT)
    results = await asyncio.gather(*(act(registration.register_for_lot, data) for _ in range(12)))
    assert sum(r.created for r in results) == 1
    assert len({r.registration.id for r in results}) == 1
    assert len({r.registration.bidder_code for r in results}) == 1
    assert await scalar(pool, "SELECT count(*) FROM registrations") == 1
    audited = await scalar(
        pool, "SELECT count(*) FROM audit_log WHERE action = 'registration.create'"
    )
    assert audited == 1


@pytest.mark.parametrize("status", ["pending", "rejected", "suspended"])
async def test_organisation_not_approved_is_refused(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, status: str
) -> None:
    lot = await published_lot(pool, clock, settings)
    org, user = await buyer(pool, clock, status=status)
    with pytest.raises(Forbidden) as refused:
        await registered(pool, clock, lot.reference, (org, user))
    assert refused.value.status == 403 and refused.value.code == "organisation_not_approved"
    assert refused.value.params == {"status": status}
    assert await scalar(pool, "SELECT count(*) FROM registrations") == 0


async def test_a_bank_cannot_register(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    org, user = await buyer(pool, clock, kind="bank")
    with pytest.raises(Forbidden) as refused:
        await registered(pool, clock, lot.reference, (org, user))
    assert refused.value.code == "not_permitted" and refused.value.params == {"permission": "bid"}


async def test_an_acquirer_may_register(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    reg = await register(pool, clock, lot, await buyer(pool, clock, kind="acquirer"))
    assert reg.deposit_status == "awaiting"


async def test_lot_not_open_is_409(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    await withdraw(pool, clock, settings, lot)
    org, user = await buyer(pool, clock)
    with pytest.raises(Conflict) as refused:
        await registered(pool, clock, lot.reference, (org, user))
    assert refused.value.status == 409 and refused.value.code == "registration_closed"
    assert refused.value.params == {"reference": lot.reference, "status": "withdrawn"}
    assert lot.reference in problems.text(refused.value, "en")
    assert await scalar(pool, "SELECT count(*) FROM registrations") == 0


@pytest.mark.parametrize("reference", ["LOT-2099-999999", "", "x" * 500, "A\x00B"])
async def test_unknown_lot_is_404(pool: asyncpg.Pool, clock: FrozenClock, reference: str) -> None:
    org, user = await buyer(pool, clock)
    with pytest.raises(NotFound):
        await registered(pool, clock, reference, (org, user))


async def test_a_draft_lot_is_not_found(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE lots SET status = 'draft' WHERE id = $1", lot.id)
    org, user = await buyer(pool, clock)
    with pytest.raises(NotFound) as refused:
        await registered(pool, clock, lot.reference, (org, user))
    assert refused.value.code == "no_such_lot"


async def insert_sale(
    pool: asyncpg.Pool,
    at: datetime,
    reg: registration.Registration,
    buyer_org: int,
    *,
    price: int = 750_000_00,
    status: str = "awaiting_payment",
    due_in: timedelta = timedelta(days=10),
) -> int:
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "INSERT INTO sales (lot_id, round, registration_id, buyer_org_id, price_fen,"
                " fee_kind, fee_fen, deposit_fen, balance_due_fen, due_at, payment_reference,"
                " status, closed_at) VALUES ($1, $2, $3, $4, $5, 'commission', 3750000, $6,"
                " $7, $8, $9, $10, $11) RETURNING id",
                reg.lot_id,
                reg.round,
                reg.id,
                buyer_org,
                price,
                reg.deposit_fen,
                price - reg.deposit_fen,
                at + due_in,
                f"CJK{reg.id:010d}",
                status,
                at,
            )
        )


async def test_a_defaulter_is_barred_from_the_relist(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    defaulter = await buyer(pool, clock)
    reg = await register(pool, clock, lot, defaulter)
    sale = await insert_sale(pool, clock.now(), reg, defaulter[0], status="defaulted")
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO buyer_bars (buyer_org_id, asset_id, sale_id, created_at)"
            " SELECT $1, asset_id, $2, $3 FROM lot_assets WHERE lot_id = $4",
            defaulter[0],
            sale,
            clock.now(),
            lot.id,
        )
        # The relist: the same lot, its second round.
        await conn.execute("UPDATE lots SET round = 2 WHERE id = $1", lot.id)
    with pytest.raises(Forbidden) as refused:
        await register(pool, clock, lot, defaulter)
    assert refused.value.code == "barred_after_default"
    assert refused.value.params == {
        "reference": lot.reference,
        "asset_ids": sorted(lot.asset_ids),
    }
    assert "悔拍" in problems.text(refused.value, "zh")
    other = await register(pool, clock, lot, await buyer(pool, clock))
    assert other.round == 2
    assert await scalar(pool, "SELECT count(*) FROM registrations WHERE round = 2") == 1


async def test_bidder_codes_are_unique_random_and_anonymous(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    orgs = [await buyer(pool, clock) for _ in range(24)]
    regs = await asyncio.gather(*(register(pool, clock, lot, o) for o in orgs))
    codes = [r.bidder_code for r in regs]
    references = [r.transfer_reference for r in regs]
    assert len(set(codes)) == len(codes) and len(set(references)) == len(references)
    assert all(CODE.match(c) and UNAMBIGUOUS.match(c) for c in codes)
    async with pool.acquire() as conn:
        names = {
            r["id"]: (r["name"], r["credit_code"])
            for r in await conn.fetch("SELECT id, name, credit_code FROM organisations")
        }
    # Nothing in a code tells who bids: not drawn from the name or credit code, and not a
    # function of the organisation (its code on another lot is another draw).
    for (org, _), code in zip(orgs, codes, strict=True):
        name, credit = names[org]
        assert code not in credit and code not in name
    other_lot = await published_lot(pool, clock, settings)
    elsewhere = await asyncio.gather(*(register(pool, clock, other_lot, o) for o in orgs))
    assert sum(a == b.bidder_code for a, b in zip(codes, elsewhere, strict=True)) == 0


async def test_a_clashing_bidder_code_is_drawn_again(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    lot = await published_lot(pool, clock, settings)
    first = await register(pool, clock, lot, await buyer(pool, clock))
    draws = iter([first.bidder_code, first.bidder_code, "ZZ9ZZ9"])
    monkeypatch.setattr(registration, "bidder_code", lambda rank: next(draws))
    second = await register(pool, clock, lot, await buyer(pool, clock))
    assert second.bidder_code == "ZZ9ZZ9"
    assert await scalar(pool, "SELECT count(*) FROM registrations") == 2


async def test_preemptive_holders_get_priority_codes_with_their_rank(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    by_code = await buyer(pool, clock)
    by_account = await buyer(pool, clock)
    plain = await buyer(pool, clock)
    credit = await scalar(pool, "SELECT credit_code FROM organisations WHERE id = $1", by_code[0])
    holders = (
        PreemptiveHolder(rank=1, name="共有权人甲"),
        PreemptiveHolder(rank=2, name="被许可人乙", credit_code=credit.lower()),
    )
    lot = await published_lot(pool, clock, settings, holders=holders)
    async with pool.acquire() as conn:
        # Holder 1 opened an account later: linked by organisation id.
        await conn.execute(
            "UPDATE lot_preemptive_holders SET org_id = $1 WHERE lot_id = $2 AND rank = 1",
            by_account[0],
            lot.id,
        )
    second = await register(pool, clock, lot, by_code)
    first = await register(pool, clock, lot, by_account)
    other = await register(pool, clock, lot, plain)
    assert (first.preemptive_rank, second.preemptive_rank, other.preemptive_rank) == (1, 2, None)
    assert first.bidder_code.startswith("P1") and second.bidder_code.startswith("P2")
    assert not re.match(r"^P\d", other.bidder_code)
    assert all(CODE.match(r.bidder_code) for r in (first, second, other))


async def test_registration_ids_answer_the_bid_endpoint_from_the_unique_index(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings, open_bidding=True)
    other = await published_lot(pool, clock, settings, open_bidding=True)
    org = await buyer(pool, clock)
    neighbour = await buyer(pool, clock)
    stranger = await buyer(pool, clock)
    reg = await register(pool, clock, lot, org)  # awaiting its deposit: the writer says so
    beside = await register(pool, clock, lot, neighbour)  # not asked for: comes with the lot
    on_other = await register(pool, clock, other, org)
    keys = [
        (lot.id, 1, org[0]),
        (other.id, 1, org[0]),
        (lot.id, 1, stranger[0]),
        (lot.id, 2, org[0]),
    ]
    async with pool.acquire() as conn:
        found = await registration.registration_ids(conn, keys)
        async with conn.transaction():
            # Tiny tables are read whole anyway; this asks whether an index could serve it.
            await conn.execute("SET LOCAL enable_seqscan = off")
            await conn.execute("SET LOCAL enable_bitmapscan = off")
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN " + registration.Q.registration_ids,
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                )
            )
    # Every registration of the asked lots' rounds, and nothing of another round or lot.
    assert found == {
        keys[0]: reg.id,
        keys[1]: on_other.id,
        (lot.id, 1, neighbour[0]): beside.id,
    }
    assert "Index" in plan and "Seq Scan on registrations" not in plan, plan


async def test_first_bids_of_many_bidders_share_one_registration_query(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings, open_bidding=True)
    orgs = [await buyer(pool, clock) for _ in range(6)]
    regs = [await register(pool, clock, lot, org) for org in orgs[:5]]  # the sixth did not
    queries: list[str] = []

    def record(query: Any) -> None:
        queries.append(query.query)

    async with pool.acquire() as conn:
        conn.add_query_logger(record)
        one = OneConnectionPool(conn)
        found = await asyncio.gather(
            *(bidding._registration(one, lot.id, 1, org[0]) for org in orgs),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        assert found[:5] == [r.id for r in regs]
        assert isinstance(found[5], Forbidden) and found[5].code == "not_registered"
        assert sum("registrations" in q for q in queries) == 1, queries
        queries.clear()  # cached from now on: no query at all
        assert await bidding._registration(one, lot.id, 1, orgs[0][0]) == regs[0].id  # type: ignore[arg-type]
        assert queries == []


# --- deposits -------------------------------------------------------------------------------


async def test_wrong_amount_is_422_naming_it_and_writes_nothing(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    reg = await register(pool, clock, lot, await buyer(pool, clock))
    operator = await buyer(pool, clock, kind="operator")
    with pytest.raises(Invalid) as refused:
        await confirm(pool, clock, reg, operator, amount=DEPOSIT - 1)
    assert refused.value.status == 422 and refused.value.field == "amount_fen"
    assert refused.value.code == "deposit_amount_mismatch"
    assert refused.value.params == {
        "reference": reg.transfer_reference,
        "deposit_fen": DEPOSIT,
        "received_fen": DEPOSIT - 1,
    }
    words = problems.text(refused.value, "zh")
    assert "¥69,999.99" in words and "¥70,000.00" in words
    assert await scalar(pool, "SELECT deposit_status FROM registrations") == "awaiting"
    assert await scalar(pool, "SELECT count(*) FROM ledger_entries") == 0
    assert await scalar(pool, "SELECT count(*) FROM outbox") == 0
    audited = await scalar(pool, "SELECT count(*) FROM audit_log WHERE action LIKE 'deposit.%'")
    assert audited == 0


async def test_confirming_freezes_the_deposit_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    org, user = await buyer(pool, clock)
    reg = await register(pool, clock, lot, (org, user))
    operator = await buyer(pool, clock, kind="operator")
    # as copied from a statement: lower case, spaced
    copied = " ".join([reg.transfer_reference[:5].lower(), reg.transfer_reference[5:]])
    done = await confirm_reference(pool, clock, copied, operator)
    assert done.changed and not done.released
    assert done.registration.deposit_status == "confirmed"
    assert done.registration.confirmed_at == clock.now()
    again = await confirm(pool, clock, reg, operator)
    assert not again.changed and again.registration.deposit_status == "confirmed"
    assert await entries(pool, "deposit_confirmed", reg.id) == 1
    assert await scalar(pool, "SELECT count(*) FROM ledger_entries") == 1
    async with pool.acquire() as conn:
        assert await ledger.balance(conn, f"deposit:reg:{reg.id}") == -DEPOSIT
        assert await ledger.balance(conn, "exchange:clearing") == DEPOSIT
        event = await conn.fetchrow("SELECT * FROM outbox")
        confirmed_by = await conn.fetchval("SELECT confirmed_by FROM registrations")
        audit_rows = await conn.fetch(
            "SELECT chain_org_id, actor_user_id FROM audit_log WHERE action = 'deposit.confirm'"
        )
    assert event["event"] == "deposit_confirmed"
    assert event["dedupe_key"] == f"deposit_confirmed:{reg.id}"
    assert (event["recipient_org_id"], event["recipient_user_id"]) == (org, user)
    assert event["payload"]["lot_reference"] == lot.reference
    assert event["payload"]["amount_fen"] == DEPOSIT
    assert confirmed_by == operator[1]
    assert [(r["chain_org_id"], r["actor_user_id"]) for r in audit_rows] == [(org, operator[1])]
    assert await books_balance(pool) == 0


async def test_concurrent_confirmations_post_one_entry(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    reg = await register(pool, clock, lot, await buyer(pool, clock))
    operator = await buyer(pool, clock, kind="operator")
    results = await asyncio.gather(*(confirm(pool, clock, reg, operator) for _ in range(12)))
    assert sum(r.changed for r in results) == 1
    assert all(r.registration.deposit_status == "confirmed" for r in results)
    assert await entries(pool, "deposit_confirmed", reg.id) == 1
    assert await scalar(pool, "SELECT count(*) FROM outbox") == 1
    assert await books_balance(pool) == 0


@pytest.mark.parametrize(
    ("reference", "error", "code"),
    [
        ("BZJ2345678923", NotFound, "no_such_transfer_reference"),
        ("BZJ123", Invalid, "not_a_transfer_reference"),
        ("not a reference", Invalid, "not_a_transfer_reference"),
    ],
)
async def test_unknown_or_malformed_reference_is_refused(
    pool: asyncpg.Pool, clock: FrozenClock, reference: str, error: type[Exception], code: str
) -> None:
    operator = await buyer(pool, clock, kind="operator")
    with pytest.raises(error) as refused:
        await confirm_reference(pool, clock, reference, operator)
    assert getattr(refused.value, "field", None) == "transfer_reference"
    assert getattr(refused.value, "code", None) == code


async def test_only_the_operator_confirms_deposits(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    org_user = await buyer(pool, clock)
    reg = await register(pool, clock, lot, org_user)
    with pytest.raises(Forbidden) as refused:
        await confirm(pool, clock, reg, org_user)
    assert refused.value.code == "not_permitted"
    assert await scalar(pool, "SELECT deposit_status FROM registrations") == "awaiting"


async def confirmed_registration(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> tuple[LotOut, registration.Registration, int]:
    lot = await published_lot(pool, clock, settings, open_bidding=True)
    org, user = await buyer(pool, clock)
    reg = await register(pool, clock, lot, (org, user))
    await confirm(pool, clock, reg, await buyer(pool, clock, kind="operator"))
    return lot, reg, org


def on(conn: asyncpg.Connection) -> UnitOfWork:
    """The exchange's unit of work on a test's own transaction (a deposit's steps run
    inside the command that moves it)."""
    return UnitOfWork(conn=conn, at=datetime.now(UTC), actor=SYSTEM)


async def test_release_moves_the_deposit_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    _, reg, org = await confirmed_registration(pool, clock, settings)
    async with pool.acquire() as conn, conn.transaction():
        first = await deposits.release_deposit(on(conn), clock.now(), reg.id)
    async with pool.acquire() as conn, conn.transaction():
        second = await deposits.release_deposit(on(conn), clock.now(), reg.id)
    assert first.changed and not second.changed and second.deposit_status == "released"
    assert await entries(pool, "deposit_released", reg.id) == 1
    async with pool.acquire() as conn:
        assert await ledger.balance(conn, f"deposit:reg:{reg.id}") == 0
        assert await ledger.balance(conn, f"refund:org:{org}") == -DEPOSIT
        row = await conn.fetchrow("SELECT deposit_status, settled_at FROM registrations")
        events = [r["dedupe_key"] for r in await conn.fetch("SELECT dedupe_key FROM outbox")]
    assert row["deposit_status"] == "released" and row["settled_at"] == clock.now()
    assert f"deposit_released:{reg.id}" in events
    # Released is final: it cannot also be applied or forfeited.
    async with pool.acquire() as conn:
        with pytest.raises(Conflict) as refused:
            async with conn.transaction():
                await deposits.forfeit_deposit(on(conn), clock.now(), reg.id, reg.lot_id)
    assert refused.value.code == "deposit_already_settled"
    assert refused.value.params["status"] == "released"
    assert await books_balance(pool) == 0


async def test_apply_moves_the_deposit_to_the_sale_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    _, reg, org = await confirmed_registration(pool, clock, settings)
    sale = await insert_sale(pool, clock.now(), reg, org)
    async with pool.acquire() as conn, conn.transaction():
        first = await deposits.apply_deposit(on(conn), clock.now(), reg.id, sale)
        again = await deposits.apply_deposit(on(conn), clock.now(), reg.id, sale)
    assert first.changed and not again.changed
    assert await entries(pool, "deposit_applied", reg.id) == 1
    async with pool.acquire() as conn:
        assert await ledger.balance(conn, f"sale:receivable:{sale}") == -DEPOSIT
        assert await ledger.balance(conn, f"deposit:reg:{reg.id}") == 0
        with pytest.raises(Conflict):
            async with conn.transaction():
                await deposits.release_deposit(on(conn), clock.now(), reg.id)
    assert await books_balance(pool) == 0


async def test_apply_refuses_another_registrations_sale(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot, reg, _ = await confirmed_registration(pool, clock, settings)
    other_org = await buyer(pool, clock)
    other = await register(pool, clock, lot, other_org)
    sale = await insert_sale(pool, clock.now(), other, other_org[0])
    async with pool.acquire() as conn:
        with pytest.raises(Conflict) as refused:
            async with conn.transaction():
                await deposits.apply_deposit(on(conn), clock.now(), reg.id, sale)
        assert await conn.fetchval("SELECT count(*) FROM ledger_entries") == 1
    assert refused.value.code == "sale_not_of_registration"
    assert refused.value.params == {"sale_id": sale, "registration_id": reg.id}


async def test_forfeit_moves_the_deposit_to_the_lot_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot, reg, _ = await confirmed_registration(pool, clock, settings)
    async with pool.acquire() as conn:
        with pytest.raises(Conflict) as refused:
            async with conn.transaction():
                await deposits.forfeit_deposit(on(conn), clock.now(), reg.id, lot.id + 1)
        assert refused.value.code == "registration_not_of_lot"
        async with conn.transaction():
            first = await deposits.forfeit_deposit(on(conn), clock.now(), reg.id, lot.id)
        async with conn.transaction():
            again = await deposits.forfeit_deposit(on(conn), clock.now(), reg.id, lot.id)
        assert await ledger.balance(conn, f"forfeit:lot:{lot.id}") == -DEPOSIT
    assert first.changed and not again.changed
    assert await entries(pool, "deposit_forfeited", reg.id) == 1
    assert await books_balance(pool) == 0


async def test_an_awaiting_deposit_cannot_be_settled(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    reg = await register(pool, clock, lot, await buyer(pool, clock))
    async with pool.acquire() as conn:
        with pytest.raises(Conflict) as refused:
            async with conn.transaction():
                await deposits.release_deposit(on(conn), clock.now(), reg.id)
    assert refused.value.code == "deposit_not_confirmed"
    assert await scalar(pool, "SELECT count(*) FROM ledger_entries") == 0


async def test_concurrent_releases_post_one_entry(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    _, reg, _ = await confirmed_registration(pool, clock, settings)

    async def release() -> deposits.Moved:
        async with pool.acquire() as conn, conn.transaction():
            return await deposits.release_deposit(on(conn), clock.now(), reg.id)

    results = await asyncio.gather(*(release() for _ in range(10)))
    assert sum(r.changed for r in results) == 1
    assert await entries(pool, "deposit_released", reg.id) == 1
    assert await books_balance(pool) == 0


async def test_release_round_deposits_keeps_the_winners(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings, open_bidding=True)
    operator = await buyer(pool, clock, kind="operator")
    regs = [await register(pool, clock, lot, await buyer(pool, clock)) for _ in range(4)]
    for reg in regs[:3]:
        await confirm(pool, clock, reg, operator)
    winner = regs[0]
    async with pool.acquire() as conn, conn.transaction():
        released = await deposits.release_round_deposits(
            on(conn), clock.now(), lot.id, 1, keep=winner.id
        )
    async with pool.acquire() as conn, conn.transaction():
        again = await deposits.release_round_deposits(
            on(conn), clock.now(), lot.id, 1, keep=winner.id
        )
    assert released == [regs[1].id, regs[2].id] and again == []
    async with pool.acquire() as conn:
        states = dict(await conn.fetch("SELECT id, deposit_status FROM registrations"))
    assert states == {
        regs[0].id: "confirmed",
        regs[1].id: "released",
        regs[2].id: "released",
        regs[3].id: "awaiting",
    }
    assert await books_balance(pool) == 0


async def test_a_deposit_confirmed_after_its_round_closed_is_released_at_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    reg = await register(pool, clock, lot, await buyer(pool, clock))
    await withdraw(pool, clock, settings, lot)
    done = await confirm(pool, clock, reg, await buyer(pool, clock, kind="operator"))
    assert done.changed and done.released
    assert done.registration.deposit_status == "released"
    assert await entries(pool, "deposit_confirmed", reg.id) == 1
    assert await entries(pool, "deposit_released", reg.id) == 1
    assert await books_balance(pool) == 0


async def test_the_deposit_accounts_have_a_label_in_each_language(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The books name an account in Chinese (会计法 art. 22); a page names it by its label,
    in the reader's language and never by its code."""
    _, reg, org = await confirmed_registration(pool, clock, settings)
    async with pool.acquire() as conn, conn.transaction():
        await deposits.release_deposit(on(conn), clock.now(), reg.id)
    async with pool.acquire() as conn:
        codes = [r["code"] for r in await conn.fetch("SELECT code FROM ledger_accounts")]
    assert sorted(codes) == sorted(
        ["exchange:clearing", f"deposit:reg:{reg.id}", f"refund:org:{org}"]
    )
    for code in codes:
        found = deposits.account_label(code)
        assert found is not None, code
        key, params = found
        zh, en = i18n.gettext("zh", key, **params), i18n.gettext("en", key, **params)
        assert zh != key and en != key and code not in zh and code not in en
    assert deposits.account_label(f"deposit:reg:{reg.id}") == (
        "ledger.account.deposit_held",
        {"registration_id": reg.id},
    )
    assert i18n.gettext("en", "ledger.account.deposit_held", registration_id=reg.id) == (
        f"Deposit held, registration {reg.id}"
    )
    assert deposits.account_label("payable:pool:1") is None  # another area's
