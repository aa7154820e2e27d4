"""Date rules of the registry: patent terms and calendar months, as pure functions."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Final, Literal

PatentType = Literal["invention", "utility_model", "design"]

# Patent terms in years counted from the filing date (专利法 art. 42): invention 20,
# utility model 10, design 15 for applications filed from 2021-06-01 (the fourth amendment
# of the Patent Law took effect that day) and 10 for earlier ones.
INVENTION_YEARS: Final = 20
UTILITY_MODEL_YEARS: Final = 10
DESIGN_YEARS: Final = 15
DESIGN_YEARS_BEFORE_2021: Final = 10
DESIGN_15_YEARS_FROM: Final = date(2021, 6, 1)


def add_years(day: date, years: int) -> date:
    """The same calendar day `years` later; 29 February becomes 1 March in a common year.

    A 29 February anniversary that does not exist falls on 1 March, so the day before it
    (the last day of a term) is the month's last day, 28 February (民法典 art. 202: with
    no corresponding day, the month's last day ends the period).
    """
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def add_months(day: date, months: int) -> date:
    """The same day-of-month `months` later, or that month's last day if it is shorter."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def patent_term_years(patent_type: PatentType, filing_date: date) -> int:
    """Years of protection of a patent of this type filed on this day (专利法 art. 42)."""
    if patent_type == "invention":
        return INVENTION_YEARS
    if patent_type == "utility_model":
        return UTILITY_MODEL_YEARS
    if filing_date >= DESIGN_15_YEARS_FROM:
        return DESIGN_YEARS
    return DESIGN_YEARS_BEFORE_2021


def patent_term_end(patent_type: PatentType, filing_date: date) -> date:
    """The last day of protection (专利法 art. 42): the day before the filing date's
    anniversary.

    An invention filed 2023-03-15 is protected through 2043-03-14; a design filed
    2021-05-31 through 2031-05-30, one filed 2021-06-01 through 2036-05-31.
    """
    years = patent_term_years(patent_type, filing_date)
    return add_years(filing_date, years) - timedelta(days=1)
