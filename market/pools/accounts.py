"""Ledger accounts of the pools and the waterfall (issue 6), by code.

The exchange's side: money that came back sits in `proceeds:lot:N` (a sale), `forfeit:lot:N`
(a forfeited deposit) or `exchange:clearing` (a licence fee paid straight to the exchange);
routing moves it to what the exchange owes each payee (`payable:…`) and to its commission
income; a payout confirmed by the payee's statement moves it out of clearing.

A pool's side: its fund (`pool:N:fund`, capitalised from `pool:N:capital`), compensation
paid that recoveries may bring back (`pool:N:recoverable`) and guarantee deposits parked
until write-off (`pool:N:parked`).
"""

from __future__ import annotations

from typing import Final

from market.ledger import Account

COMMISSION: Final = Account("income:commission", "income", "处置佣金收入 disposal commission")


def pool_fund(pool_id: int, org_id: int) -> Account:
    return Account(
        f"pool:{pool_id}:fund", "asset", f"资金池 {pool_id} 资金 pool fund", owner_org_id=org_id
    )


def pool_capital(pool_id: int, org_id: int) -> Account:
    return Account(
        f"pool:{pool_id}:capital",
        "equity",
        f"资金池 {pool_id} 规模 pool capital",
        owner_org_id=org_id,
    )


def pool_recoverable(pool_id: int, org_id: int) -> Account:
    return Account(
        f"pool:{pool_id}:recoverable",
        "asset",
        f"资金池 {pool_id} 已补偿待回收 compensation recoverable",
        owner_org_id=org_id,
    )


def pool_parked(pool_id: int, org_id: int) -> Account:
    return Account(
        f"pool:{pool_id}:parked",
        "asset",
        f"资金池 {pool_id} 保证金 guarantee deposits",
        owner_org_id=org_id,
    )


def payable(payee_kind: str, key: int | str, org_id: int | None) -> Account:
    """What the exchange owes one payee of the waterfall until the transfer is confirmed."""
    return Account(
        f"payable:{payee_kind}:{key}",
        "liability",
        f"应付 {payee_kind} {key} payable",
        owner_org_id=org_id,
    )
