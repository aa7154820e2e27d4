"""The bid path against real PostgreSQL under concurrency.

64 bidders (two of them pre-emptive holders) fire thousands of bids, proxies and matches at
one lot through TWO writer sets — as two app processes would — while the clock runs into
the extension window and past the end. Afterwards: accepted prices rise by an increment
in commit order (matches excepted), the end is what the extension rule gives, nothing was
accepted after the effective end, the recorded history is linearizable against the pure
rules, a retried Idempotency-Key got the first answer, and after the close there is one
winner, the ledger balances and every deposit was settled exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec
import pytest

from auctions import linearizability as lin
from auctions import rules
from auctions.bidding import BidBody, MatchBody, ProxyBody, TokenBucket, place
from auctions.closing import close_due
from auctions.deposits import ConfirmDeposit, confirm_deposit
from auctions.registration import RegisterForLot, register_for_lot
from auctions.state import load_locked
from auctions.writer import BidAnswer, Q, Writers, WriterUnavailable, provable_refusal
from market.clock import FrozenClock
from market.lots import services as lots
from market.lots.models import LotDraft, PauseInput, PublishInput
from market.lots.terms import PreemptiveHolder, TermsInput
from market.settings import Settings
from tests.factories import AGREEMENT, OneConnectionPool, act_as, make_org, viewer
from tests.lots.factories import draft_lot, lot_action, make_case

BIDDERS = 64
COMMANDS_EACH = 40
START, INC = 1_000_000, 5_000  # CNY 10,000 start; the default increment is CNY 50


async def _setup(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> dict[str, Any]:
    policy = lots.policy_for(settings)
    bank_org, bank_user, _ = await make_org(pool, clock.now(), kind="bank")
    _, operator_user, _ = await make_org(pool, clock.now(), kind="operator")
    operator = await viewer(pool, operator_user)
    buyers = [await make_org(pool, clock.now(), kind="buyer") for _ in range(BIDDERS)]
    async with pool.acquire() as conn:
        codes = {
            o: await conn.fetchval("SELECT credit_code FROM organisations WHERE id=$1", o)
            for o, _, _ in buyers[:2]
        }
    case_id, _ = await make_case(
        pool, clock.now(), bank_org, bank_user, valuation_fen=START * 10 // 7
    )
    starts = clock.now() + timedelta(days=30, hours=1)
    holders = tuple(
        PreemptiveHolder(rank=i + 1, name=f"优先权人{i}", credit_code=codes[o])
        for i, (o, _, _) in enumerate(buyers[:2])
    )
    lot = await draft_lot(
        pool,
        clock.now(),
        policy,
        await viewer(pool, bank_user),
        case_id,
        LotDraft(
            title="并发测试拍品",
            terms=TermsInput(
                start_price_fen=START,
                deposit_fen=START // 10,
                bidding_starts_at=starts,
                bidding_ends_at=starts + timedelta(hours=24),
                preemptive_holders=holders,
            ),
        ),
    )
    lot = await lot_action(
        pool, clock.now(), policy, await viewer(pool, bank_user), lot.id, PublishInput()
    )
    regs = {}
    operator_act = await act_as(pool, clock.now(), operator.user_id)
    for org, user, _ in buyers:
        buyer_act = await act_as(pool, clock.now(), user)
        reg = (
            await buyer_act(
                register_for_lot,
                RegisterForLot(reference=lot.reference, agreement_version=AGREEMENT),
            )
        ).registration
        await operator_act(
            confirm_deposit,
            ConfirmDeposit(transfer_reference=reg.transfer_reference, amount_fen=reg.deposit_fen),
        )
        regs[org] = reg
    # Bidding has run for nearly a day: the clock stands 3 minutes before the planned end.
    clock.set(starts + timedelta(hours=24) - timedelta(minutes=3))
    return {"lot": lot, "buyers": buyers, "regs": regs, "policy": policy}


def _check_history(
    bids: list[Any], increment: int, planned_end: Any, window: timedelta, extension: timedelta
) -> Any:
    """Every accepted bid against the rules, in commit order; returns the end they imply."""
    end, price = planned_end, None
    for b in bids:
        assert b["at"] < end, f"bid {b['seq']} accepted at {b['at']}, after the end {end}"
        if b["kind"] == "match":
            assert b["amount_fen"] == price
        elif price is None:
            assert b["amount_fen"] >= START
        else:
            assert b["amount_fen"] >= price + increment, (b, price)
            assert (b["amount_fen"] - price) % increment == 0
        price = b["amount_fen"]
        if end - window <= b["at"]:
            end = max(end, b["at"] + extension)
    return end


async def _place(
    pool: asyncpg.Pool,
    writers: Writers,
    limiter: TokenBucket,
    at: Any,
    lot: Any,
    org: int,
    body: Any,
    key: str | None = None,
) -> tuple[int, BidAnswer]:
    """`body` (a bid, a proxy maximum or a match) by `org` through the bid path, at `at`."""
    return await place(
        pool=pool,
        writers=writers,
        limiter=limiter,
        at=at,
        org_id=org,
        reference=lot.reference,
        body=body,
        raw=msgspec.json.encode(body),
        idempotency_key=key,
    )


async def _copies(pool: asyncpg.Pool, lot: Any, n: int) -> list[Any]:
    """The lot and `n` copies of it, each with copies of its confirmed registrations."""
    async with pool.acquire() as conn:
        copies = await conn.fetch(
            """INSERT INTO lots (case_id, bank_org_id, reference, title, description, status,
                   round, valuation_fen, start_price_fen, deposit_fen, increment_fen,
                   first_start_fen, terms, announced_at, bidding_starts_at, bidding_ends_at,
                   created_at, updated_at, published_at)
               SELECT case_id, bank_org_id, reference || '-' || g, title, description, status,
                   round, valuation_fen, start_price_fen, deposit_fen, increment_fen,
                   first_start_fen, terms, announced_at, bidding_starts_at, bidding_ends_at,
                   created_at, updated_at, published_at
               FROM lots, generate_series(1, $2::int) g WHERE id = $1 RETURNING id, reference""",
            lot.id,
            n,
        )
        await conn.execute(
            """INSERT INTO registrations (lot_id, round, buyer_org_id, user_id, bidder_code,
                   deposit_fen, transfer_reference, deposit_status, confirmed_at, created_at)
               SELECT l.id, 1, r.buyer_org_id, r.user_id, r.bidder_code, r.deposit_fen,
                   r.transfer_reference || '-' || l.id, 'confirmed', r.confirmed_at, r.created_at
               FROM registrations r, lots l WHERE r.lot_id = $1 AND l.id = ANY($2::bigint[])""",
            lot.id,
            [r["id"] for r in copies],
        )
    return [
        lot,
        *[msgspec.structs.replace(lot, id=r["id"], reference=r["reference"]) for r in copies],
    ]


class GatedPool(OneConnectionPool):
    """One connection; records each batch taking it in `events`, and holds every batch
    until `go` is set (`started` tells that the first is waiting)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        super().__init__(conn)
        self.events: list[str] = []
        self.started, self.go = asyncio.Event(), asyncio.Event()

    def acquire(self) -> Any:
        self.events.append("batch")
        held, gate = super().acquire(), self

        class Gated:
            async def __aenter__(self) -> Any:
                gate.started.set()
                await gate.go.wait()
                return await held.__aenter__()

            async def __aexit__(self, *exc: object) -> None:
                await held.__aexit__(*exc)

        return Gated()


def _on_wake(writers: Writers) -> asyncio.Event:
    """An event set the next time the batcher is woken: a command was queued."""
    woken, wake = asyncio.Event(), writers.batcher.wake
    wake_set = wake.set

    def noted() -> None:
        wake_set()
        woken.set()

    wake.set = noted  # type: ignore[method-assign]
    return woken


async def _bid(
    pool: asyncpg.Pool,
    writers: Writers,
    clock: FrozenClock,
    lot: Any,
    org: int,
    amount: int,
    key: str | None = None,
) -> tuple[int, BidAnswer]:
    """A bid of `amount` by `org` through the bid path, now (with an Idempotency-Key)."""
    limiter = TokenBucket(100, 100)
    return await _place(
        pool, writers, limiter, clock.now(), lot, org, BidBody(amount_fen=amount), key
    )


async def test_64_concurrent_bidders_on_one_lot(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Any
) -> None:
    world = await _setup(pool, clock, settings)
    lot, policy = world["lot"], world["policy"]
    # Two processes' worth of writers contending for the same lot row.
    writer_sets = [Writers(pool, clock, policy), Writers(pool, clock, policy)]
    limiter = TokenBucket(10_000, 10_000)
    async with pool.acquire() as conn, conn.transaction():
        _, initial = await load_locked(conn, lot.id)  # type: ignore[misc]
    initial = rules.clone(initial)
    initial.closed = False
    holders = {
        world["regs"][o].id: rank for rank, (o, _, _) in enumerate(world["buyers"][:2], start=1)
    }
    initial.holders = dict(holders)
    history: list[lin.Op] = []
    answers: list[BidAnswer] = []
    code_of = {r.bidder_code: r.id for r in world["regs"].values()}
    t0 = time.monotonic()

    async def client(n: int, org: int) -> None:
        rng = random.Random(n)
        reg = world["regs"][org]
        seen = START
        for i in range(COMMANDS_EACH):
            clock.advance(milliseconds=rng.randint(0, 40))  # time runs on, shared
            roll = rng.random()
            if reg.preemptive_rank and roll < 0.35:  # often: the run must contain matches
                body: Any = MatchBody()
            elif roll < 0.3:  # often, too: the run must contain proxy bids
                body = ProxyBody(max_fen=seen + INC * rng.randint(1, 12))
            elif roll < 0.35:
                body = BidBody(amount_fen=seen + INC * rng.randint(8, 30) + INC // 2)  # off grid
            else:
                body = BidBody(amount_fen=seen + INC * rng.randint(1, 25))
            key = f"c{n}-{i}" if rng.random() < 0.3 else None
            at = clock.now()
            invoked = time.monotonic() - t0
            status, answer = await _place(
                pool, writer_sets[n % 2], limiter, at, lot, org, body, key
            )
            responded = time.monotonic() - t0
            if key is not None and rng.random() < 0.5:  # a retry: same key, same body
                _, again = await _place(
                    pool, writer_sets[(n + 1) % 2], limiter, clock.now(), lot, org, body, key
                )
                assert again == answer, "a retried Idempotency-Key must get the first answer"
            answers.append(answer)
            command = _command(body, reg.id, at)
            result: Any = (
                answer.code
                if not answer.accepted
                else rules.Outcome(
                    bids=tuple(
                        rules.AcceptedBid(
                            seq=b.seq,
                            registration_id=code_of[b.code],
                            amount_fen=b.amount_fen,
                            kind=b.kind,
                            at=b.at,
                        )  # type: ignore[arg-type]
                        for b in answer.bids
                    )
                )
            )
            history.append(
                lin.Op(
                    client=n, command=command, invoked=invoked, responded=responded, result=result
                )
            )
            assert (status == 201) == answer.accepted
            if answer.price_fen is not None:
                seen = max(seen, answer.price_fen)

    await asyncio.gather(*(client(n, org) for n, (org, _, _) in enumerate(world["buyers"])))
    for ws in writer_sets:
        await ws.stop()

    accepted = [a for a in answers if a.accepted]
    refused = {a.code for a in answers if not a.accepted}
    assert len(answers) >= BIDDERS * COMMANDS_EACH
    assert len(accepted) > 200, "the test must exercise real contention, not only refusals"
    assert {"too_low", "not_on_increment"} <= refused

    async with pool.acquire() as conn:
        bids = await conn.fetch(
            "SELECT seq, registration_id, amount_fen, kind, at FROM bids WHERE lot_id=$1 "
            "ORDER BY id",
            lot.id,
        )
        row = await conn.fetchrow("SELECT * FROM lots WHERE id=$1", lot.id)
    assert [b["seq"] for b in bids] == sorted(b["seq"] for b in bids)  # commit order = seq order
    assert any(b["kind"] == "proxy" for b in bids) and any(b["kind"] == "match" for b in bids)
    end = _check_history(
        bids, lot.increment_fen, lot.bidding_ends_at, timedelta(minutes=5), timedelta(minutes=5)
    )
    assert end > lot.bidding_ends_at, "bids in the last minutes must have extended the end"
    assert row["bidding_ends_at"] == end
    assert row["current_price_fen"] == bids[-1]["amount_fen"]
    assert row["leader_registration_id"] == bids[-1]["registration_id"]

    # The recorded history has a sequential explanation under the pure rules.
    def project(outcome: Any) -> Any:
        if isinstance(outcome, str):
            return outcome
        return tuple((b.seq, b.registration_id, b.amount_fen, b.kind) for b in outcome.bids)

    projected = [msgspec.structs.replace(op, result=project(op.result)) for op in history]
    started = time.monotonic()
    assert lin.check(projected, initial, project=project)
    assert time.monotonic() - started < 60

    # Close after the effective end: one winner, deposits settled once, books balanced.
    clock.set(end + timedelta(seconds=1))
    assert await close_due(pool, clock.now(), policy) == [lot.id]
    async with pool.acquire() as conn:
        sale = await conn.fetchrow("SELECT * FROM sales WHERE lot_id=$1", lot.id)
        statuses = await conn.fetch(
            "SELECT id, deposit_status FROM registrations WHERE lot_id=$1", lot.id
        )
        ledger_total = await conn.fetchval("SELECT coalesce(sum(amount_fen),0) FROM ledger_legs")
        settling = await conn.fetch(
            "SELECT source_kind, source_id, count(*) AS n FROM ledger_entries "
            "WHERE source_kind IN ('deposit_released','deposit_applied','deposit_forfeited') "
            "GROUP BY 1, 2"
        )
    assert sale["registration_id"] == bids[-1]["registration_id"]
    assert sale["price_fen"] == bids[-1]["amount_fen"]
    by_status = {r["id"]: r["deposit_status"] for r in statuses}
    assert by_status[sale["registration_id"]] == "confirmed"  # frozen until paid
    assert all(s == "released" for r, s in by_status.items() if r != sale["registration_id"])
    assert ledger_total == 0
    assert all(r["n"] == 1 for r in settling)
    assert len(settling) == BIDDERS - 1
    # Both ways of writing a batch ran under this concurrency, so the checks above cover
    # both: from memory, and — when the other process's writer had moved the lot on — again
    # under the lot's lock. Summed over the two sets: which set gets a batch from memory
    # depends on how their batches interleave (typically 8–17 each, but a loaded CI
    # machine once gave one set none).
    assert sum(w.batcher.from_memory_batches for w in writer_sets) > 0
    assert sum(w.batcher.from_memory_retries for w in writer_sets) > 0


def _command(body: Any, reg: int, at: Any) -> rules.Bid | rules.SetProxy | rules.Match:
    if isinstance(body, BidBody):
        return rules.Bid(registration_id=reg, amount_fen=body.amount_fen, at=at)
    if isinstance(body, ProxyBody):
        return rules.SetProxy(registration_id=reg, max_fen=body.max_fen, at=at)
    return rules.Match(registration_id=reg, at=at)


@pytest.mark.parametrize(("twice", "direct"), [(1, False), (5, False), (3, True)])
async def test_retried_idempotency_key_makes_one_bid(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, twice: int, direct: bool
) -> None:
    world = await _setup(pool, clock, settings)
    lot = world["lot"]
    org, _, _ = world["buyers"][5]
    writers = Writers(pool, clock, world["policy"], direct=direct)
    results = [
        await _bid(pool, writers, clock, lot, org, START + INC, key="same-key")
        for _ in range(twice + 1)
    ]
    assert all(r == results[0] for r in results) and results[0][0] == 201
    status, answer = await _bid(pool, writers, clock, lot, org, START + 3 * INC, key="same-key")
    assert status == 422 and answer.code == "idempotency_key_reused"
    if not direct:  # each repeat, decided from memory as new, was caught by save_batch
        assert writers.batcher.from_memory_retries == twice + 1
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM bids WHERE lot_id=$1", lot.id) == 1
    await writers.stop()


class _KeyAnsweredMeanwhile:
    """A connection on which the first read of stored Idempotency-Key answers misses
    the one another process is storing: that process's commit lands between this
    batch's read and its insert (the window is too short to hit on purpose)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn, self.missed = conn, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        if query == Q.stored_answers and not self.missed:
            self.missed = True
            return []
        return await self._conn.fetch(query, *args)


async def test_a_key_answered_by_another_process_meanwhile_is_replayed_quietly(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """One request sent to two processes at once: the other stored its answer after this
    batch read the keys. save_batch refuses to store a second answer (nothing written);
    the batch reads again under its locks and replays the stored answer — one bid, the
    same answer, and no error logged for a race that is no fault."""
    world = await _setup(pool, clock, settings)
    lot = world["lot"]
    org, _, _ = world["buyers"][5]
    there = Writers(pool, clock, world["policy"])
    stored = await _bid(pool, there, clock, lot, org, START + INC, key="sent-twice")
    assert stored[0] == 201
    async with pool.acquire() as conn:
        racing = _KeyAnsweredMeanwhile(conn)
        here = Writers(OneConnectionPool(racing), clock, world["policy"])  # type: ignore[arg-type]
        with caplog.at_level(logging.WARNING):
            again = await _bid(pool, here, clock, lot, org, START + INC, key="sent-twice")
        await here.stop()
    assert racing.missed and here.batcher.key_races == 1
    assert again == stored
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert await pool.fetchval("SELECT count(*) FROM bids WHERE lot_id=$1", lot.id) == 1
    await there.stop()


async def test_a_batch_writes_its_lots_live_values_without_an_index_entry(
    pool: asyncpg.Pool,
) -> None:
    """The bid path's update of a lot can be a HOT update (migration 0012): of the columns
    it sets, none is in any of lots' indexes but the end, which only an extension moves
    (an unchanged value keeps an update HOT). An index on a live value, or bids setting
    an indexed column again (updated_at), fails this."""
    statement = Q.save_batch
    start = statement.index("UPDATE lots l SET")
    sets = statement[start : statement.index("FROM jsonb_to_recordset", start)]
    written = set(re.findall(r"(\w+) = v\.", sets)) | set(re.findall(r"(\w+) = \$", sets))
    assert {"current_price_fen", "leader_registration_id", "bid_count"} <= written
    indexed = dict(
        await pool.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'lots'")
    )
    assert len(indexed) >= 15
    for name, definition in indexed.items():
        touched = {c for c in written - {"bidding_ends_at"} if re.search(rf"\b{c}\b", definition)}
        assert not touched, f"{name} indexes {touched}, which every bid batch writes"


async def test_refusals_are_proved_only_against_committed_prices(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a batch is applied but not yet committed, the cached state still shows the
    committed price: a bid between the two is not refused as too low without a write."""
    world = await _setup(pool, clock, settings)
    lot = world["lot"]
    (a, _, _), (b, _, _) = world["buyers"][5:7]
    writers = Writers(pool, clock, world["policy"])

    assert (await _bid(pool, writers, clock, lot, a, START + INC))[0] == 201
    writer = writers.for_lot(lot.id)
    entered, release = asyncio.Event(), asyncio.Event()
    write = writer._write

    async def held(*args: Any, **kwargs: Any) -> None:
        entered.set()
        await release.wait()
        await write(*args, **kwargs)

    monkeypatch.setattr(writer, "_write", held)
    pending = asyncio.create_task(_bid(pool, writers, clock, lot, b, START + 5 * INC))
    await entered.wait()  # applied, not committed
    assert writer.state is not None and writer.state.price_fen == START + INC
    between = rules.Bid(registration_id=1, amount_fen=START + 3 * INC, at=clock.now())
    assert provable_refusal(writer.state, between) is None
    release.set()
    assert (await pending)[0] == 201
    assert writer.state.price_fen == START + 5 * INC  # committed: now the cache shows it
    await writers.stop()


async def test_live_updates_follow_the_commits_in_order_and_never_hold_a_bid(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The announcer publishes each committed batch after its bidders were answered, in
    commit order; a slow or failing Redis delays or drops live updates, never a bid."""
    world = await _setup(pool, clock, settings)
    lot = world["lot"]
    orgs = [o for o, _, _ in world["buyers"][5:8]]
    published: list[int] = []
    gate = asyncio.Event()

    async def publish(messages: list[tuple[int, dict[str, Any]]]) -> None:
        await gate.wait()  # Redis is slow: the first publish hangs until the bids are in
        for lot_id, message in messages:
            assert lot_id == lot.id
            published.append(message["price_fen"])
        if len(published) == 2:
            raise ConnectionError("Redis went away")  # best effort: the next still goes

    writers = Writers(pool, clock, world["policy"], publish)

    amounts = [START + INC * k for k in (1, 2, 3)]
    for org, amount in zip(orgs, amounts, strict=True):
        placed = await asyncio.wait_for(_bid(pool, writers, clock, lot, org, amount), timeout=10)
        assert placed[0] == 201  # not held
    assert published == []
    gate.set()
    for _ in range(200):
        if len(published) == 3:
            break
        await asyncio.sleep(0.01)
    assert published == amounts  # one message a batch, in commit order, after the failure
    await writers.stop()


async def test_a_batch_that_owes_notices_kicks_the_relay_after_its_bidders_are_answered(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The notices a batch writes (outbid, extended) go out now, not at the relay's next
    tick: the announcer asks for a relay once such a batch committed; a refusal, which
    writes nothing, asks for none."""
    world = await _setup(pool, clock, settings)
    lot = world["lot"]
    first, second = (o for o, _, _ in world["buyers"][5:7])
    kicks: list[int] = []

    async def owed() -> int:
        return int(await pool.fetchval("SELECT count(*) FROM outbox"))

    async def on_notices() -> None:
        kicks.append(await owed())

    writers = Writers(pool, clock, world["policy"], on_notices=on_notices)
    for org, amount in ((first, START + INC), (second, START + 2 * INC)):
        before = await owed()
        assert (await _bid(pool, writers, clock, lot, org, amount))[0] == 201
        await writers.batcher.announcements.join()
        after = await owed()
        assert after > before and kicks[-1] == after  # committed before the kick
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE event = 'outbid'") == 1
    assert (await _bid(pool, writers, clock, lot, first, START))[0] == 409
    await writers.batcher.announcements.join()
    assert len(kicks) == 2
    await writers.stop()


async def test_a_batch_on_a_lot_this_process_wrote_last_is_one_statement(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """Once a batch has committed, the lot's next batch is decided from the cached state
    and written in ONE statement, its own transaction: no BEGIN, no locking read of the
    lot, no COMMIT round trip (the first batch, which also opens the bidding, locks). Its
    bidder is another: the lot's first batch read all of its confirmed registrations, so
    this one needs no registration query (1,000 lots × 64 bidders would otherwise be
    64,000 of them)."""
    world = await _setup(pool, clock, settings)
    lot = world["lot"]
    (a, _, _), (b, _, _) = world["buyers"][5:7]
    queries: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda query: queries.append(query.query))
        writers = Writers(OneConnectionPool(conn), clock, world["policy"])  # type: ignore[arg-type]
        assert (await _bid(pool, writers, clock, lot, a, START + INC))[0] == 201
        assert Q.lock_lots in queries
        queries.clear()
        status, answer = await _bid(pool, writers, clock, lot, b, START + 3 * INC)
        assert (status, answer.price_fen) == (201, START + 3 * INC)
        assert queries == [Q.save_batch]
        assert writers.batcher.from_memory_batches == 1
        await writers.stop()
    row = await pool.fetchrow("SELECT * FROM lots WHERE id=$1", lot.id)
    assert (row["current_price_fen"], row["bid_count"]) == (START + 3 * INC, 2)
    assert row["leader_registration_id"] == world["regs"][b].id
    outbid = await pool.fetch("SELECT recipient_org_id FROM outbox WHERE event='outbid'")
    assert [r["recipient_org_id"] for r in outbid] == [a]


async def test_a_lot_moved_on_by_another_process_is_decided_again_under_its_lock(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """Another process's writer raised the price after this one's last commit. Decided
    from the stale cache, a bid below the real price would be accepted; save_batch finds
    the lot's auction_seq moved, writes nothing, and the batch is decided again under the
    lot's row lock: refused, too low."""
    world = await _setup(pool, clock, settings)
    lot = world["lot"]
    (a, _, _), (b, _, _), (c, _, _) = world["buyers"][5:8]
    here, there = Writers(pool, clock, world["policy"]), Writers(pool, clock, world["policy"])
    assert (await _bid(pool, here, clock, lot, a, START + INC))[0] == 201
    assert (await _bid(pool, there, clock, lot, b, START + 5 * INC))[0] == 201
    status, answer = await _bid(pool, here, clock, lot, c, START + 3 * INC)
    assert (status, answer.code, answer.price_fen) == (409, "too_low", START + 5 * INC)
    assert here.batcher.from_memory_retries == 1
    # Contended, the lot goes the locking way until a batch finds the cache current; the
    # batch after that is decided from memory again.
    assert (await _bid(pool, here, clock, lot, c, START + 6 * INC))[0] == 201
    assert here.batcher.from_memory_batches == 0
    status, answer = await _bid(pool, here, clock, lot, a, START + 7 * INC)
    assert (status, answer.price_fen) == (201, START + 7 * INC)
    assert (here.batcher.from_memory_batches, here.batcher.from_memory_retries) == (1, 1)
    amounts = await pool.fetch("SELECT amount_fen FROM bids WHERE lot_id=$1 ORDER BY seq", lot.id)
    assert [r["amount_fen"] for r in amounts] == [START + k * INC for k in (1, 5, 6, 7)]
    await here.stop()
    await there.stop()


async def test_a_paused_lot_refuses_a_batch_its_cache_thought_open(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The bank pauses the lot (中止) after this process's last commit: the status check in
    save_batch sends the batch to the locking way, which refuses it and writes nothing."""
    world = await _setup(pool, clock, settings)
    lot = world["lot"]
    (a, _, _), (b, _, _) = world["buyers"][5:7]
    writers = Writers(pool, clock, world["policy"])
    assert (await _bid(pool, writers, clock, lot, a, START + INC))[0] == 201
    bank_user = await pool.fetchval(
        "SELECT u.id FROM users u JOIN lots l ON l.bank_org_id = u.org_id WHERE l.id = $1 "
        "ORDER BY u.id LIMIT 1",
        lot.id,
    )
    await lot_action(
        pool,
        clock.now(),
        world["policy"],
        await viewer(pool, bank_user),
        lot.id,
        PauseInput(reason="权属争议"),
    )
    status, answer = await _bid(pool, writers, clock, lot, b, START + 2 * INC)
    assert (status, answer.code) == (409, "lot_paused")
    assert writers.batcher.from_memory_retries == 1
    assert await pool.fetchval("SELECT count(*) FROM bids WHERE lot_id=$1", lot.id) == 1
    await writers.stop()


async def test_lots_waiting_together_are_shared_between_two_batches(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands for many lots that wait together go out as two batches over disjoint lots
    (two connections write at once); each lot's commands stay together and in order."""
    world = await _setup(pool, clock, settings)
    targets = await _copies(pool, world["lot"], 5)
    writers = Writers(pool, clock, world["policy"])
    batches: list[dict[int, list[int]]] = []
    commit_all = writers.batcher._commit_all

    async def recorded(groups: dict[int, Any]) -> Any:
        batches.append(
            {lot_id: [p.command.amount_fen for p in batch] for lot_id, (_, batch) in groups.items()}  # type: ignore[union-attr]
        )
        return await commit_all(groups)

    monkeypatch.setattr(writers.batcher, "_commit_all", recorded)
    (a, _, _), (b, _, _) = world["buyers"][5:7]
    # Every lot's state cached first (each lot's first batch opens its bidding).
    for target in targets:
        assert (await _bid(pool, writers, clock, target, a, START + INC))[0] == 201
    batches.clear()
    placed = await asyncio.gather(
        *(
            _bid(pool, writers, clock, target, org, START + k * INC)
            for target in targets
            for org, k in ((b, 2), (a, 3))
        )
    )
    assert all(status == 201 for status, _ in placed)
    assert len(batches) == 2
    first, second = batches
    assert not first.keys() & second.keys() and len(first) == len(second) == 3
    assert all(amounts == [START + 2 * INC, START + 3 * INC] for amounts in first.values())
    assert all(amounts == [START + 2 * INC, START + 3 * INC] for amounts in second.values())
    await writers.stop()


async def test_a_batch_reads_the_states_of_lots_new_to_the_process_at_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a restart every lot is new to the writer: a batch over many of them reads
    their states in three statements, not three (and a locking read) per lot, and each
    lot gets its own: its price, and its proxies (a's maximum on the first lot answers
    b's bid there, and only there)."""
    monkeypatch.setattr("auctions.writer.FLIGHTS", 1)
    world = await _setup(pool, clock, settings)
    targets = await _copies(pool, world["lot"], 5)
    (a, _, _), (b, _, _) = world["buyers"][5:7]
    before = Writers(pool, clock, world["policy"])  # the process before the restart
    limiter = TokenBucket(100, 100)
    proxy = ProxyBody(max_fen=START + 4 * INC)
    assert (await _place(pool, before, limiter, clock.now(), targets[0], a, proxy))[0] == 201
    for target in targets[1:]:
        assert (await _bid(pool, before, clock, target, a, START + INC))[0] == 201
    await before.stop()

    queries: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda query: queries.append(query.query))
        after = Writers(OneConnectionPool(conn), clock, world["policy"])  # type: ignore[arg-type]
        placed = await asyncio.gather(
            *(_bid(pool, after, clock, target, b, START + 2 * INC) for target in targets)
        )
        await after.stop()
    batches = queries.count(Q.lock_lots)
    assert batches < len(targets)  # lots waited together
    assert Q.lot_for_state not in queries  # no lot read on its own
    assert queries.count(Q.round_proxies) == batches
    (status, first), *others = placed
    # On the first lot a's proxy answers b's bid at once, one increment above it.
    assert status == 201 and (first.price_fen, first.bid_count) == (START + 3 * INC, 3), first
    assert first.leader_code == world["regs"][a].bidder_code
    assert all(
        (s, ans.price_fen, ans.bid_count) == (201, START + 2 * INC, 2) for s, ans in others
    ), others


async def test_a_landed_batch_frees_its_flight_before_its_bidders_are_answered(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a batch has committed, a command waiting for a free flight (here, for another
    lot, with one flight) starts its batch before the landed batch's bidders are
    answered: answering them first left the flight idle while their requests resumed.
    The landed lot's own next batch still waits for those answers."""
    monkeypatch.setattr("auctions.writer.FLIGHTS", 1)
    world = await _setup(pool, clock, settings)
    first_lot, other_lot = await _copies(pool, world["lot"], 1)
    (a, _, _), (b, _, _) = world["buyers"][5:7]
    async with pool.acquire() as conn:
        gated = GatedPool(conn)
        events = gated.events
        writers = Writers(gated, clock, world["policy"])  # type: ignore[arg-type]

        async def bid(target: Any, org: int, name: str) -> tuple[int, BidAnswer]:
            answer = await _bid(pool, writers, clock, target, org, START + INC)
            events.append(name)
            return answer

        first = asyncio.create_task(bid(first_lot, a, "answered a"))
        await gated.started.wait()  # a's batch holds the only flight
        queued = _on_wake(writers)  # set when b's command is queued, waiting for the flight
        second = asyncio.create_task(bid(other_lot, b, "answered b"))
        await queued.wait()
        gated.go.set()
        assert (await first)[0] == 201 and (await second)[0] == 201
        await writers.stop()
    assert events == ["batch", "batch", "answered a", "answered b"]


async def test_stopping_lands_the_batch_in_flight_and_refuses_what_waits(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server stopping lands the batch it is committing, so its bidder gets the answer
    (cancelled mid-commit, the bid might be in without anyone told); a command still
    waiting, and one arriving meanwhile, are refused with "retry" and leave no trace."""
    monkeypatch.setattr("auctions.writer.FLIGHTS", 1)
    world = await _setup(pool, clock, settings)
    first_lot, other_lot = await _copies(pool, world["lot"], 1)
    (a, _, _), (b, _, _), (c, _, _) = world["buyers"][5:8]
    async with pool.acquire() as conn:
        gated = GatedPool(conn)
        writers = Writers(gated, clock, world["policy"])  # type: ignore[arg-type]
        landing = asyncio.create_task(_bid(pool, writers, clock, first_lot, a, START + INC))
        await gated.started.wait()  # a's batch holds the only flight
        queued = _on_wake(writers)
        waiting = asyncio.create_task(_bid(pool, writers, clock, other_lot, b, START + INC))
        await queued.wait()
        assert writers.batcher.waiting
        stopping = asyncio.create_task(writers.stop())
        await asyncio.sleep(0)  # it runs until it waits for the flight
        assert writers.batcher.stopping
        with pytest.raises(WriterUnavailable):
            await _bid(pool, writers, clock, first_lot, c, START + 2 * INC)
        assert not stopping.done()  # it waits for the batch in flight
        gated.go.set()
        await stopping
        assert (await landing)[0] == 201
        with pytest.raises(WriterUnavailable):
            await waiting
    assert gated.events == ["batch"]  # b's command never went to PostgreSQL
    counts = await pool.fetch(
        "SELECT lot_id, count(*) FROM bids WHERE lot_id = ANY($1) GROUP BY lot_id",
        [first_lot.id, other_lot.id],
    )
    assert {r["lot_id"]: r["count"] for r in counts} == {first_lot.id: 1}
