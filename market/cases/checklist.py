"""The disclosure checklist of a disposal case (issue 3 item 3).

Every case discloses the general items; a case with a patent among its collateral also
discloses the patent items. A lot cannot be published while an item is missing (the lots
area asks `case_for_lot(...).missing_items`).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec


class ChecklistItem(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    zh: str
    en: str
    # Asset kinds that make the item required; None: every case.
    for_kinds: frozenset[str] | None = None


# issue 3 item 3: "the valuation report, ownership and encumbrances, pre-emptive right
# holders, payment accounts, taxes and who pays, plus for patents the file history, chain
# of title, existing licences and annuity status". Order is the order shown.
ITEMS: tuple[ChecklistItem, ...] = (
    ChecklistItem(key="valuation_report", zh="评估报告", en="Valuation report"),
    ChecklistItem(
        key="ownership_encumbrances",
        zh="权属及权利负担说明",
        en="Ownership and encumbrances",
    ),
    ChecklistItem(key="preemptive_holders", zh="优先购买权人情况", en="Pre-emptive right holders"),
    ChecklistItem(key="payment_accounts", zh="收款账户", en="Payment accounts"),
    ChecklistItem(key="taxes_fees", zh="税费及承担方式", en="Taxes, fees and who pays them"),
    ChecklistItem(
        key="file_history",
        zh="审查档案",
        en="Prosecution file history",
        for_kinds=frozenset({"patent"}),
    ),
    ChecklistItem(
        key="chain_of_title",
        zh="权利转移记录",
        en="Chain of title",
        for_kinds=frozenset({"patent"}),
    ),
    ChecklistItem(
        key="existing_licences",
        zh="已有许可情况",
        en="Existing licences",
        for_kinds=frozenset({"patent"}),
    ),
    ChecklistItem(
        key="annuity_status",
        zh="年费缴纳情况",
        en="Annuity payment status",
        for_kinds=frozenset({"patent"}),
    ),
)
BY_KEY: dict[str, ChecklistItem] = {item.key: item for item in ITEMS}

# An internal valuation's stored explanation is its report: the item needs no upload then.
VALUATION_REPORT = "valuation_report"


class DisclosureStatus(msgspec.Struct, frozen=True, kw_only=True):
    required: list[str]
    present: list[str]
    missing: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing


def required_items(asset_kinds: Iterable[str]) -> list[str]:
    """The checklist keys a case with collateral of these kinds must disclose."""
    kinds = set(asset_kinds)
    return [i.key for i in ITEMS if i.for_kinds is None or i.for_kinds & kinds]


def disclosure(
    asset_kinds: Iterable[str], uploaded_items: Iterable[str], valuation_method: str | None
) -> DisclosureStatus:
    """What is required, what is there, what is missing: a pure function of the case."""
    required = required_items(asset_kinds)
    have = set(uploaded_items)
    if valuation_method == "internal":
        have.add(VALUATION_REPORT)
    present = [key for key in required if key in have]
    return DisclosureStatus(
        required=required,
        present=present,
        missing=[key for key in required if key not in have],
    )
