"""Reads: the ORM definition of the figures (one grouped query per breakdown, which SQLite runs
and the one-pass SQL of ``registry.aggregation`` is tested against), and the stored figures
readers get."""

import datetime
from collections.abc import Iterable

from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    IntegerField,
    Max,
    Min,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, ExtractMonth, ExtractYear, NullIf, Round

from payments.models import Receipt
from payments.selectors import counted_receipts
from registry.models import (
    Dimension,
    PeriodKind,
    StatisticsFigure,
    StatisticsPeriod,
    StatisticsRevision,
)

UNKNOWN_PROVINCE = "unknown"


def dimension_expression(dimension: str):
    if dimension == Dimension.CATEGORY:
        return F("purpose_code__category")
    if dimension == Dimension.COUNTRY:
        return F("remitter_country")
    if dimension == Dimension.PROVINCE:
        # Unmatched receipts (and a freelancer without a province) count under "unknown".
        return Coalesce(NullIf(F("freelancer__province"), Value("")), Value(UNKNOWN_PROVINCE))
    return Value("")


def _period_expression(kind: str):
    if kind == PeriodKind.MONTH:
        return ExtractYear("value_date") * 100 + ExtractMonth("value_date")
    # Fiscal year July-June, keyed by its first calendar year.
    return ExtractYear("value_date") - Case(
        When(value_date__month__lt=7, then=Value(1)), default=Value(0), output_field=IntegerField()
    )


def _cents_sum():
    if connection.vendor == "postgresql":
        # numeric is exact: sum first, then scale once per group.
        return Cast(Sum("usd_amount") * 100, BigIntegerField())
    # SQLite keeps decimals as floating point: scale each amount to integer cents, then sum
    # integers, so totals are exact there too.
    return Sum(Cast(Round(F("usd_amount") * 100), BigIntegerField()))


def figures_queryset(
    *, kind: str, dimension: str, start: datetime.date | None, end: datetime.date | None
) -> QuerySet:
    """Counted receipts with value_date in [start, end) grouped by period and group: rows of
    (p, g, cents, n, f) = period key, group label, USD cents, receipts, distinct freelancers."""
    receipts = counted_receipts()
    if start is not None:
        receipts = receipts.filter(value_date__gte=start)
    if end is not None:
        receipts = receipts.filter(value_date__lt=end)
    return (
        receipts.annotate(p=_period_expression(kind), g=dimension_expression(dimension))
        .values("p", "g")
        .annotate(cents=_cents_sum(), n=Count("id"), f=Count("freelancer_id", distinct=True))
        .order_by()
    )


def receipt_period_bounds(*, kind: str) -> tuple[int, int] | None:
    """The first and last period with any receipt (index-only on value_date)."""
    bounds = Receipt.objects.aggregate(first=Min("value_date"), last=Max("value_date"))
    if bounds["first"] is None:
        return None
    first, last = bounds["first"], bounds["last"]
    if kind == PeriodKind.MONTH:
        return first.year * 100 + first.month, last.year * 100 + last.month
    return (
        first.year if first.month >= 7 else first.year - 1,
        last.year if last.month >= 7 else last.year - 1,
    )


def revisions_for(
    *, kind: str, periods: Iterable[int], as_of: datetime.datetime | None = None
) -> dict[int, int]:
    """period -> revision id that readers see: the current one, or the last computed at or
    before ``as_of``."""
    periods = list(periods)
    if not periods:
        return {}
    if as_of is None:
        return dict(
            StatisticsPeriod.objects.filter(
                kind=kind,
                period__gte=min(periods),
                period__lte=max(periods),
                current__isnull=False,
            ).values_list("period", "current_id")
        )
    return dict(
        StatisticsRevision.objects.filter(
            kind=kind,
            period__gte=min(periods),
            period__lte=max(periods),
            computed_at__lte=as_of,
        )
        .values("period")
        .annotate(latest=Max("id"))
        .values_list("period", "latest")
    )


def stored_figures(
    *, kind: str, periods: Iterable[int], dimension: str, as_of: datetime.datetime | None = None
) -> dict[int, dict[str, tuple[int, int, int]]]:
    """period -> {label: (cents, receipts, freelancers)} for one dimension, as stored."""
    revision_ids = revisions_for(kind=kind, periods=periods, as_of=as_of)
    period_of = {rev: period for period, rev in revision_ids.items()}
    out: dict[int, dict[str, tuple[int, int, int]]] = {}
    rows = StatisticsFigure.objects.filter(
        revision_id__in=list(period_of), dimension=dimension
    ).values_list("revision_id", "label", "total_cents", "receipts", "freelancers")
    for revision_id, label, cents, receipts, freelancers in rows:
        out.setdefault(period_of[revision_id], {})[label] = (cents, receipts, freelancers)
    return out
