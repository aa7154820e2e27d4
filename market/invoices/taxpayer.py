"""纳税人识别号: the taxpayer number an invoice prints (docs/rules.md §Invoices).

Since 2015 a taxpayer's number is its unified social credit code (统一社会信用代码, 18
characters, GB 32100-2015, checked by market.validators.credit_code, check character
included). Numbers issued before it are still printed on invoices of taxpayers that never
re-registered: the 15-character tax registration number (6-digit administrative division
code + the 9-character organisation code of GB 11714) and the 20-character number of an
individual business (the holder's 18-character identity number + 2 digits).
"""

from __future__ import annotations

import re
from typing import Final

from market.errors import BadValue
from market.validators import _fold, credit_code

_OLD_15: Final = re.compile(r"[0-9]{6}[0-9A-Z]{8}[0-9X]")
_OLD_20: Final = re.compile(r"[0-9]{17}[0-9X][0-9]{2}")


def taxpayer_number(s: str) -> str:
    """The normalised taxpayer number, or BadValue naming what is wrong with it."""
    number = "".join(_fold(s).split())
    if len(number) == 18:
        return credit_code(number)
    if len(number) == 15 and _OLD_15.fullmatch(number):
        return number
    if len(number) == 20 and _OLD_20.fullmatch(number):
        return number
    if len(number) in (15, 20):
        raise BadValue("taxpayer_number_bad_char", length=len(number))
    raise BadValue("taxpayer_number_length", length=len(number))
