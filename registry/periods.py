"""Month and fiscal-year arithmetic, and the contract's rounding. Pure functions, no database."""

import datetime
import re
from decimal import Decimal

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
FISCAL_YEAR_RE = re.compile(r"^(\d{4})-(\d{2})$")


def month_key(year: int, month: int) -> int:
    """A month as the integer YYYYMM (what StatisticsPeriod.period stores for months)."""
    return year * 100 + month


def month_key_of(day: datetime.date) -> int:
    return month_key(day.year, day.month)


def month_add(key: int, months: int) -> int:
    index = (key // 100) * 12 + (key % 100 - 1) + months
    return month_key(index // 12, index % 12 + 1)


def month_range(first: int, last: int) -> list[int]:
    out, key = [], first
    while key <= last:
        out.append(key)
        key = month_add(key, 1)
    return out


def months_between(first: int, last: int) -> int:
    """How many months from first to last, both included."""
    return ((last // 100) * 12 + last % 100) - ((first // 100) * 12 + first % 100) + 1


def month_start(key: int) -> datetime.date:
    return datetime.date(key // 100, key % 100, 1)


def month_label(key: int) -> str:
    return f"{key // 100:04d}-{key % 100:02d}"


def fiscal_year_of_month(key: int) -> int:
    """Pakistan's fiscal year runs July to June; it is keyed by its first calendar year."""
    year, month = key // 100, key % 100
    return year if month >= 7 else year - 1


def fiscal_year_label(start_year: int) -> str:
    return f"{start_year}-{(start_year + 1) % 100:02d}"


def fiscal_year_first_month(start_year: int) -> int:
    return month_key(start_year, 7)


def fiscal_year_last_month(start_year: int) -> int:
    return month_key(start_year + 1, 6)


def parse_month(text: str) -> int:
    """'2021-08' -> 202108; raises ValueError for anything else."""
    match = MONTH_RE.match(text)
    if not match:
        raise ValueError("Expected a month as YYYY-MM.")
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12 or year < 1900:
        raise ValueError("Expected a month as YYYY-MM with MM from 01 to 12.")
    return month_key(year, month)


def parse_fiscal_year(text: str) -> int:
    """'2025-26' -> 2025; '2025-27' raises ValueError."""
    match = FISCAL_YEAR_RE.match(text)
    if not match:
        raise ValueError("Expected a fiscal year as YYYY-YY, for example 2025-26.")
    year = int(match[1])
    if int(match[2]) != (year + 1) % 100 or year < 1900:
        raise ValueError("Expected a fiscal year as YYYY-YY naming two consecutive years.")
    return year


def cents_to_str(cents: int) -> str:
    """Exact USD with two decimals: 22400000000 -> '224000000.00'."""
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def change_pct(current_cents: int, previous_cents: int) -> str | None:
    """Percentage change, 1 decimal, rounded half away from zero, in exact integer arithmetic.

    None when the previous figure is 0; a change that rounds to zero is "0.0", never "-0.0".
    """
    if not previous_cents:
        return None
    numerator = (current_cents - previous_cents) * 1000  # tenths of a percent
    denominator = abs(previous_cents)
    tenths = (2 * abs(numerator) + denominator) // (2 * denominator)  # half away from zero
    sign = "-" if numerator < 0 and tenths else ""
    return f"{sign}{tenths // 10}.{tenths % 10}"
