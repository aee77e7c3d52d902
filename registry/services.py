"""Keeping the national statistics current.

Ingestion marks months stale (``statistics_mark_stale`` appends marks in the ingestion's own
transaction, through the ``payments.signals.receipts_changed`` receiver); ``statistics_refresh``
recomputes only stale periods, each in its own transaction; ``statistics_rebuild`` recomputes
everything in one set-based statement. Every run writes a new revision and switches the period's
``current`` pointer in the same transaction, so readers never see half a period, and earlier
revisions stay for ``as_of``.
"""

import datetime
import functools
import uuid
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from config.db import fetch_bound, fetch_prepared
from payments.models import Receipt
from registry import periods as P
from registry.aggregation import (
    figure_delta,
    figure_sets,
    figures_insert,
    period_pairs,
    tune_aggregation,
)
from registry.models import (
    PeriodKind,
    StatisticsPeriod,
    StatisticsRevision,
    StatisticsStaleMark,
)
from registry.selectors import receipt_period_bounds

# Sort memory for COUNT(DISTINCT freelancer) on PostgreSQL, per transaction (SET LOCAL): a month or
# fiscal year sorts at most a year of receipts; the full rebuild sorts the whole table. With the
# default 4MB the sorts spill to disk and take several times longer.
PERIOD_WORK_MEM = "256MB"
REBUILD_WORK_MEM = "1GB"
# A delta over at least this many marks (a day of receipts: ~18,000) runs in freelancer slices on
# STATISTICS_REBUILD_WORKERS connections; a webhook's refresh (a few marks) runs on one.
DELTA_SLICE_MIN_MARKS = 2000
# Marks deleted per statement (SQLite caps the number of parameters).
MARK_DELETE_CHUNK = 5000


def _period_range(kind: str, key: int) -> tuple[datetime.date, datetime.date]:
    if kind == PeriodKind.MONTH:
        return P.month_start(key), P.month_start(P.month_add(key, 1))
    return datetime.date(key, 7, 1), datetime.date(key + 1, 7, 1)


_MARK_COLUMNS = "(kind, period, marked_at, receipt_id, freelancer_id)"

# A mark naming a receipt is written only if the receipt exists in the statement's snapshot (a
# sender that queues the marks behind its own insert, ``batch``, may have recorded nothing), and
# carries the receipt's freelancer.
_MARKS_INSERT_SQL = (
    f"INSERT INTO {StatisticsStaleMark._meta.db_table} {_MARK_COLUMNS}"  # noqa: S608
    " SELECT m.kind, m.period, %s, m.receipt_id, r.freelancer_id"
    " FROM unnest(%s::varchar[], %s::int[], %s::bigint[]) AS m(kind, period, receipt_id)"
    f" LEFT JOIN {Receipt._meta.db_table} r ON r.id = m.receipt_id"
    " WHERE m.receipt_id IS NULL OR r.id IS NOT NULL"
)


@functools.lru_cache(maxsize=8)
def _marks_one_receipt_sql(periods: int) -> str:
    """The marks of ONE recorded receipt (a webhook's delivery: its month and fiscal year), as
    scalar parameters in a fixed shape. PostgreSQL keeps a generic plan for it, where the unnest
    statement above, whose estimate depends on the arrays' lengths, was planned anew at every
    execution (0.09 ms of bind per delivery), and psycopg dumps no arrays."""
    rows = ", ".join(["(%s, %s::int)"] * periods)
    return (
        f"INSERT INTO {StatisticsStaleMark._meta.db_table} {_MARK_COLUMNS}"  # noqa: S608
        f" SELECT m.kind, m.period, %s, r.id, r.freelancer_id"
        f" FROM (VALUES {rows}) AS m(kind, period)"
        f" CROSS JOIN (SELECT id, freelancer_id FROM {Receipt._meta.db_table} WHERE id = %s) AS r"
    )


# The marks read, as ranges of consecutive ids [lo, hi]: a day's ~18,000 marks were written in a
# few statements, so they are one range or a handful, and the statement gets two short arrays
# (with every id as an array: ~30 ms, mostly sending and hashing the array; ~10 ms like this).
_MARKS_DELETE_SQL = (
    f"DELETE FROM {StatisticsStaleMark._meta.db_table} m"  # noqa: S608
    " USING unnest(%s::bigint[], %s::bigint[]) AS r(lo, hi) WHERE m.id BETWEEN r.lo AND r.hi"
)


def id_ranges(ids: Iterable[int]) -> tuple[list[int], list[int]]:
    """``ids`` as the first and last ids of their runs of consecutive integers, in order; every
    integer in a run is one of ``ids``, so deleting the runs deletes exactly ``ids``."""
    firsts: list[int] = []
    lasts: list[int] = []
    for mark_id in sorted(ids):
        if lasts and mark_id <= lasts[-1] + 1:
            lasts[-1] = mark_id
        else:
            firsts.append(mark_id)
            lasts.append(mark_id)
    return firsts, lasts


def statistics_mark_stale(
    *,
    months: Iterable[datetime.date],
    added: Iterable[int] | None = None,
    batch: list[tuple[str, list]] | None = None,
) -> int:
    """Mark each given month, and the fiscal year it falls in, stale: append one
    ``StatisticsStaleMark`` per period (a plain INSERT, no upsert, so concurrent webhooks never
    wait on each other or on a recompute). ``added`` are the ids of receipts just recorded when
    that is the whole change: the marks name them, and the recompute adds just them to the
    stored figures instead of rescanning the period.

    Runs in the caller's transaction, so the marks commit or roll back with the receipts. Returns
    the number of periods marked. ``batch`` (PostgreSQL): append the statement to it instead of
    running it, for a caller that sends it in the same round trip after the receipts' insert
    (``config.db.fetch_prepared_batch``); marks naming receipts it did not record are not written.
    """
    now = timezone.now()
    keys = {(PeriodKind.MONTH, P.month_key_of(m)) for m in months}
    keys |= {(PeriodKind.FISCAL_YEAR, P.fiscal_year_of_month(k)) for _, k in keys}
    receipt_ids = list(added) if added else [None]
    marks = [(kind, key, receipt_id) for kind, key in sorted(keys) for receipt_id in receipt_ids]
    if connection.vendor == "postgresql":
        # Every webhook delivery runs this: one prepared statement, not the ORM's bulk_create
        # (which cost more than the insert itself).
        if len(receipt_ids) == 1 and receipt_ids[0] is not None:
            ordered = sorted(keys)
            params = [value for key in ordered for value in key]
            statement = (_marks_one_receipt_sql(len(ordered)), [now, *params, receipt_ids[0]])
        else:
            kinds, periods, receipts = (list(column) for column in zip(*marks, strict=True))
            statement = (_MARKS_INSERT_SQL, [now, kinds, periods, receipts])
        if batch is not None:
            batch.append(statement)
        elif len(receipt_ids) > 1:
            fetch_bound(*statement)  # arrays of a bulk import: binary, not as SQL text
        else:
            fetch_prepared(*statement)
    else:
        freelancer_of = dict(
            Receipt.objects.filter(id__in=receipt_ids).values_list("id", "freelancer_id")
        )
        StatisticsStaleMark.objects.bulk_create(
            [
                StatisticsStaleMark(
                    kind=kind,
                    period=key,
                    marked_at=now,
                    receipt_id=receipt_id,
                    freelancer_id=freelancer_of.get(receipt_id),
                )
                for kind, key, receipt_id in marks
            ]
        )
    return len(keys)


# The distinct (kind, period) of the marks by skipping through their index, one step per period
# (~0.1 ms), where DISTINCT reads every mark (a day: ~18,000, ~5 ms).
_STALE_PERIODS_SQL = f"""
    WITH RECURSIVE s(kind, period) AS (
        (SELECT kind, period FROM {StatisticsStaleMark._meta.db_table}
         ORDER BY kind, period LIMIT 1)
        UNION ALL
        SELECT n.kind, n.period FROM s, LATERAL (
            SELECT m.kind, m.period FROM {StatisticsStaleMark._meta.db_table} m
            WHERE (m.kind, m.period) > (s.kind, s.period)
            ORDER BY m.kind, m.period LIMIT 1
        ) n
    )
    SELECT kind, period FROM s
"""  # noqa: S608


def statistics_stale_periods() -> list[tuple[str, int]]:
    """(kind, period) of every period with a stale mark, in (kind, period) order."""
    if connection.vendor == "postgresql":
        return sorted(fetch_prepared(_STALE_PERIODS_SQL, []))
    return sorted(set(StatisticsStaleMark.objects.values_list("kind", "period").distinct()))


def _marks_delete(ids: list[int]) -> None:
    """Delete exactly the marks a recompute read with the receipts: on PostgreSQL one statement
    with their runs of consecutive ids (``id_ranges``) bound on the server, elsewhere in chunks."""
    if connection.vendor == "postgresql":
        if ids:
            fetch_bound(_MARKS_DELETE_SQL, list(id_ranges(ids)))
        return
    for i in range(0, len(ids), MARK_DELETE_CHUNK):
        StatisticsStaleMark.objects.filter(id__in=ids[i : i + MARK_DELETE_CHUNK]).delete()


def _periods_ensure(keys: Iterable[tuple[str, int]]) -> None:
    """Create the missing period rows, in (kind, period) order, BEFORE the caller's locking
    transaction: a writer that inserted a row while holding another period's lock could
    deadlock with a rebuild that inserted rows and then locked them all (seen in CI: a refresh
    held the fiscal year and inserted a month the rebuild had just inserted)."""
    StatisticsPeriod.objects.bulk_create(
        [StatisticsPeriod(kind=kind, period=key) for kind, key in sorted(set(keys))],
        ignore_conflicts=True,
    )


def _lock_period(kind: str, key: int) -> StatisticsPeriod:
    """The period's row, locked (``_periods_ensure`` created it)."""
    return StatisticsPeriod.objects.select_for_update().get(kind=kind, period=key)


def _write_revisions(keys: Iterable[tuple[str, int]], sets) -> None:
    """A new revision of each (kind, period) in ``keys`` (their rows locked by the caller) with
    its figures in ``sets``, and each period's ``current`` pointing at it: three statements
    whatever the number of periods (revisions, figures, periods)."""
    keys = sorted(keys)
    now = timezone.now()
    batch = uuid.uuid4().hex
    created = StatisticsRevision.objects.bulk_create(
        [
            StatisticsRevision(kind=kind, period=key, computed_at=now, batch=batch)
            for kind, key in keys
        ],
        batch_size=1000,
    )
    # PostgreSQL and SQLite (3.35+) return the new ids from a bulk insert.
    revision_of = {(r.kind, r.period): r.pk for r in created}
    figures_insert(revision_of=revision_of, sets=sets)
    periods = Q()
    for kind, key in keys:
        periods |= Q(kind=kind, period=key)
    StatisticsPeriod.objects.filter(periods).update(
        current_id=Case(
            *(
                When(kind=kind, period=key, then=Value(pk))
                for (kind, key), pk in revision_of.items()
            )
        )
    )


def statistics_period_recompute(
    *, kind: str, period: int, only_if_stale: bool = False, from_receipts: bool = False
) -> bool:
    """Recompute one month or fiscal year, in one transaction.

    Locks the period's row (``select_for_update``; SQLite serialises writers anyway). When every
    stale mark names a receipt just recorded, adds those receipts to the current revision's
    figures (``figure_delta``: cost in proportion to those receipts); otherwise computes every
    figure of the period from its receipts in one statement over an index range scan of
    ``value_date``. Either statement reads the marks in its own snapshot; the new revision is
    written, ``current`` points at it and exactly those marks are deleted. A mark committed
    meanwhile stays, and the period is recomputed again. Two workers at once run one after the
    other and give identical figures. With ``only_if_stale`` a period without marks (another
    worker refreshed it) is skipped; ``from_receipts`` always rescans the period (the admin's
    action, for example after a freelancer moved province). Returns whether it recomputed.
    """
    start, end = _period_range(kind, period)
    _periods_ensure([(kind, period)])
    with transaction.atomic():
        row = _lock_period(kind, period)
        if (
            only_if_stale
            and not StatisticsStaleMark.objects.filter(kind=kind, period=period).exists()
        ):
            return False
        tune_aggregation(work_mem=PERIOD_WORK_MEM)
        result = None
        if row.current_id is not None and not from_receipts:
            result = figure_delta(
                periods=[(kind, period)],
                start=start,
                end=end,
                revisions={(kind, period): row.current_id},
            )
        if result is None:
            result = figure_sets(kinds=[kind], start=start, end=end, marks_of=(kind, period))
        sets, marks = result
        _write_revisions([(kind, period)], sets)
        _marks_delete(marks)
    return True


def _lock_periods_counting_marks(keys: list[tuple[str, int]]) -> tuple[dict, int]:
    """PostgreSQL: lock the periods' rows in (kind, period) order (the rebuild's), in one
    statement that also counts their marks up to ``DELTA_SLICE_MIN_MARKS`` (a day's worth runs
    the delta in slices). Returns each period's current revision id (None: never computed; the
    rows exist, ``_periods_ensure``) and that count."""
    pairs, pair_params = period_pairs(keys)
    sql = f"""
        SELECT p.kind, p.period, p.current_id, (
            SELECT count(*) FROM (
                SELECT FROM {StatisticsStaleMark._meta.db_table} m
                WHERE (m.kind, m.period) IN (VALUES {pairs}) LIMIT %s
            ) c
        )
        FROM {StatisticsPeriod._meta.db_table} p WHERE (p.kind, p.period) IN (VALUES {pairs})
        ORDER BY p.kind, p.period FOR UPDATE OF p
    """  # noqa: S608
    rows = fetch_prepared(sql, [*pair_params, DELTA_SLICE_MIN_MARKS, *pair_params])
    return {(kind, key): current for kind, key, current, _ in rows}, rows[0][3] if rows else 0


def _fiscal_year_delta(fiscal_year: int, keys: list[tuple[str, int]]) -> bool:
    """A fiscal year's stale periods (its months and itself) in one transaction and ONE delta
    statement, which shares the receipt and freelancer lookups between them; on
    ``STATISTICS_REBUILD_WORKERS`` connections for a day's worth of marks when the transaction
    is its own (the slices read its snapshot and must not need its writes). Returns False,
    having written nothing, when a delta is not exact for all of them. PostgreSQL only."""
    start, end = _period_range(PeriodKind.FISCAL_YEAR, fiscal_year)
    keys = sorted(keys)  # the rebuild's lock order
    _periods_ensure(keys)
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        revisions, marks_count = _lock_periods_counting_marks(keys)
        if len(revisions) != len(keys) or None in revisions.values():
            return False
        tune_aggregation(work_mem=PERIOD_WORK_MEM)
        slices = own_transaction and marks_count >= DELTA_SLICE_MIN_MARKS
        result = figure_delta(
            periods=keys,
            start=start,
            end=end,
            revisions=revisions,
            workers=settings.STATISTICS_REBUILD_WORKERS if slices else 1,
        )
        if result is None:
            return False
        sets, marks = result
        _write_revisions(keys, sets)
        _marks_delete(marks)
    return True


def statistics_refresh(
    *,
    stale: list[tuple[str, int]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Recompute every stale period. Idempotent and safe to run concurrently (see
    ``statistics_period_recompute``). Returns how many periods it recomputed.

    On PostgreSQL the stale periods of a fiscal year (after a day of receipts: the month and the
    fiscal year) are first tried together as one delta (``_fiscal_year_delta``); what remains is
    recomputed one period per transaction, months first. Cost is in proportion to the receipts
    recorded, or to the stale periods' receipts when a period must be rescanned, never to the
    whole table. ``stale``: the caller's ``statistics_stale_periods()``, when it has them.
    """
    done = 0
    stale = statistics_stale_periods() if stale is None else stale
    if connection.vendor == "postgresql":
        by_year: dict[int, list[tuple[str, int]]] = {}
        for kind, key in stale:
            year = key if kind == PeriodKind.FISCAL_YEAR else P.fiscal_year_of_month(key)
            by_year.setdefault(year, []).append((kind, key))
        for year, keys in by_year.items():
            if len(keys) > 1 and _fiscal_year_delta(year, keys):
                done += len(keys)
                stale = [key for key in stale if key not in keys]
                if progress:
                    progress(len(keys))
    for kind in (PeriodKind.MONTH, PeriodKind.FISCAL_YEAR):
        for stale_kind, key in stale:
            if stale_kind != kind:
                continue
            done += statistics_period_recompute(kind=kind, period=key, only_if_stale=True)
            if progress:
                progress(1)
    return done


def _rebuild_keys(kind: str) -> set[int]:
    keys = set(StatisticsPeriod.objects.filter(kind=kind).values_list("period", flat=True))
    keys |= {key for mark_kind, key in statistics_stale_periods() if mark_kind == kind}
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
    """Rebuild every period from all receipts in one transaction: readers see all old figures or
    all new ones.

    Locks every period row in (kind, period) order (so incremental recomputes wait for it, or it
    for them), computes every figure of every month and fiscal year from one snapshot (on
    PostgreSQL in slices on ``STATISTICS_REBUILD_WORKERS`` connections at once when the
    transaction is its own, else in one statement; see ``figure_sets``) that also reads every
    stale mark, writes a revision per
    period and deletes the marks it read. Receipts committed meanwhile keep their marks and are
    picked up by the next refresh. Returns how many periods got a new revision.
    """
    kinds = sorted(PeriodKind.values)
    keys = {kind: _rebuild_keys(kind) for kind in kinds}
    _periods_ensure((kind, k) for kind in kinds for k in keys[kind])
    # A transaction of its own has written nothing but the locks below when the figures are
    # computed, so other connections can read its snapshot (registry/rebuild.py).
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        tune_aggregation(work_mem=REBUILD_WORK_MEM)
        locked = list(
            StatisticsPeriod.objects.select_for_update()
            .order_by("kind", "period")
            .values_list("kind", "period")
        )
        sets, marks = figure_sets(
            kinds=kinds, start=None, end=None, shared_snapshot=own_transaction
        )
        _write_revisions(locked, sets)
        total = len(locked)
        if progress:
            progress(total)
        _marks_delete(marks)
    return total
