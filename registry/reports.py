"""The published rows: stored figures plus the derived MoM, YoY, FYTD and FYTD YoY changes,
computed at read time from exact integer cents (rounding: ``periods.change_pct``)."""

import datetime

from django.db.models import Count
from django.db.models.functions import TruncMonth
from django.utils import timezone

from freelancers.models import Freelancer
from payments.selectors import counted_receipts
from registry import periods as P
from registry.models import Dimension, PeriodKind
from registry.selectors import stored_figures

ZERO = (0, 0, 0)


def monthly_rows(
    *, first: int, last: int, group_by: str | None = None, as_of: datetime.datetime | None = None
) -> list[dict]:
    """One row per month from ``first`` to ``last`` (YYYYMM keys), or with ``group_by`` one row
    per month and group that has receipts, ordered by month then group."""
    dimension = group_by or Dimension.TOTAL
    # Enough history for YoY and for the FYTD of the same months a year earlier.
    load_from = P.fiscal_year_first_month(P.fiscal_year_of_month(P.month_add(first, -12)))
    figures = stored_figures(
        kind=PeriodKind.MONTH,
        periods=P.month_range(load_from, last),
        dimension=dimension,
        as_of=as_of,
    )

    def cents(key: int, label: str) -> int:
        return figures.get(key, {}).get(label, ZERO)[0]

    def fytd(key: int, label: str) -> int:
        start = P.fiscal_year_first_month(P.fiscal_year_of_month(key))
        return sum(cents(k, label) for k in P.month_range(start, key))

    rows = []
    for key in P.month_range(first, last):
        labels = sorted(figures.get(key, {})) if group_by else [""]
        for label in labels:
            total, receipts, freelancers = figures.get(key, {}).get(label, ZERO)
            fytd_now = fytd(key, label)
            row = {
                "month": P.month_label(key),
                "fiscal_year": P.fiscal_year_label(P.fiscal_year_of_month(key)),
            }
            if group_by:
                row[group_by] = label
            row.update(
                {
                    "total_usd": P.cents_to_str(total),
                    "receipts": receipts,
                    "freelancers": freelancers,
                    "mom_pct": P.change_pct(total, cents(P.month_add(key, -1), label)),
                    "yoy_pct": P.change_pct(total, cents(P.month_add(key, -12), label)),
                    "fytd_usd": P.cents_to_str(fytd_now),
                    "fytd_yoy_pct": P.change_pct(fytd_now, fytd(P.month_add(key, -12), label)),
                }
            )
            rows.append(row)
    return rows


def fiscal_year_rows(
    *, first: int, last: int, group_by: str | None = None, as_of: datetime.datetime | None = None
) -> list[dict]:
    """One row per fiscal year from ``first`` to ``last`` (first calendar years); the year's
    ``freelancers`` are distinct over the whole year, not a sum of months."""
    dimension = group_by or Dimension.TOTAL
    figures = stored_figures(
        kind=PeriodKind.FISCAL_YEAR,
        periods=range(first - 1, last + 1),
        dimension=dimension,
        as_of=as_of,
    )
    rows = []
    for year in range(first, last + 1):
        labels = sorted(figures.get(year, {})) if group_by else [""]
        for label in labels:
            total, receipts, freelancers = figures.get(year, {}).get(label, ZERO)
            previous = figures.get(year - 1, {}).get(label, ZERO)[0]
            row = {"fiscal_year": P.fiscal_year_label(year)}
            if group_by:
                row[group_by] = label
            row.update(
                {
                    "total_usd": P.cents_to_str(total),
                    "receipts": receipts,
                    "freelancers": freelancers,
                    "yoy_pct": P.change_pct(total, previous),
                }
            )
            rows.append(row)
    return rows


REGISTRATION_GROUPS = ("province", "category")


def registration_rows(*, first: int, last: int, group_by: str | None = None) -> list[dict]:
    """Freelancers registered (submitted), approved, and active (at least one counted receipt)
    per month, optionally by the freelancer's province or service category (a freelancer offering
    two categories counts in both). Grouped counts in SQL over indexed ranges."""
    start, end = P.month_start(first), P.month_start(P.month_add(last, 1))
    field = {"province": "province", "category": "categories__name", None: None}[group_by]

    def counted(queryset, date_field: str, freelancer_path: str = "") -> dict:
        prefix = f"{freelancer_path}__" if freelancer_path else ""
        keys = ["m"] + ([f"{prefix}{field}"] if field else [])
        rows = (
            queryset.annotate(m=TruncMonth(date_field))
            .values(*keys)
            .annotate(n=Count(f"{prefix}id" if prefix else "id", distinct=True))
            .order_by()
        )
        out = {}
        for row in rows:
            month = row["m"]
            label = (row.get(f"{prefix}{field}") or "unknown") if field else ""
            out[(P.month_key(month.year, month.month), label)] = row["n"]
        return out

    start_at = timezone.make_aware(datetime.datetime.combine(start, datetime.time()))
    end_at = timezone.make_aware(datetime.datetime.combine(end, datetime.time()))
    registered = counted(
        Freelancer.objects.filter(submitted_at__gte=start_at, submitted_at__lt=end_at),
        "submitted_at",
    )
    approved = counted(
        Freelancer.objects.filter(approved_at__gte=start_at, approved_at__lt=end_at),
        "approved_at",
    )
    active = counted(
        counted_receipts().filter(
            value_date__gte=start, value_date__lt=end, freelancer__isnull=False
        ),
        "value_date",
        "freelancer",
    )
    rows = []
    for key in P.month_range(first, last):
        labels = (
            sorted({label for (k, label) in (*registered, *approved, *active) if k == key})
            if group_by
            else [""]
        )
        for label in labels:
            row = {"month": P.month_label(key)}
            if group_by:
                row[group_by] = label
            row.update(
                {
                    "registered": registered.get((key, label), 0),
                    "approved": approved.get((key, label), 0),
                    "active": active.get((key, label), 0),
                }
            )
            rows.append(row)
    return rows


def fytd_breakdown(*, last: int, group_by: str) -> list[dict]:
    """Fiscal year to date through month ``last`` for every group with receipts in it, against
    the same months of the previous fiscal year; largest first."""
    start = P.fiscal_year_first_month(P.fiscal_year_of_month(last))
    figures = stored_figures(
        kind=PeriodKind.MONTH,
        periods=P.month_range(P.month_add(start, -12), last),
        dimension=group_by,
    )
    this_year = P.month_range(start, last)
    previous_year = [P.month_add(k, -12) for k in this_year]
    labels = {label for k in this_year for label in figures.get(k, {})}

    def fytd(keys: list[int], label: str) -> int:
        return sum(figures.get(k, {}).get(label, ZERO)[0] for k in keys)

    rows = [
        {
            group_by: label,
            "fytd_usd": fytd(this_year, label),
            "previous_fytd_usd": fytd(previous_year, label),
        }
        for label in labels
    ]
    rows.sort(key=lambda r: (-r["fytd_usd"], r[group_by]))
    return [
        {
            group_by: r[group_by],
            "fytd_usd": P.cents_to_str(r["fytd_usd"]),
            "fytd_yoy_pct": P.change_pct(r["fytd_usd"], r["previous_fytd_usd"]),
        }
        for r in rows
    ]
