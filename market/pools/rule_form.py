"""A pool rule as a form: each field of `PoolRule` (market/pools/rules.py) as a labelled
input, read back into the same JSON document the API takes, so one validation — the rule
struct's, `parse_rule` in the `add_rule_version` command — judges both; a refusal's path
in the rule (`rule.shares[1].weight`) is shown beside the input it came from.

Amounts are typed in yuan (market.money.parse_cny), rates in percent (80, 2.5), weights
and waiting periods as whole numbers. Empty optional fields are left out of the document
(the rule's defaults); empty rows of parties and tiers are skipped.
"""

from __future__ import annotations

import re
from typing import Any, Final

from market.money import MAX_FEN, format_cny
from market.pools.rules import PoolRule
from market.web import Form

EXTRA_ROWS: Final = 2  # empty rows offered for another party or tier
MIN_SHARE_ROWS: Final = 4
MIN_TIER_ROWS: Final = 4
# Fields of the rule typed in yuan / in percent, by their form name.
YUAN_FIELDS: Final = {
    "cap_per_loan": "cap_per_loan_fen",
    "annual_budget": "annual_budget_fen",
    "max_loan": "max_loan_fen",
}
PERCENT_FIELDS: Final = {"aggregate_limit": "aggregate_limit_bp"}
FUSE_FIELDS: Final = {
    "fuse_npl_threshold": "npl_threshold_bp",
    "fuse_renewable_share": "renewable_share_bp",
    "fuse_renewal_weight": "renewal_weight_bp",
}
_ITEM = re.compile(r"^rule\.(shares|tiers)\[(\d+)\]\.(\w+)")
_SHARE_FIELD: Final = {"name": "name", "weight": "weight", "label": "label", "org_id": "org"}
_TIER_FIELD: Final = {"principal_up_to_fen": "up_to", "rate_bp": "rate"}


def pct(bp: int | None) -> str:
    return "" if bp is None else f"{bp / 100:g}"


def yuan(fen: int | None) -> str:
    return "" if fen is None else format_cny(fen, symbol=False)


def values_of(rule: PoolRule | None) -> dict[str, str]:
    """A rule's fields as the form shows them (a new version starts from the one in
    force)."""
    if rule is None:
        return {"share_name_0": "fund", "share_name_1": "bank", "timing": "after_loss"}
    out: dict[str, str] = {
        "basis": rule.basis,
        "timing": rule.timing,
        "wait_days": str(rule.wait_days),
        "wait_months": str(rule.wait_months),
        "aggregate_limit": pct(rule.aggregate_limit_bp),
        "cap_per_loan": yuan(rule.cap_per_loan_fen),
        "annual_budget": yuan(rule.annual_budget_fen),
        "max_loan": yuan(rule.max_loan_fen),
    }
    for i, p in enumerate(rule.shares):
        out |= {
            f"share_name_{i}": p.name,
            f"share_weight_{i}": str(p.weight),
            f"share_label_{i}": p.label,
            f"share_org_{i}": "" if p.org_id is None else str(p.org_id),
        }
    for i, t in enumerate(rule.tiers):
        out |= {f"tier_up_to_{i}": yuan(t.principal_up_to_fen), f"tier_rate_{i}": pct(t.rate_bp)}
    if rule.fuse is not None:
        out["fuse_on"] = "1"
        for name, key in FUSE_FIELDS.items():
            out[name] = pct(getattr(rule.fuse, key))
    return out


def rows(values: dict[str, str], prefix: str, least: int) -> int:
    """How many rows of parties (`share`) or tiers (`tier`) the form shows."""
    used = [
        int(m.group(1))
        for key, text in values.items()
        if text.strip() and (m := re.match(rf"^{prefix}_\w+?_(\d+)$", key))
    ]
    return max(least, (max(used) + 1 if used else 0) + EXTRA_ROWS)


class RuleForm:
    """The rule document read from a form, and where each of its items came from."""

    def __init__(self, form: Form) -> None:
        self.form = form
        self.share_rows: list[int] = []  # the form's row of each party in the document
        self.tier_rows: list[int] = []

    def _whole(self, name: str) -> int | None:
        text = self.form.text(name)
        if not text:
            return None
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            self.form.fail(name, "whole_number")
            return None
        return int(text)

    def _pct(self, name: str) -> int | None:
        from market.lots.forms import percent_bp

        return percent_bp(self.form, name)

    def read(self) -> dict[str, Any]:
        """The document; a value that is not a number fails beside its input (the form
        then has errors and nothing is submitted)."""
        f = self.form
        raw: dict[str, Any] = {}
        shares: list[dict[str, Any]] = []
        for i in range(rows(f.values, "share", 0)):
            name = f.text(f"share_name_{i}")
            weight = self._whole(f"share_weight_{i}")
            if not name and weight is None:
                continue
            party: dict[str, Any] = {"name": name, "weight": 0 if weight is None else weight}
            if label := f.text(f"share_label_{i}"):
                party["label"] = label
            if f.text(f"share_org_{i}"):
                party["org_id"] = self._whole(f"share_org_{i}")
            shares.append(party)
            self.share_rows.append(i)
        raw["shares"] = shares
        tiers: list[dict[str, Any]] = []
        for i in range(rows(f.values, "tier", 0)):
            rate = self._pct(f"tier_rate_{i}")
            up_to = f.yuan(f"tier_up_to_{i}", max_fen=MAX_FEN, required=False)
            if rate is None and up_to is None:
                continue
            tiers.append({"principal_up_to_fen": up_to, "rate_bp": 0 if rate is None else rate})
            self.tier_rows.append(i)
        if tiers:
            raw["tiers"] = tiers
        for name in ("basis", "timing"):
            if text := f.text(name):
                raw[name] = text
        for name in ("wait_days", "wait_months"):
            if (n := self._whole(name)) is not None:
                raw[name] = n
        for name, key in YUAN_FIELDS.items():
            if (fen := f.yuan(name, max_fen=MAX_FEN, required=False)) is not None:
                raw[key] = fen
        for name, key in PERCENT_FIELDS.items():
            if (bp := self._pct(name)) is not None:
                raw[key] = bp
        if f.text("fuse_on"):
            fuse: dict[str, Any] = {}
            for name, key in FUSE_FIELDS.items():
                if (bp := self._pct(name)) is not None:
                    fuse[key] = bp
            raw["fuse"] = fuse
        return raw

    def field(self, path: str | None) -> str:
        """The form's input for a refusal's path in the rule (`rule.shares[1].weight` →
        `share_weight_<row>`); a refusal of the whole rule is the form's."""
        if not path or path == "rule":
            return "form"
        if m := _ITEM.match(path):
            group, index, leaf = m.group(1), int(m.group(2)), m.group(3)
            if group == "shares" and index < len(self.share_rows) and leaf in _SHARE_FIELD:
                return f"share_{_SHARE_FIELD[leaf]}_{self.share_rows[index]}"
            if group == "tiers" and index < len(self.tier_rows) and leaf in _TIER_FIELD:
                return f"tier_{_TIER_FIELD[leaf]}_{self.tier_rows[index]}"
            return group
        name = path.removeprefix("rule.")
        if name.startswith("fuse."):
            leaf = name.removeprefix("fuse.")
            return next((k for k, v in FUSE_FIELDS.items() if v == leaf), "fuse_on")
        for form_name, key in (YUAN_FIELDS | PERCENT_FIELDS).items():
            if name == key:
                return form_name
        if name in ("shares", "tiers", "basis", "timing", "wait_days", "wait_months", "fuse"):
            return "fuse_on" if name == "fuse" else name
        return path if path in ("effective_from", "note") else "form"
