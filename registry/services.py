"""Keeping the national statistics current.

Ingestion marks months stale (``statistics_mark_stale``, in its own transaction, through the
``payments.signals.receipts_changed`` receiver); ``statistics_refresh`` recomputes only stale
periods, each month in its own transaction; ``statistics_rebuild`` recomputes everything in one
set-based pass. Every run writes a new revision and switches the period's ``current`` pointer in
the same transaction, so readers never see half a period, and earlier revisions stay for ``as_of``.
"""

import datetime
import uuid
from collections.abc import Callable, Iterable

from django.db import connection, transaction
from django.utils import timezone

from registry import periods as P
from registry.models import PeriodKind, StatisticsPeriod, StatisticsRevision
from registry.selectors import figures_insert, receipt_period_bounds, tune_aggregation

# Sort memory for COUNT(DISTINCT freelancer) on PostgreSQL, per transaction (SET LOCAL): a month or
# fiscal year sorts at most a year of receipts; the full rebuild sorts the whole table. With the
# default 4MB the sorts spill to disk and take several times longer.
PERIOD_WORK_MEM = "256MB"
REBUILD_WORK_MEM = "1GB"


def _period_range(kind: str, key: int) -> tuple[datetime.date, datetime.date]:
    if kind == PeriodKind.MONTH:
        return P.month_start(key), P.month_start(P.month_add(key, 1))
    return datetime.date(key, 7, 1), datetime.date(key + 1, 7, 1)


def statistics_mark_stale(*, months: Iterable[datetime.date]) -> int:
    """Mark each given month, and the fiscal year it falls in, stale (upsert of the period rows).

    Runs in the caller's transaction, so the marker commits or rolls back with the receipts.
    On PostgreSQL the upsert takes the period row's lock, so it waits for a recompute of the same
    period in progress and that recompute cannot miss the change. Idempotent. Returns the number
    of periods marked.
    """
    now = timezone.now()
    keys = {(PeriodKind.MONTH, P.month_key_of(m)) for m in months}
    keys |= {(PeriodKind.FISCAL_YEAR, P.fiscal_year_of_month(k)) for _, k in keys}
    rows = [
        StatisticsPeriod(kind=kind, period=key, stale=True, marked_stale_at=now)
        for kind, key in sorted(keys)
    ]
    StatisticsPeriod.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["kind", "period"],
        update_fields=["stale", "marked_stale_at"],
    )
    return len(rows)


def _lock_period(kind: str, key: int) -> StatisticsPeriod:
    StatisticsPeriod.objects.get_or_create(kind=kind, period=key)
    return StatisticsPeriod.objects.select_for_update().get(kind=kind, period=key)


def statistics_period_recompute(*, kind: str, period: int, only_if_stale: bool = False) -> bool:
    """Recompute one month or fiscal year from the receipts, in one transaction.

    Locks the period's row (``select_for_update``; SQLite serialises writers anyway), writes a
    new revision with every dimension's figures (grouped SELECTs over an index range scan of
    ``value_date``, bulk-inserted), points ``current`` at it and clears the stale marker. Two
    workers at once therefore run one after the other and give identical figures. With
    ``only_if_stale`` a period that another worker already refreshed is skipped. Returns whether
    it recomputed.
    """
    start, end = _period_range(kind, period)
    with transaction.atomic():
        row = _lock_period(kind, period)
        if only_if_stale and not row.stale:
            return False
        tune_aggregation(work_mem=PERIOD_WORK_MEM)
        batch = uuid.uuid4().hex
        revision = StatisticsRevision.objects.create(
            kind=kind, period=period, computed_at=timezone.now(), batch=batch
        )
        figures_insert(kind=kind, batch=batch, start=start, end=end)
        row.current = revision
        row.stale = False
        row.save(update_fields=["current", "stale"])
    return True


def statistics_refresh(*, progress: Callable[[int], None] | None = None) -> int:
    """Recompute every stale period: months first (one transaction each), then fiscal years.

    Idempotent and safe to run concurrently (see ``statistics_period_recompute``). Cost is in
    proportion to the stale periods' receipts, not to the whole table. Returns how many periods
    it recomputed.
    """
    done = 0
    for kind in (PeriodKind.MONTH, PeriodKind.FISCAL_YEAR):
        stale = list(
            StatisticsPeriod.objects.filter(kind=kind, stale=True)
            .order_by("period")
            .values_list("period", flat=True)
        )
        for key in stale:
            done += statistics_period_recompute(kind=kind, period=key, only_if_stale=True)
            if progress:
                progress(1)
    return done


def statistics_stale_count() -> int:
    return StatisticsPeriod.objects.filter(stale=True).count()


def _rebuild_keys(kind: str) -> set[int]:
    keys = set(StatisticsPeriod.objects.filter(kind=kind).values_list("period", flat=True))
    bounds = receipt_period_bounds(kind=kind)
    if bounds:
        first, last = bounds
        if kind == PeriodKind.MONTH:
            keys |= set(P.month_range(first, last))
        else:
            keys |= set(range(first, last + 1))
    return keys


def statistics_rebuild_size() -> int:
    """How many periods ``statistics_rebuild`` will compute (for a progress bar)."""
    return sum(len(_rebuild_keys(kind)) for kind in PeriodKind.values)


def statistics_rebuild(*, progress: Callable[[int], None] | None = None) -> int:
    """Rebuild every period from all receipts as one set-based pass per breakdown and period kind
    (no per-month loop over the table; totals are summed from the province rows), in one
    transaction: readers see all old figures or all new ones.

    On PostgreSQL it first locks every period row in (kind, period) order, the order in which
    ``statistics_mark_stale`` takes them, so ingestion and incremental runs wait for it and cannot
    deadlock with it. Returns how many periods got a new revision.
    """
    kinds = sorted(PeriodKind.values)  # "fiscal_year" < "month": the upsert's lock order
    keys = {kind: _rebuild_keys(kind) for kind in kinds}
    total = 0
    with transaction.atomic():
        tune_aggregation(work_mem=REBUILD_WORK_MEM)
        StatisticsPeriod.objects.bulk_create(
            [StatisticsPeriod(kind=kind, period=k) for kind in kinds for k in sorted(keys[kind])],
            ignore_conflicts=True,
        )
        if connection.vendor == "postgresql":
            list(
                StatisticsPeriod.objects.select_for_update()
                .order_by("kind", "period")
                .values_list("id", flat=True)
            )
        for kind in (PeriodKind.MONTH, PeriodKind.FISCAL_YEAR):
            # Periods marked since the keys were read (they now exist and are locked) too.
            periods = keys[kind] | set(
                StatisticsPeriod.objects.filter(kind=kind).values_list("period", flat=True)
            )
            if not periods:
                continue
            batch = uuid.uuid4().hex
            now = timezone.now()
            StatisticsRevision.objects.bulk_create(
                [
                    StatisticsRevision(kind=kind, period=k, computed_at=now, batch=batch)
                    for k in sorted(periods)
                ],
                batch_size=1000,
            )
            figures_insert(kind=kind, batch=batch, start=None, end=None)
            for period, revision_id in StatisticsRevision.objects.filter(batch=batch).values_list(
                "period", "id"
            ):
                StatisticsPeriod.objects.filter(kind=kind, period=period).update(
                    current_id=revision_id, stale=False
                )
            total += len(periods)
            if progress:
                progress(len(periods))
    return total
