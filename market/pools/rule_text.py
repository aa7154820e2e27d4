"""The pools' words, in one language at a time.

`describe_rule` reads a `PoolRule` aloud as lines (catalog keys and numbers), one per
clause; `say` renders a line — a rule's clause, a step of a claim's explanation, the NPL
fuse — in the reader's language. `Words` bundles what a page needs to name the pools'
internal values: lines, the parties of a rule, the payees of the waterfall, the ledger
accounts and where a receipt came from. Pure: no database.
"""

from __future__ import annotations

from typing import Any

from market import i18n
from market.money import format_cny
from market.pools import accounts
from market.pools.models import WORDS, Line
from market.pools.rules import FUND, PoolRule, shares_param

# Parties the catalog names (`pool.party.<name>`); a rule may name others, with a label.
KNOWN_PARTIES = ("fund", "bank", "insurer", "evaluator", "guarantor")
# How each language lists things in a sentence, and puts what someone is after a name.
_LIST_SEPARATOR: dict[i18n.Lang, str] = {"zh": "、", "en": ", "}
_NAMED: dict[i18n.Lang, str] = {"zh": "{name}（{what}）", "en": "{name} ({what})"}


def percent(bp: int) -> str:
    return f"{bp / 100:g} %"


def party(lang: i18n.Lang, name: str, label: str = "") -> str:
    """A party of a rule as people call it: the catalog's word, else the rule's label."""
    if name in KNOWN_PARTIES:
        return i18n.gettext(lang, f"pool.party.{name}")
    return label or i18n.gettext(lang, "pool.party.other", name=name)


def _shown(lang: i18n.Lang, name: str, value: Any) -> Any:
    if name.endswith("_fen") and isinstance(value, int) and not isinstance(value, bool):
        return format_cny(value)
    if name.endswith("_bp") and isinstance(value, int) and not isinstance(value, bool):
        return percent(value)
    if name == "shares" and isinstance(value, list):
        return " : ".join(
            f"{party(lang, str(s['party']), str(s.get('label', '')))} {s['weight']}" for s in value
        )
    if name == "tiers" and isinstance(value, list):
        return _LIST_SEPARATOR[lang].join(
            i18n.gettext(lang, "pool.rule.tier_top", rate_bp=percent(t["rate_bp"]))
            if t.get("up_to_fen") is None
            else i18n.gettext(
                lang,
                "pool.rule.tier",
                up_to_fen=format_cny(t["up_to_fen"]),
                rate_bp=percent(t["rate_bp"]),
            )
            for t in value
        )
    if name == "wait" and isinstance(value, dict):
        months, days = value.get("months", 0), value.get("days", 0)
        if months and days:
            return i18n.gettext(lang, "pool.rule.wait_both", months=months, days=days)
        if months:
            return i18n.gettext(lang, "pool.rule.wait_months", n=months)
        return i18n.gettext(lang, "pool.rule.wait_days", n=days)
    return value


def say(lang: i18n.Lang, line: Line) -> str:
    """A line in `lang`, its numbers written as people read them."""
    if line.key == WORDS:
        return str(line.params.get(lang, ""))
    shown = {name: _shown(lang, name, value) for name, value in line.params.items()}
    return i18n.gettext(lang, line.key, **shown)


def describe_rule(rule: PoolRule) -> list[Line]:
    """The rule read aloud, one line per clause."""
    out: list[Line] = []
    shares = shares_param(rule)
    if rule.tiers:
        tiers = [{"up_to_fen": t.principal_up_to_fen, "rate_bp": t.rate_bp} for t in rule.tiers]
        out.append(Line(key="pool.rule.tiered", params={"tiers": tiers, "shares": shares}))
    else:
        fund = next(p for p in rule.shares if p.name == FUND)
        out.append(
            Line(
                key="pool.rule.shared",
                params={
                    "shares": shares,
                    "fund": fund.weight,
                    "total": sum(p.weight for p in rule.shares),
                },
            )
        )
    basis = "principal" if rule.basis == "principal_loss" else "net"
    out.append(Line(key=f"pool.rule.basis_{basis}"))
    if rule.cap_per_loan_fen is not None:
        out.append(Line(key="pool.rule.cap", params={"cap_fen": rule.cap_per_loan_fen}))
    if rule.aggregate_limit_bp is not None:
        out.append(Line(key="pool.rule.limit", params={"limit_bp": rule.aggregate_limit_bp}))
    if rule.annual_budget_fen is not None:
        out.append(Line(key="pool.rule.budget", params={"budget_fen": rule.annual_budget_fen}))
    wait = {"months": rule.wait_months, "days": rule.wait_days}
    if rule.timing == "after_loss":
        out.append(Line(key="pool.rule.after_loss"))
    else:
        out.append(Line(key=f"pool.rule.{rule.timing}", params={"wait": wait}))
    if rule.max_loan_fen is not None:
        out.append(Line(key="pool.rule.max_loan", params={"max_fen": rule.max_loan_fen}))
    if rule.fuse is not None:
        f = rule.fuse
        out.append(
            Line(
                key="pool.rule.fuse",
                params={
                    "threshold_bp": f.npl_threshold_bp,
                    "share_bp": f.renewable_share_bp,
                    "weight_bp": f.renewal_weight_bp,
                },
            )
        )
    return out


def source(lang: i18n.Lang, text: str) -> str:
    """Where a receipt came from, from its idempotency key (`sale:12`, `manual:LIC-1` …)."""
    head, _, rest = text.partition(":")
    if head == "manual":
        return i18n.gettext(lang, "bankpool.source.manual", reference=rest)
    if head == "sale" and rest.isdigit():
        return i18n.gettext(lang, "bankpool.source.sale", sale=rest)
    if head == "forfeit" and rest.startswith("sale:"):
        return i18n.gettext(lang, "bankpool.source.forfeit", sale=rest.removeprefix("sale:"))
    return i18n.gettext(lang, "bankpool.source.other", source=text)


class Words:
    """A page's helper for the pools' internal values, in the page's language:
    `{{ say.line(l) }}`, `{{ say.payee(p.payee_kind, p.payee, p.party) }}` …"""

    def __init__(self, lang: i18n.Lang, pool: Any = None) -> None:
        self.lang = lang
        self.pool = pool  # the pool whose accounts a page shows (its `code`, `name`, …)

    def line(self, line: Line) -> str:
        return say(self.lang, line)

    def party(self, name: str, label: str = "") -> str:
        return party(self.lang, name, label)

    def payee(self, kind: str, name: str, party_name: str | None = None) -> str:
        """Who a distribution or payout goes to: the payee's name and what it is."""
        if kind == "platform":
            return i18n.gettext(self.lang, "bankpool.payee.platform")
        if not name:  # a party of the rule with no organisation here
            return party(self.lang, party_name or "")
        what = (
            party(self.lang, party_name)
            if kind == "party" and party_name
            else i18n.gettext(self.lang, f"bankpool.payee.{kind}")
        )
        return _NAMED[self.lang].format(name=name, what=what)

    def account(self, code: str) -> str:
        return accounts.label(self.lang, code, self.pool)

    def source(self, text: str) -> str:
        return source(self.lang, text)

    def pool_name(self, pool: Any) -> str:
        return accounts.pool_name(self.lang, pool)
