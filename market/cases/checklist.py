"""The disclosure checklist of a disposal case (docs/rules.md §Disposal cases and valuation).

Every case discloses the general items; a case with a patent among its collateral also
discloses the patent items. A lot cannot be published while an item is missing (the lots
area asks `case_for_lot(...).missing_items`). An item is a key; its name in each language
is the catalog's `cases.item.<key>` (`label`).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from market import i18n


class ChecklistItem(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    # Asset kinds that make the item required; None: every case.
    for_kinds: frozenset[str] | None = None


_PATENT = frozenset({"patent"})

# What a disposal discloses: the valuation report, ownership and encumbrances, pre-emptive
# right holders, payment accounts, taxes and who pays, and for patents the file history,
# chain of title, existing licences and annuity status (docs/rules.md §Disposal cases and
# valuation). Order is the order shown.
ITEMS: tuple[ChecklistItem, ...] = (
    ChecklistItem(key="valuation_report"),
    ChecklistItem(key="ownership_encumbrances"),
    ChecklistItem(key="preemptive_holders"),
    ChecklistItem(key="payment_accounts"),
    ChecklistItem(key="taxes_fees"),
    ChecklistItem(key="file_history", for_kinds=_PATENT),
    ChecklistItem(key="chain_of_title", for_kinds=_PATENT),
    ChecklistItem(key="existing_licences", for_kinds=_PATENT),
    ChecklistItem(key="annuity_status", for_kinds=_PATENT),
)
BY_KEY: dict[str, ChecklistItem] = {item.key: item for item in ITEMS}

# Documents a case keeps that are not disclosed (never on a lot page, never required): the
# pledgor's written consent to an agreed disposal and the appraisal of the equity of a
# pledge-to-equity (docs/rules.md §Acquisition and pledge-to-equity).
PRIVATE_ITEMS: tuple[str, ...] = ("pledgor_consent", "equity_appraisal")

# An internal valuation's stored explanation is its report: the item needs no upload then.
VALUATION_REPORT = "valuation_report"


class DisclosureStatus(msgspec.Struct, frozen=True, kw_only=True):
    required: list[str]
    present: list[str]
    missing: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing


def label(lang: i18n.Lang, key: str) -> str:
    """An item's name in `lang`; an unknown key is shown as it is."""
    known = key in BY_KEY or key in PRIVATE_ITEMS
    return i18n.gettext(lang, f"cases.item.{key}") if known else key


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
