"""Producers of the events no other area writes (issue 5 items 1 and 5).

Each function runs in the transaction of the change that causes its event and writes
outbox rows with a unique `dedupe_key`, so a retried transaction or a second worker adds
nothing (ON CONFLICT DO NOTHING). The relay (relay.py) takes them from there.

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

from datetime import datetime
from typing import TYPE_CHECKING

from market.db import Conn, Queries

if TYPE_CHECKING:
    from market.lots.lifecycle import LotState

Q = Queries("events")


async def bidding_opened(conn: Conn, lot_id: int, round: int, at: datetime) -> None:
    """Tell every organisation registered for this round that bidding is open."""
    await conn.execute(Q.insert_bidding_opened, lot_id, round, at)


async def lot_published(conn: Conn, lot_id: int, at: datetime) -> None:
    """Tell every buyer whose saved interests the newly published lot matches
    (interests.py explains the matching)."""
    await conn.execute(Q.insert_lot_matched, lot_id, at)


async def lot_changed(
    conn: Conn, at: datetime, lot_id: int, before: LotState, after: LotState
) -> None:
    """The lifecycle's hook (market/lots/services._transition), after the new state is
    saved: publication and the opening of bidding are announced here.

    A relist (failed → announced, round 2) is not a publication: its buyers registered
    before and the interests matched the lot already. A fixed-price sale opens straight
    into bidding with nobody registered for its round yet, so it is not announced either.
    """
    if before.status == "draft" and after.status == "announced":
        await lot_published(conn, lot_id, at)
    elif before.status == "announced" and after.status == "bidding":
        await bidding_opened(conn, lot_id, after.round, at)


async def monitoring_flags_raised(
    conn: Conn, at: datetime, bank_org_id: int, raised: list[tuple[int, str]]
) -> None:
    """Tell the bank about the flags just raised, as (asset id, flag kind) pairs
    (market/collateral/monitoring.refresh_flags)."""
    if raised:
        await conn.execute(
            Q.insert_monitoring_flags,
            bank_org_id,
            at,
            [asset_id for asset_id, _ in raised],
            [kind for _, kind in raised],
        )
