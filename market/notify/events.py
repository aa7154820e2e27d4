"""Producers of the events no other area writes (docs/rules.md §Notifications).

Each function runs in the unit of work of the change that causes its event
(market/commands.py) and writes outbox rows through `uow.emit`, with a unique
`dedupe_key`, so a retried transaction or a second worker adds nothing (ON CONFLICT DO
NOTHING). The unit of work counts the rows and, once they are committed, kicks the relay
(relay.py), which takes them from there.

Events, when, to whom, dedupe key:
* `bidding_opened` — a lot goes announced → bidding; each registration of the round;
  `bidding_opened:{lot}:{round}:{registration}`.
* `ending_soon` — reminders.py, at each lead time before the end; each registration;
  `ending_soon:{lot}:{round}:{lead_s}:{registration}`.
* `lot_matched` — a lot is published (draft → announced); each user with a matching saved
  interest (interests.py); `lot_matched:{lot}:{interest}`.
* `monitoring_flag` — the collateral monitor raises a flag; the bank organisation;
  `monitoring_flag:{flag}`.

Payloads (jsonb; times as ISO 8601 with offset, money in fen):
* bidding_opened: lot_id, lot_reference, lot_title, round, registration_id, bidder_code,
  deposit_status (a buyer whose deposit is still awaited is told so), auction_kind,
  start_price_fen, increment_fen, starts_at, ends_at.
* ending_soon: lot_id, lot_reference, lot_title, round, registration_id, bidder_code,
  deposit_status, lead_s, ends_at (the effective end when the reminder was written),
  price_fen (the current price; null for a sealed auction).
* lot_matched: lot_id, lot_reference, lot_title, interest_id, round, region, asset_kinds,
  start_price_fen, deposit_fen, starts_at, ends_at.
* monitoring_flag: flag_id, kind, detail (monitoring.flag_detail), raised_at, asset_id,
  asset_kind, asset_number, asset_title. recipient_user_id is null: every user of the
  bank hears it (recipients.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from market.commands import UnitOfWork
from market.db import Queries

if TYPE_CHECKING:
    from market.lots.lifecycle import LotState

Q = Queries("events")


async def bidding_opened(uow: UnitOfWork, lot_id: int, round: int) -> int:
    """Tell every organisation registered for this round that bidding is open; returns
    the rows written."""
    return await uow.emit(Q.insert_bidding_opened, lot_id, round, uow.at)


async def lot_published(uow: UnitOfWork, lot_id: int) -> int:
    """Tell every buyer whose saved interests the newly published lot matches
    (interests.py explains the matching); returns the rows written."""
    return await uow.emit(Q.insert_lot_matched, lot_id, uow.at)


async def lot_changed(uow: UnitOfWork, lot_id: int, before: LotState, after: LotState) -> None:
    """The lifecycle's hook (market/lots/services._transition), after the new state is
    saved: publication and the opening of bidding are announced here.

    A relist (failed → announced, round 2) is not a publication: its buyers registered
    before and the interests matched the lot already. A fixed-price sale opens straight
    into bidding with nobody registered for its round yet, so it is not announced either.
    """
    if before.status == "draft" and after.status == "announced":
        await lot_published(uow, lot_id)
    elif before.status == "announced" and after.status == "bidding":
        await bidding_opened(uow, lot_id, after.round)


async def monitoring_flags_raised(
    uow: UnitOfWork, bank_org_id: int, raised: list[tuple[int, str]]
) -> int:
    """Tell the bank about the flags just raised, as (asset id, flag kind) pairs
    (market/collateral/monitoring.refresh_flags); returns the rows written."""
    if not raised:
        return 0
    return await uow.emit(
        Q.insert_monitoring_flags,
        bank_org_id,
        uow.at,
        [asset_id for asset_id, _ in raised],
        [kind for _, kind in raised],
    )
