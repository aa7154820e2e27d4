"""Demo disposal cases and lots in every state of the lifecycle, for `market seed-demo`.

Everything goes through the lots' commands, run as the demo bank (the closes as the
exchange), with instants in the past where a state needs history (an auction that already
failed, a relist, a fixed-price sale…), so the demo's audit log and transitions read like
a real bank's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import msgspec

from auctions.bidding import BidBody, BidRequest, TokenBucket, place
from auctions.closing import RecordPayment, close_when_due, record_payment
from auctions.deposits import ConfirmDeposit, confirm_deposit
from auctions.registration import RegisterForLot, current_agreement, register_for_lot
from auctions.writer import Writers
from market.accounts.models import Viewer
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
from market.clock import FrozenClock
from market.commands import SYSTEM, Act, Actor, Context, unit_of_work
from market.lots import services as lots
from market.lots.models import (
    DraftLot,
    LotDraft,
    PauseLot,
    PublishLot,
    RelistLot,
    SellAtFixedPrice,
    WithdrawLot,
)
from market.lots.terms import TermsInput, TermsPolicy
from market.transfer.demo import Parties, complete_demo_transfer, release_demo_pledge

# What each demo lot goes through: (title suffix, the state it should end in).
PLAN = [
    "draft",
    "announced",
    "bidding",
    "paused",
    "withdrawn",
    "failed",
    "relisted",
    "sold",
    "returned",
    "sold_in_escrow",
]


def _pdf(title: str) -> bytes:
    # A minimal PDF is enough for the checklist: the type is judged by its bytes.
    return f"%PDF-1.4\n% {title}\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".encode()


def _as(pool: asyncpg.Pool, at: datetime, bank: Viewer) -> Act:
    """The bank's commands at `at`."""
    return Act(Context(pool=pool, clock=FrozenClock(at)), Actor.of(bank))


async def _close(
    pool: asyncpg.Pool, at: datetime, policy: TermsPolicy, lot_id: int, *, sold: bool
) -> None:
    """A round closed by the exchange at its end (no bid: the auction engine's close)."""
    async with unit_of_work(Context(pool=pool, clock=FrozenClock(at)), SYSTEM) as uow:
        await lots.close_round(uow, at, policy, lot_id, sold=sold)


def _terms(start_fen: int, starts: datetime, hours: int = 48) -> TermsInput:
    return TermsInput(
        start_price_fen=start_fen,
        deposit_fen=start_fen // 10,
        bidding_starts_at=starts,
        bidding_ends_at=starts + timedelta(hours=hours),
    )


async def seed_cases_and_lots(
    pool: asyncpg.Pool,
    now: datetime,
    policy: TermsPolicy,
    bank: Viewer,
    buyer: Viewer | None = None,
    operator: Viewer | None = None,
) -> list[str]:
    """Open cases on the bank's defaulted loans and take one lot into each state. With a
    buyer and an operator, the sold lot is sold the way a real one is (`_sell`)."""
    made: list[str] = []
    loans = await cases.defaulted_loans(pool, bank.org_id)
    ann = policy.announcement_period
    long_ago = now - ann - timedelta(days=70)  # room for two rounds and a fixed-price sale
    slots: list[tuple[int, list[int], int, str]] = []  # (case, assets, valuation, title)
    for loan in loans:
        opened = long_ago - timedelta(days=5)
        act = Act(Context(pool=pool, clock=FrozenClock(opened)), Actor.of(bank))
        case = await act(cases.open_case, OpenCase(loan_id=loan["id"]))
        claim = case.claim.principal_fen + case.claim.interest_fen
        if claim >= 10_000_000_00:
            valuation: AppraisalIn | InternalIn = AppraisalIn(
                appraiser="北京中和资产评估有限公司",
                report_no=f"中和评报字[2026]第{case.id:04d}号",
                value_fen=claim * 6 // 10,
                valued_on=opened.date(),
            )
        else:
            valuation = InternalIn(
                base_value_fen=claim * 7 // 10,
                basis="收益法：参照同类专利许可费率 3%，剩余经济寿命 8 年",
                scores=Scores(
                    legal_stability=80,
                    remaining_term=70,
                    ownership_clarity=90,
                    encumbrance=60,
                    advancement=75,
                    maturity=70,
                    substitutability=65,
                    claim_breadth=70,
                    market_size=60,
                    profitability=55,
                    licence_history=50,
                ),
            )
        value = (
            await act(cases.record_valuation, RecordValuation(case_id=case.id, valuation=valuation))
        ).value_fen
        for item in required_items({a.kind for a in case.assets}):
            if item == "valuation_report" and isinstance(valuation, InternalIn):
                continue
            await act(
                cases.upload_document,
                UploadDocument(
                    case_id=case.id, item=item, filename=f"{item}.pdf", content=_pdf(item)
                ),
            )
        # Two lots a case: the first asset alone, then the rest as a package; each answers
        # to its assets' part of the valuation (equal parts: the demo records no per-asset
        # values), about `share` for one asset.
        first, rest = case.assets[:1], case.assets[1:]
        share = value // len(case.assets)
        slots.append((case.id, [a.id for a in first], share, first[0].title))
        if rest:
            title = f"{rest[0].title} 等{len(rest)}项专利包" if len(rest) > 1 else rest[0].title
            slots.append((case.id, [a.id for a in rest], value - share, title))
    for state, (case_id, asset_ids, lot_value, title) in zip(PLAN, slots, strict=False):
        start = max(lot_value * 8 // 10 // 100_00 * 100_00, 10_000_00)  # 80 %, round yuan
        t0 = long_ago if state not in ("draft", "announced") else now
        if state in {"bidding", "paused"}:
            t0 = now - ann - timedelta(hours=2)
        if state == "sold_in_escrow":  # paid three days ago: its transfer under way
            t0 = now - ann - timedelta(days=8)
        if state == "relisted":  # failed three days ago, relisted yesterday
            t0 = now - ann - timedelta(days=5)
        lot = await _as(pool, t0, bank)(
            lots.draft_lot,
            DraftLot(
                case_id=case_id,
                policy=policy,
                lot=LotDraft(
                    title=title,
                    description="银行不良知识产权质押贷款质物处置（演示数据）",
                    asset_ids=asset_ids,
                    terms=_terms(start, t0 + ann + timedelta(hours=1)),
                ),
            ),
        )
        made.append(f"{lot.reference} {state}")
        if state == "draft":
            continue
        # Numbered at publication: the buyers' side names the lot by its number.
        lot = await _as(pool, t0, bank)(lots.publish_lot, PublishLot(lot_id=lot.id, policy=policy))
        made[-1] = f"{lot.reference} {state}"
        if state == "announced":
            continue
        if state == "withdrawn":
            await _as(pool, t0 + timedelta(days=1), bank)(
                lots.withdraw_lot,
                WithdrawLot(lot_id=lot.id, policy=policy, reason="借款人已清偿全部欠款"),
            )
            continue
        opens = t0 + ann + timedelta(hours=1)
        await lots.open_due_lots(pool, opens, policy)
        if state == "bidding":
            continue
        if state == "paused":
            await _as(pool, now - timedelta(minutes=30), bank)(
                lots.pause_lot,
                PauseLot(lot_id=lot.id, policy=policy, reason="案外人提出权属异议，法院通知暂缓"),
            )
            continue
        ends = opens + timedelta(hours=48)
        if state.startswith("sold") and buyer is not None and operator is not None:
            sale_id = await _sell(pool, policy, lot.reference, start, opens, ends, buyer, operator)
            parties = Parties(bank=bank, buyer=buyer, operator=operator)
            if state == "sold":  # the title moved ten days after payment
                await complete_demo_transfer(pool, ends + timedelta(days=13), sale_id, parties)
            else:  # the bank has released the pledge; the recordal is awaited
                await release_demo_pledge(pool, ends + timedelta(days=4), sale_id, parties)
            continue
        if state == "sold_in_escrow":
            continue
        await _close(pool, ends, policy, lot.id, sold=state == "sold")
        if state in ("failed", "sold"):
            continue
        relist_at = ends + timedelta(days=1)
        starts2 = relist_at + policy.relist_notice
        await _as(pool, relist_at, bank)(
            lots.relist_lot,
            RelistLot(lot_id=lot.id, policy=policy, terms=_terms(start * 8 // 10, starts2)),
        )
        if state == "relisted":
            continue
        await lots.open_due_lots(pool, starts2, policy)
        ends2 = starts2 + timedelta(hours=48)
        await _close(pool, ends2, policy, lot.id, sold=False)
        sale_from = ends2 + timedelta(days=1)
        await _as(pool, sale_from, bank)(
            lots.sell_at_fixed_price,
            SellAtFixedPrice(lot_id=lot.id, policy=policy, ends_at=sale_from + timedelta(days=20)),
        )
        await _close(pool, sale_from + timedelta(days=20), policy, lot.id, sold=False)
    return made


async def demo_bid(
    pool: asyncpg.Pool,
    policy: TermsPolicy,
    at: datetime,
    org_id: int,
    reference: str,
    body: BidRequest,
) -> None:
    """A bid of organisation `org_id` at `at` through the bid path a request takes (its own
    writer, stopped after); a refusal is a broken demo."""
    writers = Writers(pool, FrozenClock(at), policy, direct=True)
    try:
        status, answer = await place(
            pool=pool,
            writers=writers,
            limiter=TokenBucket(1, 1),
            at=at,
            org_id=org_id,
            reference=reference,
            body=body,
            raw=msgspec.json.encode(body),
            idempotency_key=None,
        )
    finally:
        await writers.stop()
    if status != 201:
        raise RuntimeError(f"the demo bid on {reference} was refused: {answer.code}")


async def _sell(
    pool: asyncpg.Pool,
    policy: TermsPolicy,
    reference: str,
    start_fen: int,
    opens: datetime,
    ends: datetime,
    buyer: Viewer,
    operator: Viewer,
) -> int:
    """The buyer registers while the lot is announced and transfers its deposit, which the
    operator confirms; it bids the starting price (`start_fen`) an hour into the round;
    the round closes on time with it as the winner (its deposit applied to the price); it
    pays the balance three days later (held in escrow until the title has moved). Its
    history, ledger and notifications are then a real sale's. Returns the sale's id."""

    def as_(viewer: Viewer, at: datetime) -> Act:
        return Act(Context(pool=pool, clock=FrozenClock(at)), Actor.of(viewer))

    async with pool.acquire() as conn:
        agreement = await current_agreement(conn, opens - timedelta(days=3))
    registered = await as_(buyer, opens - timedelta(days=3))(
        register_for_lot,
        RegisterForLot(reference=reference, agreement_version=agreement.version),
    )
    registration = registered.registration
    await as_(operator, opens - timedelta(days=2))(
        confirm_deposit,
        ConfirmDeposit(
            transfer_reference=registration.transfer_reference,
            amount_fen=registration.deposit_fen,
        ),
    )
    bid_at = opens + timedelta(hours=1)
    await demo_bid(pool, policy, bid_at, buyer.org_id, reference, BidBody(amount_fen=start_fen))
    closed = await close_when_due(pool, ends, policy, registration.lot_id)
    if closed is None or closed.sale is None:
        raise RuntimeError(f"the demo lot {reference} did not close as sold")
    await as_(operator, ends + timedelta(days=3))(
        record_payment,
        RecordPayment(
            payment_reference=closed.sale.payment_reference,
            amount_fen=closed.sale.balance_due_fen,
        ),
    )
    return closed.sale.id
