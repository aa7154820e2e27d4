"""China's working-day calendar (docs/rules.md §Listing, "Working days")."""

from __future__ import annotations

from datetime import date

import pytest

from market.errors import Conflict
from market.listing import calendar
from market.listing.calendar import add_working_days, is_working_day, parse


def test_the_2026_national_day_week_and_its_make_up_days() -> None:
    assert is_working_day(date(2026, 9, 20))  # Sunday, worked (调休上班)
    assert not is_working_day(date(2026, 9, 25))  # Mid-Autumn, a Friday
    assert all(not is_working_day(date(2026, 10, d)) for d in range(1, 8))
    assert is_working_day(date(2026, 10, 8)) and is_working_day(date(2026, 10, 9))
    assert is_working_day(date(2026, 10, 10))  # Saturday, worked
    assert not is_working_day(date(2026, 10, 11))  # an ordinary Sunday
    # The day counted from is not counted: the first working day after 30 Sep is 8 Oct.
    assert add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    assert add_working_days(date(2026, 9, 18), 1) == date(2026, 9, 20)
    assert add_working_days(date(2026, 9, 7), 20) == date(2026, 10, 10)


def test_the_spring_festival() -> None:
    # 2026: 15–23 Feb off, Saturdays 14 and 28 Feb worked.
    assert is_working_day(date(2026, 2, 14))
    assert all(not is_working_day(date(2026, 2, d)) for d in range(15, 24))
    assert add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
    assert add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)
    assert is_working_day(date(2026, 2, 28))
    # 2025: 28 Jan – 4 Feb off, Sunday 26 Jan and Saturday 8 Feb worked.
    assert is_working_day(date(2025, 1, 26)) and is_working_day(date(2025, 2, 8))
    assert add_working_days(date(2025, 1, 27), 1) == date(2025, 2, 5)
    # 2027 holds only the statutory days until the notice is entered (provisional).
    assert not is_working_day(date(2027, 2, 8)) and is_working_day(date(2027, 2, 9))


def test_the_data_is_checked_and_2027_is_marked_provisional() -> None:
    cal = calendar.calendar()
    assert sorted(cal.years) == [2025, 2026, 2027]
    assert cal.provisional_years() == [2027]
    assert {y.status for n, y in cal.years.items() if n < 2027} == {"official"}
    good = 'status = "official"\nsource = "x"\n'
    with pytest.raises(ValueError, match="weekday"):
        parse(f'[years.2026]\n{good}holidays = []\nworkdays = ["2026-09-21"]\n')
    with pytest.raises(ValueError, match="another year"):
        parse(f'[years.2026]\n{good}holidays = ["2025-10-01"]\nworkdays = []\n')
    with pytest.raises(ValueError, match="holiday and a workday"):
        parse(f'[years.2026]\n{good}holidays = ["2026-10-10"]\nworkdays = ["2026-10-10"]\n')
    with pytest.raises(ValueError, match="repeated"):
        parse(f'[years.2026]\n{good}holidays = ["2026-10-01", "2026-10-01"]\nworkdays = []\n')
    with pytest.raises(Conflict) as refused:
        is_working_day(date(2028, 1, 3))
    assert refused.value.code == "calendar_year_missing"
