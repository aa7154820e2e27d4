"""The tax treatment of the exchange's fee (docs/rules.md §Invoices).

The fee — a commission or a buyer's premium — is the price of the exchange's brokerage
service (经纪代理服务, a modern service). VAT on it is charged at 6 % (中华人民共和国增值税法
第十条第三项, in force since 2026-01-01; before it 财税〔2016〕36号 附件1 第十五条). The
fee is an amount including VAT (价税合计): the invoice shows it split into the amount
without tax and the tax, each rounded to the fen the way the tax authority's invoicing
system rounds (half up), the two adding up to the fee.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class InvoicePolicy(msgspec.Struct, frozen=True, kw_only=True):
    # The VAT rate on the exchange's service fee, in basis points: 600 = 6 % (§Invoices).
    vat_rate_bp: Annotated[int, Meta(ge=0, le=10_000)] = 600
    # How many paid sales saving the details requests at once (the rest at the next save
    # or by hand); keeps one unit of work short.
    backlog_batch: Annotated[int, Meta(ge=1, le=10_000)] = 500


DEFAULT_POLICY = InvoicePolicy()


def split_tax(amount_fen: int, vat_rate_bp: int) -> tuple[int, int]:
    """(amount without tax, tax) of an amount including VAT at `vat_rate_bp`, in fen:
    net = amount / (1 + rate) rounded half up, tax = amount − net."""
    if amount_fen < 0 or not 0 <= vat_rate_bp <= 10_000:
        raise ValueError("an amount ≥ 0 and a rate of 0 … 10 000 basis points")
    denominator = 10_000 + vat_rate_bp
    net = (2 * amount_fen * 10_000 + denominator) // (2 * denominator)
    return net, amount_fen - net
