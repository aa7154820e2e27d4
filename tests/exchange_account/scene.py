"""Registrations awaiting their deposits, a sold lot awaiting its balance, and the exchange
account's statement as the bank's portal exports it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from market.cases.services import china_today
from market.clock import FrozenClock
from market.settings import Settings
from tests.auctions.test_closing import Scene, make_scene, sold_scene
from tests.factories import make_org, make_token


@dataclass
class Registrations:
    operator_org: int
    operator_user: int
    sold: Scene  # two deposits confirmed by hand (the first bidder won), one awaiting in a round now over
    sale: Any  # auctions/closing.SaleOut, awaiting its balance
    open: Scene  # a round being bid on, its registrations awaiting their deposits
    refs: dict[int, str]  # registration id → transfer reference
    op_auth: dict[str, str]
    today: date  # in China: the statement's value date


async def registrations(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, *, waiting: int
) -> Registrations:
    """A sold lot (2 bidders confirmed, 1 awaiting: 3 registrations) and an open lot with
    `waiting` registrations awaiting their deposits."""
    op_org, op_user, _ = await make_org(pool, clock.now(), kind="operator")
    sold, sale = await sold_scene(pool, clock, settings, waiting=1, operator=(op_org, op_user))
    opened = await make_scene(
        pool,
        clock,
        settings,
        buyers=0,
        waiting=waiting,
        operator=(op_org, op_user),
        bank=(sold.bank_org, sold.bank_user),
    )
    refs = {
        r["id"]: r["transfer_reference"]
        for r in await pool.fetch("SELECT id, transfer_reference FROM registrations")
    }
    token = await make_token(pool, clock.now(), op_user, ["operator:write"])
    return Registrations(
        operator_org=op_org,
        operator_user=op_user,
        sold=sold,
        sale=sale,
        open=opened,
        refs=refs,
        op_auth={"Authorization": f"Bearer {token}"},
        today=china_today(clock.now()),
    )


def statement(*lines: tuple[int, str, str], day: date) -> bytes:
    """(amount in fen — negative: paid out, 附言, 流水号) on `day`, as the portal exports it."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["交易日期", "金额", "附言", "对方户名", "流水号"])
    for fen, note, txn in lines:
        sign, size = ("-" if fen < 0 else ""), abs(fen)
        amount = f"{sign}{size // 100}.{size % 100:02d}"
        w.writerow([day.isoformat(), amount, note, "某竞买人", txn])
    return out.getvalue().encode()
