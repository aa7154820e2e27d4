"""Monitoring of pledged IP (大数据监测, docs/rules.md §Collateral and monitoring).

`assess` is the rule: a pure function from an asset's facts and a date to the flags it
deserves. `refresh_flags` makes a bank's open flags match it: a flag is raised once (the
partial unique index monitoring_flags_open) and resolved when its condition clears, so
running it twice changes nothing. The daily job (jobs.py, through the command
`monitor_bank`) and every CSV import call it.

A flag keeps the facts of the day it was raised (`flag_detail`: dates, the legal status,
days left), never words: the pages and the bank's notification render them in the
reader's language.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

import msgspec

from market.collateral.locks import lock_bank_registry
from market.collateral.models import FlagKind
from market.collateral.rules import add_months
from market.commands import UnitOfWork, command
from market.db import Queries
from market.errors import BadValue
from market.notify import events

Q = Queries("collateral")

# CNIPA's deadlines are dates in Beijing time, whatever the display time zone.
BUSINESS_TZ: Final = ZoneInfo("Asia/Shanghai")


class MonitoringRules(msgspec.Struct, frozen=True, kw_only=True):
    """The numbers of the monitoring rule, as data with defaults (docs/rules.md
    §Collateral and monitoring)."""

    # "annuity is due": the paid-through date falls within this many days.
    annuity_notice_days: int = 30
    # Patent Law Implementing Rules art. 98 (2010; art. 116 since 2024): an annuity not paid
    # on time may still be paid, with a surcharge, within six months; after that the patent
    # lapses.
    annuity_grace_months: int = 6
    # "expiring soon": the term (patents) or registration (trademarks) ends within this many days.
    expiry_notice_days: int = 90

    def __post_init__(self) -> None:
        for name in ("annuity_notice_days", "annuity_grace_months", "expiry_notice_days"):
            if getattr(self, name) < 0:
                raise BadValue("monitoring_rule_negative", field=name)


DEFAULT_RULES: Final = MonitoringRules()


class Assessable(Protocol):
    """The facts of an asset the rule looks at (AssetDetail and DB rows both have them)."""

    @property
    def kind(self) -> str: ...
    @property
    def legal_status(self) -> str: ...
    @property
    def annuity_paid_through(self) -> date | None: ...
    @property
    def term_ends_on(self) -> date | None: ...
    @property
    def valid_until(self) -> date | None: ...


class AssetFacts(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    legal_status: str
    annuity_paid_through: date | None = None
    term_ends_on: date | None = None
    valid_until: date | None = None


def _protection_ends(asset: Assessable) -> date | None:
    if asset.kind == "patent":
        return asset.term_ends_on
    if asset.kind == "trademark":
        return asset.valid_until
    return None  # software copyright: 50 years from publication, not tracked


def assess(asset: Assessable, today: date, rules: MonitoringRules = DEFAULT_RULES) -> set[FlagKind]:
    """The flags an asset deserves on `today`.

    * legal status lapsed / invalidated / expired → that flag;
    * protection over (term end or trademark validity before today) → expired; ending
      within `expiry_notice_days` → expiring;
    * a granted patent (status valid) with an annuity paid through a date: within
      `annuity_notice_days` ahead → annuity_due; past, but within the grace months →
      annuity_grace; past the grace period → lapsed (the register may not show it yet).
    """
    flags: set[FlagKind] = set()
    if asset.legal_status == "lapsed":
        flags.add("lapsed")
    elif asset.legal_status == "invalidated":
        flags.add("invalidated")
    elif asset.legal_status == "expired":
        flags.add("expired")
    if flags:
        return flags
    ends = _protection_ends(asset)
    if ends is not None:
        if ends < today:
            return {"expired"}
        if (ends - today).days <= rules.expiry_notice_days:
            flags.add("expiring")
    paid = asset.annuity_paid_through
    if asset.kind == "patent" and asset.legal_status == "valid" and paid is not None:
        if paid < today:
            if today <= add_months(paid, rules.annuity_grace_months):
                flags.add("annuity_grace")
            else:
                flags.add("lapsed")
        elif (paid - today).days <= rules.annuity_notice_days:
            flags.add("annuity_due")
    return flags


# The flags that mean the right is gone, not merely at risk: a lot carrying such an asset is
# not published until the asset is withdrawn from it (docs/rules.md §Lot lifecycle).
GONE: Final[frozenset[str]] = frozenset({"lapsed", "invalidated", "expired"})


def lapsed_on(asset: Assessable) -> date | None:
    """The day a patent lapsed for an unpaid annuity: the due date of the first annuity not
    paid, the day after the one it is paid through (Implementing Rules of the Patent Law,
    art. 116: the right ends from the expiry of the term for paying it) — not the day the
    lapse was noticed. None when the paid-through date is not known."""
    paid = asset.annuity_paid_through
    if asset.kind != "patent" or paid is None:
        return None
    return paid + timedelta(days=1)


def flag_detail(
    asset: Assessable, kind: FlagKind, today: date, rules: MonitoringRules = DEFAULT_RULES
) -> dict[str, Any]:
    """What the notification will tell the bank about the flag, as of the day it is raised."""
    detail: dict[str, Any] = {"as_of": today.isoformat(), "legal_status": asset.legal_status}
    paid = asset.annuity_paid_through
    if kind in ("annuity_due", "annuity_grace", "lapsed") and paid is not None:
        detail["annuity_paid_through"] = paid.isoformat()
        detail["grace_ends_on"] = add_months(paid, rules.annuity_grace_months).isoformat()
        detail["days"] = (paid - today).days
    ends = _protection_ends(asset)
    if kind in ("expiring", "expired") and ends is not None:
        detail["ends_on"] = ends.isoformat()
        detail["days"] = (ends - today).days
    return detail


def business_day(at: datetime) -> date:
    return at.astimezone(BUSINESS_TZ).date()


class FlagChanges(msgspec.Struct, frozen=True, kw_only=True):
    assets: int
    raised: int
    resolved: int


async def refresh_flags(
    uow: UnitOfWork, bank_org_id: int, rules: MonitoringRules = DEFAULT_RULES
) -> FlagChanges:
    """Make the bank's open flags those `assess` gives today, in the caller's unit of
    work; the bank is told of the flags raised (market/notify/events.py).

    The caller holds the bank's registry lock (locks.lock_bank_registry), so an import and
    the monitoring run never interleave.
    """
    conn, at = uow.conn, uow.at
    today = business_day(at)
    rows = await conn.fetch(Q.monitor_assets, bank_org_id)
    wanted: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        facts = AssetFacts(
            kind=row["kind"],
            legal_status=row["legal_status"],
            annuity_paid_through=row["annuity_paid_through"],
            term_ends_on=row["term_ends_on"],
            valid_until=row["valid_until"],
        )
        for kind in assess(facts, today, rules):
            wanted[(row["id"], kind)] = flag_detail(facts, kind, today, rules)
    open_now = {(r["asset_id"], r["kind"]) for r in await conn.fetch(Q.open_flag_keys, bank_org_id)}
    to_raise = sorted(set(wanted) - open_now)
    to_resolve = sorted(open_now - set(wanted))
    if to_raise:
        await conn.execute(
            Q.raise_flags,
            bank_org_id,
            at,
            [a for a, _ in to_raise],
            [k for _, k in to_raise],
            [msgspec.json.encode(wanted[key]).decode() for key in to_raise],
        )
        await events.monitoring_flags_raised(uow, bank_org_id, to_raise)
    if to_resolve:
        await conn.execute(
            Q.resolve_flags,
            bank_org_id,
            at,
            [a for a, _ in to_resolve],
            [k for _, k in to_resolve],
        )
    return FlagChanges(assets=len(rows), raised=len(to_raise), resolved=len(to_resolve))


@command(None)
async def monitor_bank(uow: UnitOfWork, bank_org_id: int) -> FlagChanges:
    """The daily run for one bank: its open flags become those `assess` gives today, and
    a change is audited in the bank's chain.

    Concurrency: the bank's registry lock is taken first, as an import's write takes it,
    so the two never interleave; a second run finds nothing to change (a flag is open once
    per asset and kind, the partial unique index monitoring_flags_open).
    """
    await lock_bank_registry(uow.conn, bank_org_id)
    changes = await refresh_flags(uow, bank_org_id)
    if changes.raised or changes.resolved:
        uow.audit(
            "collateral.monitor",
            "monitoring_flags",
            bank_org_id,
            chain_org_id=bank_org_id,
            after={"raised": changes.raised, "resolved": changes.resolved},
        )
    return changes
