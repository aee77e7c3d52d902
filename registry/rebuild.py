"""The full rebuild on PostgreSQL: every figure from all receipts, in slices that run at once.

The one-statement path (``aggregation._one_pass``) sorts every receipt by freelancer and then
counts distinct freelancers in ONE backend: the parallel workers only scan and sort. Here the
work is split by freelancer id into slices, each a plain single-process statement on a connection
of its own, all reading ONE snapshot (``pg_export_snapshot`` / ``SET TRANSACTION SNAPSHOT``), so
the figures are exactly those of one statement:

- per slice, the distinct freelancers: an index-only scan of ``receipt_freelancer_date_idx``
  (which covers every column the statistics read) comes in freelancer order, so grouping per
  freelancer needs only an incremental sort of each freelancer's few receipts; grouping sets give
  one row per freelancer and month and per freelancer and fiscal year with bit masks of their
  categories and countries, a hash aggregate counts those rows per (period, province, masks),
  and the counts are summed per mask bit: a freelancer counts once in every group whose bit is
  set, which is exactly ``COUNT(DISTINCT freelancer_id)`` per group;
- per slice, and for the unmatched receipts (in one part per connection, by value_date), the
  sums and counts per (month, category, country, province): one hash aggregate;
- the stale marks, read in the same snapshot.

Freelancer slices are disjoint, so their counts add up. Months are looked up by day in a
calendar array built in the statement (``date_part`` per receipt costs more than the grouping).
Used only where the snapshot can be shared: by ``statistics_rebuild`` in a transaction it opened
itself, which has written nothing but the period rows' locks (another session cannot see
uncommitted receipts), and with labels whose masks fit in a bigint; otherwise, or when a slice
cannot connect, the caller runs the one statement. Measured in bench/RESULTS.md ("Fifth session").
"""

import logging
from decimal import Decimal

from django.conf import settings
from django.db import OperationalError

from config.db import fetch_in_snapshot
from freelancers.models import Freelancer
from payments.models import PurposeCode, Receipt
from registry.aggregation import (
    PROVINCE_LABELS,
    FigureSets,
    _add,
    _add_month_sums,
    _freeze,
    _Labels,
    _labels,
    _month_of_index,
    _UnexpectedLabel,
    _UnknownCountry,
    country_number_sql,
    freelancer_slices,
    province_number_sql,
)
from registry.models import Dimension, PeriodKind, StatisticsStaleMark

logger = logging.getLogger(__name__)

RECEIPTS = Receipt._meta.db_table
FREELANCERS = Freelancer._meta.db_table
PURPOSE_CODES = PurposeCode._meta.db_table
MARKS = StatisticsStaleMark._meta.db_table

# Per slice connection (SET LOCAL): one process each (the slices are the parallelism); hashing
# memory that keeps the per-freelancer rollup sort-based (it comes presorted from the index) while
# the small final groups are hashed; a merge join with the freelancers, which keeps that order.
SLICE_SETTINGS = {
    "max_parallel_workers_per_gather": "0",
    "work_mem": "64MB",
    "jit": "off",
    "enable_hashjoin": "off",
    "enable_sort": "off",
}

# Month index (year * 12 + month - 1) of every day from the first receipt's to the last's, and the
# first day: computed once per statement (InitPlans), read per receipt by subscript.
_CALENDAR = f"""
    WITH bounds AS (SELECT min(value_date) AS d0, max(value_date) AS d1 FROM {RECEIPTS}),
    days AS (
        SELECT (date_part('year', d) * 12 + date_part('month', d) - 1)::int AS mi
        FROM bounds, generate_series(bounds.d0, bounds.d1, interval '1 day') AS d
    )
"""  # noqa: S608
_MONTH = "(ARRAY(SELECT mi FROM days))[r.value_date - (SELECT d0 FROM bounds) + 1]"
# payments.selectors.counted_receipts, with whether each purpose code is IT read once per
# statement into an array by id (one subscript per receipt instead of a search of the IT ids).
_IT_CODES = f"""
    ARRAY(SELECT COALESCE(p.is_it, FALSE)
          FROM generate_series(1, (SELECT max(id) FROM {PURPOSE_CODES})) AS i(id)
          LEFT JOIN {PURPOSE_CODES} p ON p.id = i.id ORDER BY i.id)
"""  # noqa: S608
_COUNTED = f"r.source = 'bank' AND r.reversed_on IS NULL AND ({_IT_CODES})[r.purpose_code_id]"
# Label numbers from parameters: category by purpose code id, country by its code's slot
# (``country_number_sql``; 0 = not in the list), province by position in [unknown, *provinces]
# (per freelancer, below the join).
_CAT = "COALESCE((%(code_cat)s::int[])[r.purpose_code_id], 0)"
_CTRY_SLOT = country_number_sql("%(country_slots)s", "r.remitter_country")
_CTRY = f"COALESCE({_CTRY_SLOT}, 0)"
_PROVINCE = province_number_sql(
    "province", "%(unknown)s", [f"%(province_{i})s" for i in range(len(PROVINCE_LABELS))]
)
_FREELANCERS = f"""
    JOIN (
        SELECT id, {_PROVINCE} AS prov FROM {FREELANCERS} WHERE id >= %(lo)s AND id < %(hi)s
    ) fr ON fr.id = r.freelancer_id
"""  # noqa: S608
_SLICE = "r.freelancer_id >= %(lo)s AND r.freelancer_id < %(hi)s"

# Distinct freelancers of a slice. Per freelancer and month and per freelancer and fiscal year,
# one bigint: level (0 month, 1 fiscal year) | period (17 bits) | province (5 bits) | category
# mask | country mask (MASK_BITS in all); counted per value with ONE hash key (grouping by two
# columns cost a third more), then per (level, period, province) and mask bit (-1: every
# freelancer): a few thousand rows instead of one per mask combination.
PERIOD_BITS = 17
MASK_BITS = 63 - 1 - PERIOD_BITS - 5
_BIT = "COALESCE((%({name})s::bigint[])[{position}], 0)"
_PEOPLE_SQL = f"""
    {_CALENDAR},
    g AS (
        SELECT x.key, COUNT(*) AS n
        FROM (
            SELECT ((((GROUPING(t.mi)::bigint << {PERIOD_BITS}) + COALESCE(t.mi, t.fy)) * 32
                     + t.prov) << %(mbits)s) | bit_or(t.cb) | bit_or(t.kb) AS key
            FROM (
                SELECT r.freelancer_id AS f, fr.prov, m.mi, (m.mi + 6) / 12 - 1 AS fy,
                       {_BIT.format(name="code_bit", position="r.purpose_code_id")} AS cb,
                       {_BIT.format(name="country_bit", position=_CTRY_SLOT)} AS kb
                FROM {RECEIPTS} r
                {_FREELANCERS}
                CROSS JOIN LATERAL (SELECT {_MONTH} AS mi) m
                WHERE {_COUNTED} AND {_SLICE}
            ) t
            GROUP BY GROUPING SETS ((t.f, t.prov, t.fy, t.mi), (t.f, t.prov, t.fy))
        ) x
        GROUP BY 1
    )
    SELECT g.key >> %(mbits)s, -1, SUM(g.n)::bigint FROM g GROUP BY 1
    UNION ALL
    SELECT g.key >> %(mbits)s, b.b, SUM(g.n)::bigint
    FROM g, generate_series(0, %(mbits)s - 1) AS b(b)
    WHERE (g.key >> b.b) & 1 = 1
    GROUP BY 1, 2
"""  # noqa: S608

# Sums and counts of a slice (or of the unmatched receipts): key = ((month * 64 + category) *
# 1024 + country) * 32 + province.
_SUMS_SQL = f"""
    {_CALENDAR}
    SELECT ((m.mi::bigint * 64 + {_CAT}) * 1024 + {_CTRY}) * 32 + {{prov}} AS key,
           SUM(r.usd_amount), COUNT(*)
    FROM {RECEIPTS} r
    {{join}}
    CROSS JOIN LATERAL (SELECT {_MONTH} AS mi) m
    WHERE {_COUNTED} AND {{where}}
    GROUP BY 1
"""  # noqa: S608
_SUMS_MATCHED = _SUMS_SQL.format(prov="fr.prov", join=_FREELANCERS, where=_SLICE)
# The unmatched receipts (a tenth of the bench's) in as many parts as there are connections, by
# value_date (the index's second column), so that no connection is left with all of them last.
_PART_START = "(SELECT d0 + (d1 - d0 + 1) * %({part})s / %(parts)s FROM bounds)"
_SUMS_UNMATCHED = _SUMS_SQL.format(
    prov="1",
    join="",
    where="r.freelancer_id IS NULL"
    f" AND r.value_date >= {_PART_START.format(part='part')}"
    f" AND r.value_date < {_PART_START.format(part='next_part')}",
)
_MARKS_SQL = f"SELECT id FROM {MARKS}"  # noqa: S608


def _params(labels: _Labels) -> dict:
    """The labels' parameters, the same for every statement of a rebuild."""
    code_cat, code_bit = labels.code_arrays
    nk = len(labels.countries)
    return {
        "code_cat": code_cat,
        "code_bit": [bit << nk for bit in code_bit],
        "country_bit": [1 << i for i in range(nk)],
        "country_slots": labels.country_slots,
        **{f"province_{i}": label for i, label in enumerate(labels.provinces)},
        "unknown": labels.provinces[0],
        "mbits": len(labels.categories) + len(labels.countries),
    }


def _collect(
    labels: _Labels, kinds: set[str], people_rows: list[tuple], sums_rows: list[tuple]
) -> FigureSets:
    nk = len(labels.countries)
    sets: dict = {}
    for head, bit, people in people_rows:
        rest, prov = divmod(head, 32)
        level, period = divmod(rest, 1 << PERIOD_BITS)
        if prov == 0:
            raise _UnexpectedLabel
        kind = PeriodKind.FISCAL_YEAR if level else PeriodKind.MONTH
        if kind not in kinds:
            continue
        dims = sets.setdefault((kind, period if level else _month_of_index(period)), {})
        if bit < 0:  # every freelancer of the period and province
            _add(dims.setdefault(Dimension.TOTAL, {}), "", 0, 0, people)
            _add(dims.setdefault(Dimension.PROVINCE, {}), labels.provinces[prov - 1], 0, 0, people)
        elif bit >= nk:
            _add(dims.setdefault(Dimension.CATEGORY, {}), labels.categories[bit - nk], 0, 0, people)
        else:
            _add(dims.setdefault(Dimension.COUNTRY, {}), labels.countries[bit], 0, 0, people)
    for key, usd, receipts in sums_rows:
        rest, prov = divmod(key, 32)
        rest, ctry = divmod(rest, 1024)
        month_index, cat = divmod(rest, 64)
        if 0 in (prov, cat):
            raise _UnexpectedLabel
        if ctry == 0:
            raise _UnknownCountry
        cents = int(Decimal(usd) * 100)  # exact: two decimals
        _add_month_sums(sets, kinds, labels, month_index, (prov, cat, ctry), cents, receipts)
    return _freeze(sets)


def build(
    *, kinds: set[str], countries: list[str], workers: int | None = None
) -> tuple[FigureSets, list[int]] | None:
    """Every figure of ``kinds`` from all counted receipts, and the ids of every stale mark, read
    in this transaction's snapshot by ``workers`` connections at once
    (``STATISTICS_REBUILD_WORKERS``). Only for a transaction that has written nothing but row
    locks: other sessions do not see uncommitted rows. None when the labels' masks do not fit;
    raises ``_UnknownCountry`` for a country outside ``countries`` and ``_UnexpectedLabel`` for a
    category or province outside the lists, as ``_one_pass`` does."""
    workers = workers or settings.STATISTICS_REBUILD_WORKERS
    labels = _labels(countries)
    if len(labels.categories) + len(labels.countries) > MASK_BITS:
        return None
    # One slice per connection: with two each (to even out their finishing times) the rebuild
    # took 27-33 s instead of 20 s; on a quarter of the freelancers the planner hashes the
    # per-freelancer groups (millions, cache misses) instead of grouping them in index order.
    bounds = freelancer_slices(workers)
    params = _params(labels)
    tasks: list[tuple[str, dict]] = [
        (sql, {**params, "lo": lo, "hi": hi})
        for sql in (_PEOPLE_SQL, _SUMS_MATCHED)
        for lo, hi in bounds
    ]
    tasks += [
        (_SUMS_UNMATCHED, {**params, "part": i, "next_part": i + 1, "parts": workers})
        for i in range(workers)
    ]
    tasks.append((_MARKS_SQL, {}))
    try:
        results = fetch_in_snapshot(tasks, workers=workers, settings=SLICE_SETTINGS)
    except OperationalError as error:  # for example max_connections reached: read-only, so
        logger.warning("statistics rebuild in slices failed (%s); one statement instead", error)
        return None
    n = len(bounds)
    people = [row for rows in results[:n] for row in rows]
    sums = [row for rows in results[n : 2 * n + workers] for row in rows]
    marks = [mark_id for (mark_id,) in results[-1]]
    return _collect(labels, kinds, people, sums), marks
