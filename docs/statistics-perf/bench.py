"""Time the statistics rebuild against bare SQL on the current database (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python manage.py shell \
        < docs/statistics-perf/bench.py

Seed the database first with docs/statistics-perf/seed.sql. Runs every measurement ROUNDS times,
interleaved, and prints medians. Checks that the rebuilt monthly figures equal the bare query's.
"""

import datetime
import os
import statistics
import time

from django.db import connection, transaction

from registry import periods as P
from registry.aggregation import tune_aggregation
from registry.models import Dimension, PeriodKind
from registry.selectors import figures_queryset, stored_figures
from registry.services import (
    REBUILD_WORK_MEM,
    statistics_mark_stale,
    statistics_rebuild,
    statistics_refresh,
)

ROUNDS = int(os.environ.get("ROUNDS", "3"))
BARE_MONTHLY = """
SELECT date_trunc('month', r.value_date)::date AS month, SUM(r.usd_amount) AS total_usd,
       COUNT(*) AS receipts, COUNT(DISTINCT r.freelancer_id) AS freelancers
FROM payments_receipt r JOIN payments_purposecode c ON c.id = r.purpose_code_id
WHERE r.source = 'bank' AND r.reversed_on IS NULL AND c.is_it
GROUP BY 1 ORDER BY 1
"""


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bare_monthly(tuned: bool):
    with transaction.atomic(), connection.cursor() as cursor:
        if tuned:
            tune_aggregation(work_mem=REBUILD_WORK_MEM)
        cursor.execute(BARE_MONTHLY)
        return cursor.fetchall()


def bare_all_figures():
    """The six ORM grouped SELECTs (figures_queryset) as bare SQL, results only fetched."""
    with transaction.atomic(), connection.cursor() as cursor:
        tune_aggregation(work_mem=REBUILD_WORK_MEM)
        for kind in (PeriodKind.MONTH, PeriodKind.FISCAL_YEAR):
            for dimension in (Dimension.CATEGORY, Dimension.COUNTRY, Dimension.PROVINCE):
                qs = figures_queryset(kind=kind, dimension=dimension, start=None, end=None)
                sql, params = qs.values_list("p", "g", "cents", "n", "f").query.sql_with_params()
                cursor.execute(sql, params)
                cursor.fetchall()


def one_day_refresh(day: datetime.date, size: int) -> float:
    """Add ``size`` receipts dated ``day`` (copies of existing counted ones), mark the month stale
    as ingestion does, time statistics_refresh, then remove them again (untimed)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO payments_receipt (source, bank_id, reference, iban, amount, currency,
                 usd_amount, pkr_rate, value_date, retained_amount, tax_withheld_pkr, remitter_name,
                 remitter_country, reversed_on, reversal_reason, created_at, account_id,
                 freelancer_id, purpose_code_id)
               SELECT source, bank_id, 'DAY' || id, iban, amount, currency, usd_amount, pkr_rate,
                 %s, 0, 0, '', remitter_country, NULL, '', now(), NULL, freelancer_id,
                 purpose_code_id
               FROM payments_receipt WHERE source = 'bank' ORDER BY id LIMIT %s""",
            [day, size],
        )
        statistics_mark_stale(months=[day])
    seconds, _ = timed(lambda: statistics_refresh())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM payments_receipt WHERE reference LIKE 'DAY%%'")
        statistics_mark_stale(months=[day])
    statistics_refresh()
    return seconds


with connection.cursor() as cursor:
    cursor.execute("SELECT count(*), max(value_date) FROM payments_receipt")
    n_receipts, last_day = cursor.fetchone()
day_size = max(1, n_receipts // 1096)
# The last day of the last full month: the refresh recomputes that month and a fiscal year with
# up to twelve months of receipts (the worst case for a day's ingestion).
last_day = last_day.replace(day=1) - datetime.timedelta(days=1)
times: dict[str, list[float]] = {}
bare_rows = None
for _ in range(ROUNDS):
    for name, fn in (
        ("bare monthly (default work_mem)", lambda: bare_monthly(False)),
        ("bare monthly (work_mem 1GB, jit off)", lambda: bare_monthly(True)),
        ("bare SQL of all figures (6 SELECTs)", bare_all_figures),
        ("full rebuild (statistics_rebuild)", statistics_rebuild),
        (f"one day ({day_size} receipts) + refresh", lambda: one_day_refresh(last_day, day_size)),
    ):
        seconds, result = timed(fn)
        if name.startswith("one day"):
            seconds = result
        if name.startswith("bare monthly"):
            bare_rows = result
        times.setdefault(name, []).append(seconds)

# Exactness: the stored monthly totals equal the bare query's, to the cent.
months = [P.month_key_of(row[0]) for row in bare_rows]
stored = stored_figures(kind=PeriodKind.MONTH, periods=months, dimension=Dimension.TOTAL)
for (_month, total, receipts, freelancers), key in zip(bare_rows, months, strict=True):
    assert stored[key][""] == (int(total * 100), receipts, freelancers), (key, stored[key])

print(f"receipts: {n_receipts}, rounds: {ROUNDS}, medians (all runs):")
medians = {name: statistics.median(values) for name, values in times.items()}
for name, values in times.items():
    print(f"  {name:45s} {medians[name]:8.2f} s   {[round(v, 2) for v in values]}")
rebuild = medians["full rebuild (statistics_rebuild)"]
ratios = {
    "rebuild / bare monthly (same settings)": "bare monthly (work_mem 1GB, jit off)",
    "rebuild / bare monthly (defaults)": "bare monthly (default work_mem)",
    "rebuild / bare SQL of all figures": "bare SQL of all figures (6 SELECTs)",
}
for label, base in ratios.items():
    print(f"  {label:45s} {rebuild / medians[base]:8.2f}")
day = next(v for k, v in medians.items() if k.startswith("one day"))
print(f"  {'one-day refresh / rebuild':45s} {100 * day / rebuild:8.1f} %")
