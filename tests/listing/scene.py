"""A listing published on Monday 7 September 2026 (Beijing) for 20 working days: its
period runs across the Mid-Autumn Festival (25 Sep) and the National Day holiday (1–7 Oct)
and counts both make-up working days (Sunday 20 Sep, Saturday 10 Oct), so it ends at
24:00 on Saturday 10 October 2026 (docs/rules.md §Listing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from auctions import deposits, registration
from auctions.deposits import ConfirmDeposit
from auctions.registration import RegisterForLot, Registration
from market.cases.policy import CHINA
from market.clock import FrozenClock
from market.lots import services as lots
from market.lots.jobs import advance_lots
from market.lots.models import LotDraft, LotOut, PublishInput
from market.lots.terms import ListingInput, TermsInput, TermsPolicy
from market.settings import Settings
from tests.factories import AGREEMENT, act_as, make_org, viewer
from tests.lots.factories import draft_lot, lot_action, make_case

VALUATION = 1_000_000_00
PRICE = 700_000_00  # the listing price: 70 % of the valuation, the floor
DEPOSIT = 70_000_00
PUBLISHED = datetime(2026, 9, 7, 10, 0, tzinfo=CHINA)
PERIOD_END = datetime(2026, 10, 11, 0, 0, tzinfo=CHINA)  # 24:00 on Sat 10 Oct


@dataclass
class Party:
    org_id: int
    user_id: int


@dataclass
class ListingScene:
    lot: LotOut
    bank: Party
    operator: Party
    policy: TermsPolicy
    pool: asyncpg.Pool
    clock: FrozenClock
    settings: Settings
    ctx: dict[str, Any] = field(default_factory=dict)

    async def buyer(self, *, pay: bool = True) -> tuple[Party, Registration]:
        """A buyer registers its intent; the operator confirms its deposit when `pay`."""
        org, user, _ = await make_org(self.pool, self.clock.now(), kind="buyer")
        act = await act_as(self.pool, self.clock, user)
        done = await act(
            registration.register_for_lot,
            RegisterForLot(reference=self.lot.reference, agreement_version=AGREEMENT),
        )
        if pay:
            await self.confirm(done.registration)
        return Party(org, user), done.registration

    async def confirm(self, reg: Registration, at: datetime | None = None) -> deposits.Confirmation:
        """The operator confirms the deposit now, or at `at`."""
        op = await act_as(self.pool, at or self.clock, self.operator.user_id)
        return await op(
            deposits.confirm_deposit,
            ConfirmDeposit(transfer_reference=reg.transfer_reference, amount_fen=reg.deposit_fen),
        )

    async def advance(self, at: datetime) -> LotOut:
        """The clock moves to `at` and the lots' timed job runs."""
        self.clock.set(at)
        await advance_lots(self.ctx)
        return await self.reload()

    async def reload(self) -> LotOut:
        self.lot = await lots.get_lot(self.pool, self.bank.org_id, self.lot.id)
        return self.lot


def listing_draft(**listing: Any) -> LotDraft:
    return LotDraft(
        title="锂电池正极材料专利（挂牌）",
        terms=TermsInput(
            start_price_fen=listing.pop("price", PRICE),
            deposit_fen=DEPOSIT,
            mode="listing",
            listing=ListingInput(**listing),
        ),
    )


async def make_listing(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> ListingScene:
    clock.set(PUBLISHED)
    at = clock.now()
    bank_org, bank_user, _ = await make_org(pool, at, kind="bank")
    op_org, op_user, _ = await make_org(pool, at, kind="operator")
    me = await viewer(pool, bank_user)
    policy = lots.policy_for(settings)
    case_id, _ = await make_case(pool, at, bank_org, bank_user, valuation_fen=VALUATION)
    lot = await draft_lot(pool, at, policy, me, case_id, listing_draft())
    lot = await lot_action(pool, at, policy, me, lot.id, PublishInput())
    return ListingScene(
        lot=lot,
        bank=Party(bank_org, bank_user),
        operator=Party(op_org, op_user),
        policy=policy,
        pool=pool,
        clock=clock,
        settings=settings,
        ctx={"pool": pool, "clock": clock, "settings": settings},
    )
