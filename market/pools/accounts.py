"""Ledger accounts of the pools and the waterfall (docs/rules.md §The waterfall), by code.

The exchange's side: money that came back sits in `proceeds:lot:N` (a sale), `forfeit:lot:N`
(a forfeited deposit) or `exchange:clearing` (a licence fee paid straight to the exchange);
routing moves it to what the exchange owes each payee (`payable:…`) and to its commission
income; a payout paid — the clearing account's statement or the payee's shows the transfer,
whichever first (market/payments/paying.py) — moves it out of clearing.

A pool's side: its fund (`pool:N:fund`, capitalised from `pool:N:capital`), compensation
paid that recoveries may bring back (`pool:N:recoverable`), guarantee deposits parked
until write-off (`pool:N:parked`), the part of a payout a short receipt left outstanding
(`pool:N:shortfall`) and what the manager wrote off of it (`pool:N:written_off`, bank
charges most often).

A code is for programs and the books; people read `label()`, in their language and with
the pool's name. The name stored with each account is the catalog key of its label.
"""

from __future__ import annotations

from typing import Any, Final

from market import i18n
from market.ledger import Account

COMMISSION: Final = Account("income:commission", "income", "pool.account.commission")
POOL_ACCOUNTS: Final = ("fund", "capital", "recoverable", "parked", "shortfall", "written_off")


def pool_fund(pool_id: int, org_id: int) -> Account:
    return Account(f"pool:{pool_id}:fund", "asset", "pool.account.fund", owner_org_id=org_id)


def pool_capital(pool_id: int, org_id: int) -> Account:
    return Account(f"pool:{pool_id}:capital", "equity", "pool.account.capital", owner_org_id=org_id)


def pool_recoverable(pool_id: int, org_id: int) -> Account:
    return Account(
        f"pool:{pool_id}:recoverable", "asset", "pool.account.recoverable", owner_org_id=org_id
    )


def pool_parked(pool_id: int, org_id: int) -> Account:
    return Account(f"pool:{pool_id}:parked", "asset", "pool.account.parked", owner_org_id=org_id)


def pool_shortfall(pool_id: int, org_id: int) -> Account:
    """What a short receipt left outstanding of a payout to the pool."""
    return Account(
        f"pool:{pool_id}:shortfall", "asset", "pool.account.shortfall", owner_org_id=org_id
    )


def pool_written_off(pool_id: int, org_id: int) -> Account:
    """Shortfalls the manager wrote off (bank charges deducted in transit, mostly)."""
    return Account(
        f"pool:{pool_id}:written_off", "expense", "pool.account.written_off", owner_org_id=org_id
    )


def payable(payee_kind: str, key: int | str, org_id: int | None) -> Account:
    """What the exchange owes one payee of the waterfall until the transfer is confirmed."""
    return Account(
        f"payable:{payee_kind}:{key}",
        "liability",
        "pool.account.payable.pool" if payee_kind == "pool" else "pool.account.payable.other",
        owner_org_id=org_id,
    )


def payout_payable(payout: Any) -> Account:
    """The `payable` account a payout (a `payouts` row) discharges when it is paid."""
    if payout["payee_kind"] == "pool":
        return payable("pool", payout["pool_id"], payout["payee_org_id"])
    if payout["payee_kind"] == "pledgor":
        return payable("pledgor", payout["pledgor_id"], payout["payee_org_id"])
    if payout["payee_org_id"] is None:
        raise ValueError("a party's payout with no organisation has no payable account")
    return payable("org", payout["payee_org_id"], payout["payee_org_id"])


def pool_name(lang: i18n.Lang, pool: Any) -> str:
    """A pool's name in `lang` (its English name where it has one); a row or a PoolOut."""
    name_en = _get(pool, "name_en")
    return str(name_en if lang == "en" and name_en else _get(pool, "name"))


def _pool_name(lang: i18n.Lang, pool: Any, pool_id: str) -> str:
    """The pool's name when `pool` is the one the code names, else its number."""
    if pool is not None and str(_get(pool, "id")) == pool_id:
        return pool_name(lang, pool)
    return i18n.gettext(lang, "pool.account.pool_no", id=pool_id)


def _get(obj: Any, name: str) -> Any:
    return obj[name] if hasattr(obj, "keys") else getattr(obj, name, None)


def label(lang: i18n.Lang, code: str, pool: Any = None) -> str:
    """An account as people call it, in `lang`: `pool:7:fund` → "中山资金池 · 资金余额".
    `pool` (a row or a PoolOut) names the pool whose accounts the reader looks at."""
    parts = code.split(":")
    if len(parts) == 3 and parts[0] == "pool" and parts[2] in POOL_ACCOUNTS:
        return i18n.gettext(lang, f"pool.account.{parts[2]}", pool=_pool_name(lang, pool, parts[1]))
    if len(parts) == 3 and parts[:2] == ["payable", "pool"]:
        return i18n.gettext(
            lang, "pool.account.payable.pool", pool=_pool_name(lang, pool, parts[2])
        )
    if len(parts) >= 2 and parts[0] == "payable":
        return i18n.gettext(lang, "pool.account.payable.other")
    if code == COMMISSION.code:
        return i18n.gettext(lang, "pool.account.commission")
    if code == "exchange:clearing":
        return i18n.gettext(lang, "pool.account.clearing")
    if len(parts) == 3 and parts[0] in ("proceeds", "forfeit") and parts[1] == "lot":
        return i18n.gettext(lang, f"pool.account.{parts[0]}", lot=parts[2])
    if code == "other":
        return i18n.gettext(lang, "pool.drill.other")
    return i18n.gettext(lang, "pool.account.unknown", code=code)
