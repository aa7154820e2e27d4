"""Royalties for years: what a licence contract makes due, when, and how late it is
(docs/rules.md §Licensing royalties).

Pure: no database, no clock — the day is passed in. A licence that disposes of a pledged
right (反向许可, DOMAIN.md §Disposal paths; consented by the pledgee, 民法典 art. 444)
pays a running royalty and a minimum annual royalty for years; every payment is a
recovery that the waterfall (market/pools/waterfall.py) routes like any other receipt.

* `RoyaltyTerms`: the contract's numbers, validated (`parse_terms` for stored or
  submitted JSON).
* `periods(terms)`: calendar quarters, halves or years from the start date, the first
  and last cut at the contract's start and end; each with its report and payment dates.
* `due_for(period, report, terms, year_to_date_fen)`: rate × net sales + units × per-unit
  fee, and in the last period of each royalty year (a calendar year) the top-up to that
  year's minimum, pro-rated by days for a short first or last year.
* `schedule(terms, reports)`: `due_for` over every period, with the year-to-date sums.
* `arrears_interest(...)` and `standing(schedule, payments, today)`: interest on late
  payment (simple, actual/365), what is paid and outstanding per period, the reminders
  owed and whether the bank may terminate.
* `parse_sales_report_csv(data)`: the licensee's net-sales report, all or nothing.

Every amount is integer fen; each amount is rounded once, to the fen, half up.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from market.collateral import csv_format
from market.collateral.csv_import import Problems, Undecodable, cell_text, decode
from market.collateral.rules import add_years
from market.errors import BadValue, Invalid
from market.money import MAX_FEN, parse_cny, percent_of

__all__ = [
    "Due",
    "Installment",
    "Payment",
    "Period",
    "PeriodStanding",
    "Reminder",
    "RoyaltyReminders",
    "RoyaltyTerms",
    "SalesLine",
    "Standing",
    "arrears_interest",
    "due_for",
    "minimum_for_year",
    "parse_sales_report_csv",
    "parse_terms",
    "periods",
    "schedule",
    "standing",
]

BP: Final = 10_000  # basis points in 100 %
DAYS_IN_YEAR: Final = 365  # the day count of late-payment interest: actual/365
# Late-payment interest when the contract names none (docs/rules.md §Licensing royalties):
# the one-year LPR of 20 May 2025 (3.0 %) plus 50 %, the top of the "LPR + 30–50 %" by
# which courts measure late-payment loss (SPC interpretation on sales contracts, 2020
# revision, art. 18; 民法典 art. 646 applies it to other paid contracts).
LATE_INTEREST_BP: Final = 450
# 0.1 % a day: anything above is a typing error (0.05 % a day, 1,825 bp a year, is what
# Chinese contracts usually write; 民法典 art. 585 lets a court reduce excessive damages).
MAX_LATE_INTEREST_BP: Final = 36_500
GRACE_DAYS: Final = 30  # unpaid this long after the payment date, the bank may terminate
REPORT_DUE_DAYS: Final = 15  # the sales report, days after the period ends
PAYMENT_DUE_DAYS: Final = 30  # the royalty, days after the period ends
# A patent lives at most 20 years (专利法 art. 42); no licence of one runs longer.
MAX_YEARS: Final = 20

PeriodKind = Literal["quarterly", "half_yearly", "yearly"]
Fen = Annotated[int, Meta(ge=0, le=MAX_FEN)]
Days = Annotated[int, Meta(ge=0, le=366)]
LeadDays = Annotated[int, Meta(ge=1, le=366)]


def _div_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, both non-negative (the one rounding)."""
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (2 * remainder >= denominator)


# --- the contract's terms --------------------------------------------------------------


class RoyaltyTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A licence contract's royalty numbers (docs/rules.md §Licensing royalties).

    `start` and `end` are the first and the last day of the royalty obligation, both
    included. Rates are basis points: 600 = 6 % of net sales; `late_interest_bp` a year.
    Constructing one checks the rules between fields (Invalid naming the field); the range
    of each field is checked where JSON is read (`parse_terms`).
    """

    start: date
    end: date
    period: PeriodKind = "quarterly"
    royalty_rate_bp: Annotated[int, Meta(ge=0, le=BP)] = 0
    per_unit_fen: Fen = 0
    minimum_annual_fen: Fen = 0
    late_interest_bp: Annotated[int, Meta(ge=0, le=MAX_LATE_INTEREST_BP)] = LATE_INTEREST_BP
    grace_days: Days = GRACE_DAYS
    report_due_days: Annotated[int, Meta(ge=0, le=180)] = REPORT_DUE_DAYS
    payment_due_days: Annotated[int, Meta(ge=0, le=180)] = PAYMENT_DUE_DAYS

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise Invalid("royalty_end_before_start", field="end", start=self.start.isoformat())
        if self.end >= add_years(self.start, MAX_YEARS):
            raise Invalid("royalty_term_too_long", field="end", max_years=MAX_YEARS)
        if not (self.royalty_rate_bp or self.per_unit_fen or self.minimum_annual_fen):
            raise Invalid("royalty_nothing_due", field="royalty_rate_bp")
        if self.report_due_days > self.payment_due_days:
            # The licensee pays what its report says: the report cannot come later.
            raise Invalid(
                "royalty_report_after_payment",
                field="report_due_days",
                payment_due_days=self.payment_due_days,
            )


def parse_terms(raw: object) -> RoyaltyTerms:
    """Stored or submitted JSON as validated terms; Invalid names the field."""
    from market.problems import validation

    try:
        return msgspec.convert(raw, RoyaltyTerms)
    except msgspec.ValidationError as exc:
        field, code, params = validation(str(exc))
        raise Invalid(code, field=field or "terms", **params) from exc


# --- the periods -----------------------------------------------------------------------


class Period(msgspec.Struct, frozen=True, kw_only=True):
    """One reporting and payment period: `label` names its calendar unit (2026Q1, 2026H2,
    2026); `start` and `end` are both included."""

    label: str
    start: date
    end: date
    report_due: date
    payment_due: date
    royalty_year: int  # the calendar year it belongs to
    closes_year: bool  # the last period of its royalty year: the minimum is settled here


_MONTHS_PER_PERIOD: Final[dict[PeriodKind, int]] = {
    "quarterly": 3,
    "half_yearly": 6,
    "yearly": 12,
}


def _unit(day: date, kind: PeriodKind) -> tuple[str, date]:
    """The label and the last day of the calendar quarter, half or year holding `day`."""
    months = _MONTHS_PER_PERIOD[kind]
    index = (day.month - 1) // months  # 0-based quarter or half of the year
    last_month = (index + 1) * months
    if last_month == 12:
        last = date(day.year, 12, 31)
    else:
        last = date(day.year, last_month + 1, 1) - timedelta(days=1)
    if kind == "quarterly":
        return f"{day.year}Q{index + 1}", last
    if kind == "half_yearly":
        return f"{day.year}H{index + 1}", last
    return str(day.year), last


def periods(terms: RoyaltyTerms) -> list[Period]:
    """The contract's periods in order: calendar units from the start, the first beginning
    on the start date and the last cut at the end date."""
    out: list[Period] = []
    day = terms.start
    while day <= terms.end:
        label, last = _unit(day, terms.period)
        end = min(last, terms.end)
        out.append(
            Period(
                label=label,
                start=day,
                end=end,
                report_due=end + timedelta(days=terms.report_due_days),
                payment_due=end + timedelta(days=terms.payment_due_days),
                royalty_year=end.year,
                closes_year=end == terms.end or (end.month, end.day) == (12, 31),
            )
        )
        day = end + timedelta(days=1)
    return out


def _year_days(year: int) -> int:
    return (date(year + 1, 1, 1) - date(year, 1, 1)).days


def minimum_for_year(terms: RoyaltyTerms, year: int) -> int:
    """The minimum annual royalty of one royalty year: in full for a whole calendar year,
    pro-rated by the days the contract covers (of 365 or 366) for a short first or last
    year, rounded once; 0 for a year outside the contract."""
    first = max(terms.start, date(year, 1, 1))
    last = min(terms.end, date(year, 12, 31))
    if last < first:
        return 0
    covered = (last - first).days + 1
    return _div_half_up(terms.minimum_annual_fen * covered, _year_days(year))


# --- what is due -----------------------------------------------------------------------


class SalesLine(msgspec.Struct, frozen=True, kw_only=True):
    """The licensee's report for one period: net sales (净销售额) and units sold."""

    period: str  # the period's label: 2026Q1, 2026H2, 2026
    net_sales_fen: int
    units: int
    line: int | None = None  # the CSV line it came from


class Due(msgspec.Struct, frozen=True, kw_only=True):
    period: str
    running_fen: int  # rate × net sales (rounded once) + units × per-unit fee
    minimum_fen: int  # the royalty year's minimum; 0 unless the period closes the year
    top_up_fen: int  # what lifts the year's royalties to its minimum
    total_fen: int  # running + top-up


def due_for(period: Period, report: SalesLine, terms: RoyaltyTerms, year_to_date_fen: int) -> Due:
    """What one period's report makes due. `year_to_date_fen` is the running royalty of the
    earlier periods of the same royalty year; in the period that closes the year, the
    top-up lifts the year's running royalty to the year's minimum (`minimum_for_year`)."""
    if report.net_sales_fen < 0 or report.units < 0 or year_to_date_fen < 0:
        raise ValueError("net sales, units and the year to date are never negative")
    if report.period != period.label:
        raise ValueError(f"the report is for {report.period}, not {period.label}")
    running = (
        percent_of(report.net_sales_fen, terms.royalty_rate_bp) + report.units * terms.per_unit_fen
    )
    minimum = minimum_for_year(terms, period.royalty_year) if period.closes_year else 0
    top_up = max(0, minimum - year_to_date_fen - running)
    return Due(
        period=period.label,
        running_fen=running,
        minimum_fen=minimum,
        top_up_fen=top_up,
        total_fen=running + top_up,
    )


class Installment(msgspec.Struct, frozen=True, kw_only=True):
    """A period, its report and what it makes due: None while its report (or, for the
    period closing a royalty year, any report of that year) is missing."""

    period: Period
    report: SalesLine | None
    due: Due | None


def schedule(terms: RoyaltyTerms, reports: Iterable[SalesLine]) -> list[Installment]:
    """`due_for` over every period of the contract, with the year-to-date sums."""
    by_period: dict[str, SalesLine] = {}
    for line in reports:
        if line.period in by_period:
            raise ValueError(f"two reports for {line.period}")
        by_period[line.period] = line
    contract = periods(terms)
    unknown = set(by_period) - {p.label for p in contract}
    if unknown:
        raise ValueError(f"reports for periods outside the contract: {sorted(unknown)}")
    out: list[Installment] = []
    year_to_date: dict[int, int] = {}
    year_complete: dict[int, bool] = {}
    for period in contract:
        year = period.royalty_year
        report = by_period.get(period.label)
        complete = year_complete.get(year, True) and report is not None
        year_complete[year] = complete
        due: Due | None = None
        if report is not None and (complete or not period.closes_year):
            due = due_for(period, report, terms, year_to_date.get(year, 0))
            year_to_date[year] = year_to_date.get(year, 0) + due.running_fen
        out.append(Installment(period=period, report=report, due=due))
    return out


# --- late payment ----------------------------------------------------------------------


def days_late(due_date: date, paid_date: date) -> int:
    """Days after the due date, the first day after it counting one (民法典 art. 201)."""
    return max(0, (paid_date - due_date).days)


def arrears_interest(amount_fen: int, due_date: date, paid_date: date, terms: RoyaltyTerms) -> int:
    """Simple interest on `amount_fen` paid on `paid_date` instead of `due_date`: amount ×
    the contract's yearly rate × days late / 365, rounded once to the fen, half up; 0 when
    paid on or before the due date."""
    if amount_fen < 0:
        raise ValueError("an amount owed is never negative")
    days = days_late(due_date, paid_date)
    return _div_half_up(amount_fen * terms.late_interest_bp * days, BP * DAYS_IN_YEAR)


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    """Money the licensee paid; `period` is the period it names (its transfer's reference),
    None when it names none."""

    paid_on: date
    amount_fen: Annotated[int, Meta(gt=0, le=MAX_FEN)]
    period: str | None = None


class RoyaltyReminders(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Lead times of the reminders, in days before and after a report's or a payment's due
    date (docs/rules.md §Licensing royalties): a week and a day before; the day after, mid
    grace and five days before the bank may terminate."""

    before_days: Annotated[tuple[LeadDays, ...], Meta(max_length=6)] = (7, 1)
    after_days: Annotated[tuple[LeadDays, ...], Meta(max_length=6)] = (1, 15, 25)


REMINDERS: Final = RoyaltyReminders()


class Reminder(msgspec.Struct, frozen=True, kw_only=True):
    """One reminder owed; (period, about, when, days) is its identity, so it is sent once."""

    about: Literal["report", "payment"]
    when: Literal["before", "after"]
    days: int
    on: date


class PeriodStanding(msgspec.Struct, frozen=True, kw_only=True):
    period: Period
    due_fen: int | None  # None while a report it depends on is missing
    paid_fen: int  # applied to the royalty
    outstanding_fen: int | None  # royalty still unpaid; None while the due is unknown
    interest_fen: int  # accrued on late royalty up to today (or to full payment)
    interest_paid_fen: int
    days_late: int  # days the royalty was or is unpaid after its payment date
    report_missing: bool  # its report date has passed without a report
    settled: bool  # royalty and interest paid in full
    reminders: tuple[Reminder, ...]
    may_terminate: bool  # unsettled more than the grace days after the payment date


class Standing(msgspec.Struct, frozen=True, kw_only=True):
    periods: tuple[PeriodStanding, ...]
    unapplied_fen: int  # paid beyond what the named (or any) period owes: the licensee's credit
    may_terminate: bool


class _Account:
    """One period's running account while payments are applied in date order."""

    def __init__(self, item: Installment, rate_bp: int) -> None:
        self.item = item
        self.due = item.due.total_fen if item.due is not None else None
        self.rate_bp = rate_bp
        self.paid = 0
        self.interest_paid = 0
        self.numerator = 0  # Σ outstanding × rate × days: interest before its one rounding
        self.accrued_to = item.period.payment_due
        self.paid_in_full: date | None = None

    @property
    def outstanding(self) -> int:
        return max(0, (self.due or 0) - self.paid)

    def accrue(self, day: date) -> None:
        if self.due is not None and day > self.accrued_to:
            self.numerator += self.outstanding * self.rate_bp * (day - self.accrued_to).days
            self.accrued_to = day

    @property
    def interest(self) -> int:
        return _div_half_up(self.numerator, BP * DAYS_IN_YEAR)

    def owed(self) -> int:
        return self.outstanding + self.interest - self.interest_paid

    def take(self, amount: int, day: date) -> int:
        """Apply a payment made on `day`: interest first, then the royalty (民法典 art.
        561). Returns what is left of it."""
        self.accrue(day)
        if self.due is None:  # no report yet: held on the period as paid ahead
            self.paid += amount
            return 0
        interest = min(amount, self.interest - self.interest_paid)
        self.interest_paid += interest
        royalty = min(amount - interest, self.outstanding)
        self.paid += royalty
        if royalty and not self.outstanding:
            self.paid_in_full = day
        return amount - interest - royalty


def standing(
    installments: Sequence[Installment],
    payments: Iterable[Payment],
    today: date,
    *,
    terms: RoyaltyTerms,
    reminders: RoyaltyReminders = REMINDERS,
) -> Standing:
    """Where each period stands on `today`.

    Payments are applied in date order. One that names its period pays that period,
    interest first, then royalty (民法典 art. 561); what exceeds it is the licensee's credit.
    One that names none pays the periods in the order they fell due, those already due
    first (民法典 art. 560). Interest accrues on the unpaid royalty day by day after the
    payment date, simple, at the contract's yearly rate over 365 days, and is rounded once.
    """
    accounts = [_Account(item, terms.late_interest_bp) for item in installments]
    by_label = {a.item.period.label: a for a in accounts}
    credit = 0
    for payment in sorted(payments, key=lambda p: p.paid_on):
        if payment.paid_on > today:
            raise ValueError(f"a payment on {payment.paid_on} is after today ({today})")
        if payment.amount_fen <= 0:
            raise ValueError("a payment is a positive amount")
        amount = payment.amount_fen
        if payment.period is not None:
            account = by_label.get(payment.period)
            if account is None:
                raise ValueError(f"no period {payment.period} in the contract")
            credit += account.take(amount, payment.paid_on)
            continue
        for account in sorted(
            (a for a in accounts if a.due is not None),
            key=lambda a: (a.item.period.payment_due > payment.paid_on, a.item.period.end),
        ):
            if amount == 0:
                break
            account.accrue(payment.paid_on)
            if account.owed() > 0:
                amount = account.take(amount, payment.paid_on)
        credit += amount
    out = [_standing_of(a, today, terms, reminders) for a in accounts]
    return Standing(
        periods=tuple(out),
        unapplied_fen=credit,
        may_terminate=any(s.may_terminate for s in out),
    )


def _standing_of(
    account: _Account, today: date, terms: RoyaltyTerms, policy: RoyaltyReminders
) -> PeriodStanding:
    period = account.item.period
    account.accrue(today)
    known = account.due is not None
    settled = known and account.owed() == 0
    if account.paid_in_full is not None:
        late = days_late(period.payment_due, account.paid_in_full)
    elif known and account.outstanding == 0:  # nothing was due
        late = 0
    else:
        late = days_late(period.payment_due, today)
    reported = account.item.report is not None
    report_missing = not reported and today > period.report_due
    owed: list[Reminder] = []
    if not reported:
        owed += _reminders("report", period.report_due, today, policy)
    if not settled:
        owed += _reminders("payment", period.payment_due, today, policy)
    return PeriodStanding(
        period=period,
        due_fen=account.due,
        paid_fen=account.paid,
        outstanding_fen=account.outstanding if known else None,
        interest_fen=account.interest,
        interest_paid_fen=account.interest_paid,
        days_late=late,
        report_missing=report_missing,
        settled=settled,
        reminders=tuple(owed),
        may_terminate=not settled and days_late(period.payment_due, today) > terms.grace_days,
    )


def _reminders(
    about: Literal["report", "payment"], due: date, today: date, policy: RoyaltyReminders
) -> list[Reminder]:
    """The reminders whose day has come: before the due date while it is still ahead (or
    today), after it once its day has passed."""
    out = [
        Reminder(about=about, when="before", days=d, on=due - timedelta(days=d))
        for d in sorted(policy.before_days, reverse=True)
        if due - timedelta(days=d) <= today <= due
    ]
    out += [
        Reminder(about=about, when="after", days=d, on=due + timedelta(days=d))
        for d in sorted(policy.after_days)
        if due + timedelta(days=d) <= today
    ]
    return out


# --- the licensee's sales report -------------------------------------------------------

MAX_REPORT_BYTES: Final = 1024 * 1024
MAX_REPORT_LINES: Final = 1_000  # 20 years of quarters is 80 lines
MAX_UNITS: Final = 10**12

# The report's columns: key, Chinese header, and the header names accepted (after
# csv_format.normalise_header, lower case).
REPORT_COLUMNS: Final = (
    ("period", "期间", ("period", "期间", "报告期", "结算期")),
    ("net_sales", "净销售额(元)", ("net_sales", "netsales", "净销售额(元)", "净销售额")),
    ("units", "数量", ("units", "数量", "销售数量")),
)
_REPORT_HEADER: Final = {alias: key for key, _, aliases in REPORT_COLUMNS for alias in aliases}

# 2026Q1, 2026-Q1, 2026年第1季度, 2026年第一季度; 2026H2, 2026年下半年; 2026, 2026年, 2026年度.
_QUARTER: Final = re.compile(r"([0-9]{4})(?:-?Q([1-4])|年第([1-4一二三四])季度?)")
_HALF: Final = re.compile(r"([0-9]{4})(?:-?H([12])|年([上下])半年)")
_YEAR: Final = re.compile(r"([0-9]{4})(?:年度?)?")
_CHINESE_DIGITS: Final = {"一": "1", "二": "2", "三": "3", "四": "4", "上": "1", "下": "2"}
_UNITS: Final = re.compile(r"[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+")


def parse_period_label(cell: str) -> str:
    """A period as the licensee writes it, as the label `periods` gives it."""
    text = "".join(csv_format.fold(cell).upper().split())
    if m := _QUARTER.fullmatch(text):
        return f"{m[1]}Q{m[2] or _CHINESE_DIGITS.get(m[3], m[3])}"
    if m := _HALF.fullmatch(text):
        return f"{m[1]}H{m[2] or _CHINESE_DIGITS[m[3]]}"
    if m := _YEAR.fullmatch(text):
        return m[1]
    raise BadValue("royalty_period_unreadable", value=cell)


def parse_units(cell: str) -> int:
    """Units sold: a whole number, digits grouped by three or not."""
    text = csv_format.fold(cell)
    if not _UNITS.fullmatch(text):
        raise BadValue("royalty_units_not_whole", value=cell)
    units = int(text.replace(",", ""))
    if units > MAX_UNITS:
        raise BadValue("royalty_units_too_many", max=MAX_UNITS)
    return units


_PARSERS: Final = {"period": parse_period_label, "net_sales": parse_cny, "units": parse_units}


def parse_sales_report_csv(data: bytes, *, terms: RoyaltyTerms | None = None) -> list[SalesLine]:
    """The licensee's net-sales report: a header naming the columns period, net sales (in
    yuan, as `market.money.parse_cny` reads them) and units, then one line per period.

    All or nothing: if any line is bad, Invalid("royalty_report_rejected", field="file")
    lists every problem as a LineProblem — its code, the CSV line (the header is line 1),
    the column's key as `field` and the header as the file wrote it as `column` — and no
    line is accepted. With `terms`, every period must be one of the contract's.
    """
    problems = Problems([key for key, _, _ in REPORT_COLUMNS])
    lines = _read_report(data, problems, terms)
    if problems.failed():
        raise Invalid(
            "royalty_report_rejected",
            field="file",
            problems=problems.first(),
            count=problems.count,
        )
    return lines


def _read_report(data: bytes, problems: Problems, terms: RoyaltyTerms | None) -> list[SalesLine]:
    if not data:
        problems.add(None, "csv_empty")
        return []
    if len(data) > MAX_REPORT_BYTES:
        problems.add(None, "csv_too_large", max_mb=MAX_REPORT_BYTES // (1024 * 1024))
        return []
    try:
        text, _encoding = decode(data)
    except Undecodable as exc:
        problems.add(None, exc.code, **exc.params)
        return []
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        problems.add(None, "csv_unreadable_row")
        return []
    if not records or not any(c.strip() for c in records[0]):
        problems.add(1, "csv_no_header")
        return []
    header = records[0]
    columns: dict[str, tuple[int, str]] = {}  # key → (index, header as written)
    for index, cell in enumerate(header):
        name = csv_format.normalise_header(cell).lower()
        if not name:
            continue
        key = _REPORT_HEADER.get(name)
        if key is None:
            problems.add(1, "csv_unknown_column", column=cell.strip())
        elif key in columns:
            problems.add(
                1, "csv_duplicate_column", key=key, column=cell.strip(), first=columns[key][1]
            )
        else:
            columns[key] = (index, cell.strip())
    for key, zh, _ in REPORT_COLUMNS:
        if key not in columns:
            problems.add(1, "csv_missing_column", key=key, column=zh, header=zh, name=key)
    if problems.failed():
        return []
    rows = [
        (line, cells)
        for line, cells in enumerate(records[1:], start=2)
        if any(c.strip() for c in cells)  # blank rows a spreadsheet leaves behind
    ]
    if not rows:
        problems.add(2, "csv_no_data_rows")
        return []
    if len(rows) > MAX_REPORT_LINES:
        problems.add(rows[MAX_REPORT_LINES][0], "csv_too_many_rows", max=MAX_REPORT_LINES)
        return []
    in_contract = {p.label for p in periods(terms)} if terms is not None else None
    seen: dict[str, int] = {}
    out: list[SalesLine] = []
    for line, cells in rows:
        before = problems.count
        named = {index for index, _ in columns.values()}
        for index, cell in enumerate(cells):
            if index not in named and cell.strip():
                problems.add(line, "csv_cell_without_header", cell=index + 1)
        values: dict[str, object] = {}
        for key, (index, written) in columns.items():
            cell = cell_text(cells, index)
            if not cell:
                problems.add(line, "csv_cell_required", key=key, column=written)
                continue
            try:
                values[key] = _PARSERS[key](cell)
            except BadValue as exc:
                problems.add(line, exc.code, key=key, column=written, **exc.params)
        label = values.get("period")
        if isinstance(label, str):
            period_column = columns["period"][1]
            if in_contract is not None and label not in in_contract:
                problems.add(
                    line,
                    "royalty_period_not_in_contract",
                    key="period",
                    column=period_column,
                    period=label,
                )
            elif label in seen:
                problems.add(
                    line,
                    "royalty_period_twice",
                    key="period",
                    column=period_column,
                    period=label,
                    first_line=seen[label],
                )
            else:
                seen[label] = line
        net_sales, units = values.get("net_sales"), values.get("units")
        if problems.count == before and isinstance(net_sales, int) and isinstance(units, int):
            out.append(
                SalesLine(period=str(label), net_sales_fen=net_sales, units=units, line=line)
            )
    return out
