"""China's working days (docs/rules.md §Listing, "Working days"): the calendar is data
(market/listing/working_days.toml), loaded once and checked.

A day is a working day when it is a Monday to Friday not listed as a holiday, or a
Saturday or Sunday listed as a make-up working day (调休上班). Periods counted in working
days start on the day after the one they are counted from (民法典 art. 201: the first
day is not counted). A day outside the years the file covers is refused
(`calendar_year_missing`), never guessed.
"""

from __future__ import annotations

import tomllib
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Literal

import msgspec

from market.errors import Conflict

DATA = Path(__file__).with_name("working_days.toml")

YearStatus = Literal["official", "provisional"]


class Year(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    status: YearStatus
    source: str
    holidays: frozenset[date]
    workdays: frozenset[date]


class Calendar(msgspec.Struct, frozen=True, kw_only=True):
    years: dict[int, Year]

    def year(self, day: date) -> Year:
        found = self.years.get(day.year)
        if found is None:
            raise Conflict(
                "calendar_year_missing",
                year=day.year,
                years=", ".join(str(y) for y in sorted(self.years)),
            )
        return found

    def is_working_day(self, day: date) -> bool:
        year = self.year(day)
        if day in year.workdays:
            return True
        return day.weekday() < 5 and day not in year.holidays

    def add_working_days(self, day: date, n: int) -> date:
        """The `n`th working day after `day` (`day` itself not counted); n ≥ 1."""
        if n < 1:
            raise ValueError("a period counts at least one working day")
        while n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                n -= 1
        return day

    def provisional_years(self) -> list[int]:
        return sorted(y for y, v in self.years.items() if v.status == "provisional")


def parse(text: str) -> Calendar:
    """The calendar in `text` (TOML), checked: each date in its own year, holidays never on
    a listed make-up day, make-up days only on a Saturday or Sunday, holidays never
    repeated. Raises ValueError naming the year and the day."""
    raw = tomllib.loads(text)
    years: dict[int, Year] = {}
    for key, body in raw.get("years", {}).items():
        number = int(key)
        year = msgspec.convert(body, Year, strict=False)
        for kind, days in (("holidays", body["holidays"]), ("workdays", body["workdays"])):
            if len(days) != len(set(days)):
                raise ValueError(f"working_days {number}: a day repeated in {kind}")
        for day in year.holidays | year.workdays:
            if day.year != number:
                raise ValueError(f"working_days {number}: {day} is in another year")
        both = year.holidays & year.workdays
        if both:
            raise ValueError(f"working_days {number}: {min(both)} is a holiday and a workday")
        weekday = [d for d in year.workdays if d.weekday() < 5]
        if weekday:
            raise ValueError(f"working_days {number}: make-up day {min(weekday)} is a weekday")
        years[number] = year
    if not years:
        raise ValueError("working_days: no year")
    return Calendar(years=years)


@cache
def calendar() -> Calendar:
    """The exchange's calendar, read from the data file once per process."""
    return parse(DATA.read_text(encoding="utf-8"))


def is_working_day(day: date) -> bool:
    return calendar().is_working_day(day)


def add_working_days(day: date, n: int) -> date:
    return calendar().add_working_days(day, n)
