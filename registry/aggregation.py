"""The set-based SQL that turns receipts into figures.

Figures are computed in the database from ``payments.selectors.counted_receipts()`` (the ORM
queryset, wrapped); only grouped rows reach Python, receipts never do.

- ``figure_sets``: every figure of a range of periods. On PostgreSQL one statement (one scan,
  one sort) for both period kinds; elsewhere, or for labels outside its lists, one grouped ORM
  query per breakdown (``selectors.figures_queryset``). Tests compare both with plain Python.
- ``figure_delta``: the change to one period's stored figures when the only change since they
  were computed is receipts recorded (stale marks carrying a receipt id): a statement whose cost
  is in proportion to those receipts and their freelancers' other receipts in the period.

Both read the stale marks in the same statement, hence the same snapshot, as the receipts: a
mark is returned exactly when its receipt is counted, so deleting the returned marks after
writing the figures never drops a change and a receipt is never applied twice.
"""

import datetime
import functools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

import pycountry
from django.db import OperationalError, connection

from config.db import fetch_in_snapshot, fetch_prepared
from freelancers.models import Freelancer, Province
from payments.models import PurposeCode, Receipt
from payments.selectors import counted_receipts
from registry.models import (
    Dimension,
    PeriodKind,
    StatisticsFigure,
    StatisticsPeriod,
    StatisticsStaleMark,
)
from registry.periods import fiscal_year_of_month
from registry.selectors import UNKNOWN_PROVINCE, dimension_expression, figures_queryset

logger = logging.getLogger(__name__)

# (kind, period) -> dimension -> label -> (USD cents, receipts, distinct freelancers)
FigureSets = dict[tuple[str, int], dict[str, dict[str, tuple[int, int, int]]]]

# 63 countries per bigint mask word; at most 62 categories in one mask.
WORD_BITS = 63
MAX_CATEGORIES = 62
EVERY_COUNTRY = ["", *sorted(c.alpha_2 for c in pycountry.countries)]
PROVINCE_LABELS = [UNKNOWN_PROVINCE, *Province.values]


def _add(groups: dict[str, list[int]], label: str, cents: int, receipts: int, people: int) -> None:
    row = groups.setdefault(label, [0, 0, 0])
    row[0] += cents
    row[1] += receipts
    row[2] += people


def _freeze(sets: dict) -> FigureSets:
    return {
        key: {dim: {label: tuple(v) for label, v in groups.items()} for dim, groups in dims.items()}
        for key, dims in sets.items()
    }


def _bits(mask: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _month_of_index(mi: int) -> int:
    """Months since year 0 (year * 12 + month - 1) -> YYYYMM."""
    return (mi // 12) * 100 + mi % 12 + 1


class _UnexpectedLabel(Exception):
    """A receipt's category or province is outside the statement's lists: use the ORM."""


class _UnknownCountry(Exception):
    """A receipt's country is not in the statement's list: run it again with every code."""


# A country's number (position + 1 in the labels' list; 0 = not in it) by ONE subscript of an
# array indexed by its code's characters (``_Labels.country_slots``): slot ascii(first) * 128 +
# ascii(second). A linear search (array_position, or a join with a list) compares text per
# label, a fifth of the full rebuild's sums statement. A missing character reads as 0, a
# non-ASCII second one as 127 (no label's slot) and a non-ASCII first one lands past the end
# (NULL): anything not in the list is 0. remitter_country holds at most two characters.
COUNTRY_SLOTS = 128 * 128


def country_number_sql(slots: str, column: str) -> str:
    """SQL of ``column``'s country number; ``slots`` is the slots array's placeholder or its
    literal (``_Labels.country_slots_sql``)."""
    return f"({slots}::int[])[ascii({column}) * 128 + least(ascii(substr({column}, 2)), 127) + 1]"


def province_number_sql(column: str, unknown: str, provinces: list[str]) -> str:
    """SQL of a freelancer's province number from ``column``: its position in ``PROVINCE_LABELS``
    plus one (no province, or an empty one, is ``unknown``), 0 for a label outside the list.
    ``unknown`` and ``provinces`` are the placeholders of those labels, in that order. A CASE
    compares half as much as ``array_position`` over the list (~60 of ~130 ms a rebuild slice)."""
    cases = " ".join(f"WHEN {label} THEN {i + 1}" for i, label in enumerate(provinces))
    return f"CASE COALESCE(NULLIF({column}, ''), {unknown})::text {cases} ELSE 0 END"


@functools.lru_cache(maxsize=8)
def _country_slots(countries: tuple[str, ...]) -> tuple[int, ...]:
    slots = [0] * COUNTRY_SLOTS
    for number, code in enumerate(countries, 1):
        if len(code) <= 2 and all(0 < ord(char) < 127 for char in code):
            first, second = [ord(char) for char in code] + [0] * (2 - len(code))
            slots[first * 128 + second] = number
    return tuple(slots)


@functools.lru_cache(maxsize=8)
def _country_slots_literal(countries: tuple[str, ...]) -> str:
    return "'{" + ",".join(map(str, _country_slots(countries))) + "}'"


@dataclass(frozen=True)
class _Labels:
    """Numbers for the labels (0 = not in the list): purpose code -> category number and bit,
    country -> number (mask word and bit follow from it), province -> number; looked up in
    arrays passed as parameters."""

    categories: list[str]
    codes: list[tuple[int, int, int]]
    countries: list[str]
    provinces: list[str]

    @property
    def words(self) -> int:
        return max(1, -(-len(self.countries) // WORD_BITS))

    @cached_property
    def code_arrays(self) -> tuple[list[int], list[int]]:
        """Category number and bit of each purpose code, at index id - 1 (0: no such code);
        built once per label set (a statement's slices all pass the same arrays)."""
        size = max((pk for pk, _, _ in self.codes), default=0)
        numbers, bits = [0] * size, [0] * size
        for pk, number, bit in self.codes:
            numbers[pk - 1], bits[pk - 1] = number, bit
        return numbers, bits

    @property
    def country_slots(self) -> list[int]:
        """``country_number_sql``'s array: each country's number at its code's slot (16,384
        entries, built once per list of countries)."""
        return list(_country_slots(tuple(self.countries)))

    @property
    def country_slots_sql(self) -> str:
        """``country_slots`` as an SQL array literal, for ``country_number_sql``: bound as a
        parameter, psycopg spent ~12 ms of Python per 16,384-entry list (it inspects every
        element to choose the array's type), holding the GIL while the other slice waited; as
        a literal in the statement's text it is a constant parsed once by the server."""
        return _country_slots_literal(tuple(self.countries))

    def masks_sql(self, alias: str) -> str:
        return ", ".join(
            f"bit_or(CASE WHEN {alias}.kw = {w} THEN {alias}.kb ELSE 0 END) AS k{w}"
            for w in range(self.words)
        )

    def cols(self, alias: str) -> str:
        return ", ".join(f"{alias}.k{w}" for w in range(self.words))

    def zeros(self) -> str:
        return ", ".join(["0"] * self.words)


def _labels(countries: list[str]) -> _Labels:
    codes = list(PurposeCode.objects.order_by("id").values_list("id", "category"))
    categories = sorted({category for _, category in codes})
    if len(categories) > MAX_CATEGORIES or len(countries) > 1000:
        raise _UnexpectedLabel
    number = {label: i + 1 for i, label in enumerate(categories)}
    return _Labels(
        categories=categories,
        codes=[(pk, number[cat], 1 << (number[cat] - 1)) for pk, cat in codes],
        countries=countries,
        provinces=PROVINCE_LABELS,
    )


def _labeled(
    labels: _Labels,
    *,
    start: datetime.date | None,
    end: datetime.date | None,
    where: str = "TRUE",
    where_params: Iterable = (),
    province: bool = True,
) -> tuple[str, list]:
    """SQL of the counted receipts with value_date in [start, end) as rows of (id, f, mi, fy,
    cents, cat, cb, ctry, kw, kb, prov): freelancer, month index (year * 12 + month - 1),
    fiscal year ((mi + 6) / 12 - 1: July starts the next), USD cents (exact: two decimals),
    category number and bit, country number, mask word and bit, province number (0 without
    ``province``: saves a join when the caller knows the freelancers' provinces)."""
    receipts = counted_receipts()
    fields = [
        "id",
        "value_date",
        "usd_amount",
        "freelancer_id",
        "purpose_code_id",
        "remitter_country",
    ]
    if province:
        receipts = receipts.annotate(prov=dimension_expression(Dimension.PROVINCE))
        fields.append("prov")
    if start is not None:
        receipts = receipts.filter(value_date__gte=start)
    if end is not None:
        receipts = receipts.filter(value_date__lt=end)
    inner, inner_params = receipts.values(*fields).order_by().query.sql_with_params()
    no_province = "" if province else ", NULL::text AS prov"
    country = country_number_sql(labels.country_slots_sql, "q.remitter_country")
    # Identifiers and expressions are constants of this module; every value is a parameter but
    # the country slots, a literal of integers only (``_Labels.country_slots_sql``).
    sql = f"""
        SELECT r.id, r.freelancer_id AS f, r.mi, (r.mi + 6) / 12 - 1 AS fy,
               (r.usd_amount * 100)::bigint AS cents, r.cat, r.cb, r.ctry,
               CASE WHEN r.ctry > 0 THEN (r.ctry - 1) / {WORD_BITS} ELSE -1 END AS kw,
               CASE WHEN r.ctry > 0 THEN 1::bigint << mod(r.ctry - 1, {WORD_BITS}) ELSE 0 END
                   AS kb,
               COALESCE(array_position(%s::text[], r.prov::text), 0) AS prov
        FROM (
            SELECT q.*{no_province}, (date_part('year', q.value_date) * 12
                         + date_part('month', q.value_date) - 1)::int AS mi,
                   COALESCE((%s::int[])[q.purpose_code_id], 0) AS cat,
                   COALESCE((%s::bigint[])[q.purpose_code_id], 0) AS cb,
                   COALESCE({country}, 0) AS ctry
            FROM ({inner}) q
            WHERE {where}
        ) r
    """  # noqa: S608
    numbers, bits = labels.code_arrays
    return sql, [
        labels.provinces,
        numbers,
        bits,
        *inner_params,
        *where_params,
    ]


def _marks_sql(period: tuple[str, int] | None) -> tuple[str, list]:
    """The one-pass statement's filter of the marks it reads (alias m): one period's, or all."""
    if period is None:
        return "TRUE", []
    return "m.kind = %s AND m.period = %s", list(period)


# The outer GROUP BY of the one-pass statement hashes one packed bigint per row instead of eight
# columns: level (GROUPING bits, 6) | period (17) | province (5) | category (7) | country (10).
_KEY_SQL = "((((s.g::bigint * 131072 + s.p) * 32 + s.prov) * 128 + s.cat) * 1024 + s.ctry)"


# The delta's period kinds as integers (``_delta_rows`` compares and returns them; ``_delta_apply``
# maps them back).
_KIND_NUMBER = {PeriodKind.MONTH: 0, PeriodKind.FISCAL_YEAR: 1}
_KIND_OF_NUMBER = {number: kind for kind, number in _KIND_NUMBER.items()}

# YYYYMM of a labelled receipt row (alias o) from its month index.
_MONTH_KEY_SQL = "(o.mi / 12) * 100 + mod(o.mi, 12) + 1"


def _unpack_key(key: int) -> tuple[int, int, int, int, int]:
    key, ctry = divmod(key, 1024)
    key, cat = divmod(key, 128)
    key, prov = divmod(key, 32)
    level, period = divmod(key, 131072)
    return level, period, prov, cat, ctry


def _one_pass(
    *,
    kinds: set[str],
    start: datetime.date | None,
    end: datetime.date | None,
    countries: list[str],
    marks_of: tuple[str, int] | None,
) -> tuple[FigureSets, list[int]]:
    """PostgreSQL: every figure of both period kinds from ONE scan and ONE sort of the receipts,
    and the stale marks (of ``marks_of``, or all) read in the same statement.

    GROUPING SETS: (month, category, country, province) gives every sum and count (a few
    thousand rows; fiscal years add up their months); the rollup (freelancer, fiscal year,
    month), computed from one sort by freelancer, gives one row per freelancer and month and per
    freelancer and fiscal year with bit masks of the categories and countries the freelancer
    received money under. An outer hash aggregate counts those rows per (period, province,
    masks), and the bits are expanded here: a freelancer counts once in every group whose bit is
    set, which is exactly ``COUNT(DISTINCT freelancer_id)`` per group.
    """
    labels = _labels(countries)
    receipts_sql, params = _labeled(labels, start=start, end=end)
    marks_where, marks_params = _marks_sql(marks_of)
    sql = f"""
        SELECT x.key, x.cm, {labels.cols("x")}, x.cents, x.n, x.people
        FROM (
            SELECT {_KEY_SQL} AS key, SUM(s.cents)::bigint AS cents, SUM(s.n)::bigint AS n,
                   COUNT(*) AS people, s.cm, {labels.cols("s")}
            FROM (
                SELECT GROUPING(t.f, t.prov, t.fy, t.mi, t.cat, t.ctry) AS g,
                       COALESCE(t.mi, t.fy) AS p, t.prov,
                       COALESCE(t.cat, 0) AS cat, COALESCE(t.ctry, 0) AS ctry,
                       SUM(t.cents) AS cents, COUNT(*) AS n,
                       CASE WHEN GROUPING(t.cat) = 1 THEN bit_or(t.cb) ELSE 0 END AS cm,
                       {labels.masks_sql("t")}
                FROM ({receipts_sql}) t
                GROUP BY GROUPING SETS ((t.f, t.prov, t.fy, t.mi), (t.f, t.prov, t.fy),
                                        (t.mi, t.cat, t.ctry, t.prov))
                HAVING t.f IS NOT NULL OR GROUPING(t.f) = 1
            ) s
            GROUP BY 1, s.cm, {labels.cols("s")}
        ) x
        UNION ALL
        SELECT -m.id, 0, {labels.zeros()}, 0, 0, 0
        FROM registry_statisticsstalemark m WHERE {marks_where}
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *marks_params])
        rows = cursor.fetchall()

    words = labels.words
    sets: dict = {}
    marks: list[int] = []
    for row in rows:
        if row[0] < 0:
            marks.append(-row[0])
            continue
        level, period, prov, cat, ctry = _unpack_key(row[0])
        cat_mask, masks = row[1], row[2 : 2 + words]
        cents, receipts_count, people = row[2 + words :]
        if prov == 0:
            raise _UnexpectedLabel
        if level in (3, 7):  # (freelancer, fiscal year[, month]): distinct freelancers
            kind = PeriodKind.MONTH if level == 3 else PeriodKind.FISCAL_YEAR
            if kind not in kinds:
                continue
            key = (kind, _month_of_index(period) if level == 3 else period)
            _add_people(sets.setdefault(key, {}), labels, prov, cat_mask, masks, people, True)
            continue
        # (month, category, country, province): sums and counts of months and fiscal years.
        if cat == 0:
            raise _UnexpectedLabel
        if ctry == 0:
            raise _UnknownCountry
        _add_month_sums(sets, kinds, labels, period, (prov, cat, ctry), cents, receipts_count)
    return _freeze(sets), marks


def _add_month_sums(
    sets: dict, kinds: set[str], labels: _Labels, month_index: int, group, cents, receipts
) -> None:
    """Add one (month, category, country, province) group's sums to its month and fiscal year."""
    month = _month_of_index(month_index)
    keys = []
    if PeriodKind.MONTH in kinds:
        keys.append((PeriodKind.MONTH, month))
    if PeriodKind.FISCAL_YEAR in kinds:
        keys.append((PeriodKind.FISCAL_YEAR, fiscal_year_of_month(month)))
    for key in keys:
        _add_sums(sets.setdefault(key, {}), labels, *group, cents, receipts)


def _add_sums(dims: dict, labels: _Labels, prov, cat, ctry, cents: int, receipts: int) -> None:
    _add(dims.setdefault(Dimension.TOTAL, {}), "", cents, receipts, 0)
    _add(dims.setdefault(Dimension.CATEGORY, {}), labels.categories[cat - 1], cents, receipts, 0)
    _add(dims.setdefault(Dimension.COUNTRY, {}), labels.countries[ctry - 1], cents, receipts, 0)
    _add(dims.setdefault(Dimension.PROVINCE, {}), labels.provinces[prov - 1], cents, receipts, 0)


def _add_people(
    dims: dict, labels: _Labels, prov: int, cat_mask: int, masks, people: int, new: bool
) -> None:
    """Count ``people`` freelancers once in every group whose bit is set (and in the total and
    their province when ``new``: not counted in the period before)."""
    if new:
        _add(dims.setdefault(Dimension.TOTAL, {}), "", 0, 0, people)
        _add(dims.setdefault(Dimension.PROVINCE, {}), labels.provinces[prov - 1], 0, 0, people)
    for bit in _bits(cat_mask):
        _add(dims.setdefault(Dimension.CATEGORY, {}), labels.categories[bit], 0, 0, people)
    for word, mask in enumerate(masks):
        for bit in _bits(mask):
            label = labels.countries[word * WORD_BITS + bit]
            _add(dims.setdefault(Dimension.COUNTRY, {}), label, 0, 0, people)


def _figure_sets_orm(
    *, kinds: Iterable[str], start: datetime.date | None, end: datetime.date | None
) -> FigureSets:
    """One grouped ORM query per period kind and breakdown (SQLite, and the exact fallback)."""
    sets: dict = {}
    for kind in kinds:
        for dimension in (Dimension.CATEGORY, Dimension.COUNTRY, Dimension.PROVINCE):
            rows = figures_queryset(kind=kind, dimension=dimension, start=start, end=end)
            for period, label, cents, receipts, people in rows.values_list(
                "p", "g", "cents", "n", "f"
            ):
                dims = sets.setdefault((kind, period), {})
                _add(dims.setdefault(dimension, {}), label, cents, receipts, people)
                if dimension == Dimension.PROVINCE:
                    # Each receipt has one province label and each freelancer one province, so
                    # the provinces' freelancer sets are disjoint and their counts add up.
                    _add(dims.setdefault(Dimension.TOTAL, {}), "", cents, receipts, people)
    return _freeze(sets)


# The outer bounds of the first and last freelancer slice: ids outside the range read when the
# slices are cut (a freelancer registered since) still fall in a slice.
ID_MIN, ID_MAX = -(2**63), 2**63 - 1
# What ``tune_aggregation`` sets: the day's delta slices take the recompute's values.
TUNED_SETTINGS = ("work_mem", "jit")


def freelancer_slices(count: int) -> list[tuple[int, int]]:
    """``count`` freelancer id ranges [lo, hi) of about equal size that cover every id."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id), max(id) FROM {Freelancer._meta.db_table}")  # noqa: S608
        first, last = cursor.fetchone()
    if first is None:
        return [(ID_MIN, ID_MAX)]
    step = max(1, -(-(last + 1 - first) // count))
    cuts = list(range(first + step, last + 1, step))[: count - 1]
    edges = [ID_MIN, *cuts, ID_MAX]
    return list(zip(edges, edges[1:], strict=False))


def _known_countries() -> list[str]:
    """The countries the current figures name, and those in a 1% sample of the receipts' pages
    (``TABLESAMPLE SYSTEM``, milliseconds): in practice every country receipts come from, a few
    dozen, so the masks fit one word. A country outside the list makes the statement run again
    with every ISO code, so the list only has to be usually right."""
    current = StatisticsPeriod.objects.filter(current__isnull=False).values("current_id")
    known = set(
        StatisticsFigure.objects.filter(revision_id__in=current, dimension=Dimension.COUNTRY)
        .values_list("label", flat=True)
        .distinct()
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT remitter_country FROM {Receipt._meta.db_table}"  # noqa: S608
            " TABLESAMPLE SYSTEM (1)"
        )
        known |= {country for (country,) in cursor.fetchall()}
    return sorted(known)


def figure_sets(
    *,
    kinds: Iterable[str],
    start: datetime.date | None,
    end: datetime.date | None,
    marks_of: tuple[str, int] | None = None,
    shared_snapshot: bool = False,
) -> tuple[FigureSets, list[int]]:
    """Every figure of the given period kinds for the counted receipts with value_date in
    [start, end), and the ids of the stale marks of ``marks_of`` (kind, period), or of every
    mark, read in the same snapshot. Run it inside the transaction that writes the figures and
    deletes those marks.

    PostgreSQL: with ``shared_snapshot`` (every receipt and mark, in a transaction that has
    written nothing but row locks: the full rebuild), slices on several connections sharing this
    transaction's snapshot (``registry.rebuild``); otherwise one statement (``_one_pass``). A
    country outside the current figures' countries re-runs it with every ISO code; a label
    outside every list falls back to the ORM queries.
    SQLite serialises writers (``BEGIN IMMEDIATE``), so reading the marks first is as exact.
    """
    kinds = list(kinds)
    if connection.vendor == "postgresql":
        from registry import rebuild  # it builds on this module's helpers

        known = _known_countries() or EVERY_COUNTRY
        for countries in (known, sorted(set(known) | set(EVERY_COUNTRY))):
            try:
                if shared_snapshot and start is None and end is None and marks_of is None:
                    result = rebuild.build(kinds=set(kinds), countries=countries)
                    if result is not None:
                        return result
                return _one_pass(
                    kinds=set(kinds), start=start, end=end, countries=countries, marks_of=marks_of
                )
            except _UnknownCountry:
                continue
            except _UnexpectedLabel:
                break
    marks = StatisticsStaleMark.objects.all()
    if marks_of is not None:
        marks = marks.filter(kind=marks_of[0], period=marks_of[1])
    ids = list(marks.values_list("id", flat=True))
    return _figure_sets_orm(kinds=kinds, start=start, end=end), ids


def _stored(revisions: dict[tuple[str, int], int]) -> dict:
    """The figures of each period's revision ``revisions[(kind, period)]``, in one query."""
    key_of = {revision_id: key for key, revision_id in revisions.items()}
    sets: dict = {key: {} for key in revisions}
    for revision_id, dimension, label, cents, receipts, people in StatisticsFigure.objects.filter(
        revision_id__in=key_of
    ).values_list("revision_id", "dimension", "label", "total_cents", "receipts", "freelancers"):
        dims = sets[key_of[revision_id]]
        _add(dims.setdefault(dimension, {}), label, cents, receipts, people)
    return sets


def figure_delta(
    *,
    periods: list[tuple[str, int]],
    start: datetime.date,
    end: datetime.date,
    revisions: dict[tuple[str, int], int],
    workers: int = 1,
) -> tuple[FigureSets, list[int]] | None:
    """PostgreSQL: for each (kind, period) in ``periods`` (all within [start, end), for example a
    fiscal year and its stale months), the figures of its stored revision ``revisions[...]``
    plus the receipts its stale marks name; and the marks read. None when that is not exact, and
    the caller recomputes the periods from all their receipts: a period without marks, a mark
    without a receipt (a reversal, a re-match), a mark without a freelancer whose receipt has
    one, or a label outside the lists.

    Exact because a revision was computed from a snapshot in which every mark it did not delete
    was not yet committed, and a mark commits with its receipt: the receipts named by a period's
    marks are exactly its counted receipts that its revision did not see. For distinct freelancers
    the statement takes, per freelancer the marks name (the receipt's, as recorded: a re-match
    writes a mark without a receipt), every counted receipt of theirs in [start, end), new and
    old (an index lookup per freelancer), and per period compares the categories and
    countries (bit masks) of the new receipts with those of the others: a freelancer adds one to
    a group only where the group is new to them in the period. One statement serves a month and
    its fiscal year: the lookups are shared.

    The country masks cover the countries the stored revisions already name (in practice one
    mask word, a quarter of the work of every ISO code's four); a new receipt from a country
    outside them runs the statement again with every code. An older receipt from such a country
    sets no bit, which changes no count: a new receipt from the same country would be outside
    the list too.
    """
    if connection.vendor != "postgresql" or not periods:
        return None
    stored = _stored({key: revisions[key] for key in periods})
    named = {label for dims in stored.values() for label in dims.get(Dimension.COUNTRY, {})}
    for countries in (sorted(named), EVERY_COUNTRY):
        try:
            labels = _labels(countries)
            rows = _delta_rows(labels, periods=periods, start=start, end=end, workers=workers)
            return _delta_apply(labels, rows, periods, stored)
        except _UnknownCountry:
            continue
        except _UnexpectedLabel:
            return None
    return None


def period_pairs(keys: list[tuple[str, int]]) -> tuple[str, list]:
    """The rows of a ``VALUES`` list of (kind, period) pairs, ``(%s, %s), ...``, and their
    parameters in order."""
    return ", ".join(["(%s, %s)"] * len(keys)), [x for key in keys for x in key]


def _delta_rows(
    labels: _Labels,
    *,
    periods: list[tuple[str, int]],
    start: datetime.date,
    end: datetime.date,
    workers: int,
) -> list[tuple]:
    """``figure_delta``'s statement: its rows, on ``workers`` freelancer slices."""
    pairs, pair_params = period_pairs(periods)
    # Compiled once (the ORM's compilation was ~2 ms a time). The receipts the marks name
    # without a freelancer (unmatched when recorded; the first slice reads those marks): their
    # sums.
    unmatched_sql, unmatched_params = _labeled(
        labels,
        start=start,
        end=end,
        where="q.id = ANY(ARRAY(SELECT m.receipt_id FROM m"
        " WHERE m.receipt_id IS NOT NULL AND m.freelancer_id IS NULL))",
    )
    # Every counted receipt of the slice's freelancers named by the marks, new and old: one
    # index lookup per freelancer, which also returns the new receipts themselves.
    known_sql, known_params = _labeled(
        labels,
        start=start,
        end=end,
        where="q.freelancer_id = ANY(ARRAY(SELECT fp.f FROM fp))",
        province=False,  # the freelancers' provinces come from ``fp``
    )
    words = range(labels.words)
    masks = ", ".join(
        f"bit_or(CASE WHEN t.new AND t.kw = {w} THEN t.kb ELSE 0 END) AS n{w}, "
        f"bit_or(CASE WHEN NOT t.new AND t.kw = {w} THEN t.kb ELSE 0 END) AS o{w}"
        for w in words
    )
    # A slice reads the marks of its freelancers (each mark names its receipt's freelancer; the
    # first slice also takes those without one: unmatched receipts and changes without a
    # receipt) and returns their ids: a receipt of the slice's freelancers that a mark names is
    # named by one of those. The freelancers' provinces come from an index-only scan of
    # ``freelancer_id_province_idx``. Each receipt of theirs under each period it falls in is
    # flagged new when that period's marks name it (a hashed IN, on integers: the period kind
    # as 0 for a month and 1 for a fiscal year; the marks' statistics are rarely analysed and
    # any join with them is planned as a nested loop), then one hash aggregate per (period,
    # freelancer). Row 4: a mark without a freelancer named a receipt that has one, which no
    # slice looked up (not exact).
    int_pairs = ", ".join(["(%s::int, %s::int)"] * len(periods))
    int_pair_params = [x for kind, key in periods for x in (_KIND_NUMBER[kind], key)]
    mark_kind = " ".join(f"WHEN '{kind.value}' THEN {n}" for kind, n in _KIND_NUMBER.items())
    month, fiscal_year = _KIND_NUMBER[PeriodKind.MONTH], _KIND_NUMBER[PeriodKind.FISCAL_YEAR]
    province = province_number_sql("f.province", "%s", ["%s"] * len(labels.provinces))
    sql = f"""
        WITH m AS MATERIALIZED (
            SELECT m.id, CASE m.kind {mark_kind} END AS k, m.period, m.receipt_id,
                   m.freelancer_id
            FROM {StatisticsStaleMark._meta.db_table} m
            WHERE (m.kind, m.period) IN (VALUES {pairs})
              AND ((m.freelancer_id >= %s AND m.freelancer_id < %s)
                   OR (%s AND m.freelancer_id IS NULL))
        ),
        fp AS MATERIALIZED (
            SELECT f.id AS f, {province} AS prov
            FROM {Freelancer._meta.db_table} f
            WHERE f.id = ANY(ARRAY(
                SELECT DISTINCT m.freelancer_id FROM m WHERE m.freelancer_id IS NOT NULL
            ))
        ),
        u AS MATERIALIZED ({unmatched_sql}),
        o AS MATERIALIZED (
            SELECT u.* FROM u WHERE u.f IS NULL
            UNION ALL SELECT x.* FROM ({known_sql}) x
        ),
        t AS (
            SELECT s.k, s.period, o.f, o.prov, o.cat, o.cb, o.ctry, o.cents, o.kw, o.kb,
                   (s.k, s.period, o.id) IN (
                       SELECT m.k, m.period, m.receipt_id FROM m WHERE m.receipt_id IS NOT NULL
                   ) AS new
            FROM o
            JOIN (VALUES {int_pairs}) AS s(k, period)
                ON (s.k = {month} AND s.period = {_MONTH_KEY_SQL})
                OR (s.k = {fiscal_year} AND s.period = o.fy)
        ),
        p AS (
            SELECT t.k, t.period, t.f, bool_or(NOT t.new) AS known,
                   bit_or(CASE WHEN t.new THEN t.cb ELSE 0 END) AS ncm,
                   bit_or(CASE WHEN t.new THEN 0 ELSE t.cb END) AS ocm, {masks}
            FROM t WHERE t.f IS NOT NULL
            GROUP BY t.k, t.period, t.f HAVING bool_or(t.new)
        )
        SELECT 1, p.k, p.period, fp.prov * 2 + (NOT p.known)::int,
               p.ncm & ~p.ocm, {", ".join(f"p.n{w} & ~p.o{w}" for w in words)},
               0, 0, COUNT(*), NULL::bigint[]
        FROM p JOIN fp ON fp.f = p.f
        GROUP BY 2, 3, 4, 5, {", ".join(str(6 + w) for w in words)}
        UNION ALL
        SELECT 2, t.k, t.period,
               (COALESCE(fp.prov, t.prov) * 128 + t.cat) * 1024 + t.ctry,
               0, {labels.zeros()}, SUM(t.cents)::bigint, COUNT(*), 0, NULL::bigint[]
        FROM t LEFT JOIN fp ON fp.f = t.f WHERE t.new GROUP BY 2, 3, 4
        UNION ALL
        SELECT 3, m.k, m.period, 0, bool_and(m.receipt_id IS NOT NULL)::int,
               {labels.zeros()}, 0, 0, 0, array_agg(m.id)
        FROM m GROUP BY 2, 3
        UNION ALL
        SELECT 4, NULL, NULL, 0, 0, {labels.zeros()}, 0, 0, 0, NULL::bigint[]
        FROM u WHERE u.f IS NOT NULL
    """  # noqa: S608

    def slice_params(lo: int, hi: int, first: bool) -> list:
        """The statement's parameters for the freelancers in [lo, hi); the ``first`` slice also
        takes the marks without a freelancer, and the receipts they name."""
        return [
            *pair_params,
            lo,
            hi,
            first,
            UNKNOWN_PROVINCE,
            *labels.provinces,
            *unmatched_params,
            *known_params,
            *int_pair_params,
        ]

    # Bound on the server (``fetch_in_snapshot``, ``fetch_prepared``): merging its ~600
    # parameters into the SQL text on the client (Django's way) cost ~80 ms of Python per run.
    if workers > 1:
        # Freelancer slices on connections sharing this transaction's snapshot: each finds its
        # freelancers' other receipts; sums and counts of disjoint slices add up.
        statements = [
            (sql, slice_params(lo, hi, i == 0))
            for i, (lo, hi) in enumerate(freelancer_slices(workers))
        ]
        try:
            return [
                row
                for rows in fetch_in_snapshot(statements, workers=workers, inherit=TUNED_SETTINGS)
                for row in rows
            ]
        except OperationalError as error:  # a slice could not connect: read-only, so
            logger.warning("statistics delta in slices failed (%s); one connection instead", error)
    return fetch_prepared(sql, slice_params(ID_MIN, ID_MAX, True))


def _delta_apply(
    labels: _Labels, rows: list[tuple], periods: list[tuple[str, int]], stored: dict
) -> tuple[FigureSets, list[int]] | None:
    """The stored figures of ``periods`` plus ``_delta_rows``' changes, and the marks read; None
    when that is not exact. Raises ``_UnknownCountry`` for a new receipt's country outside
    ``labels``' (the caller runs the statement again with every code)."""
    sets = {
        key: {dim: {label: list(v) for label, v in groups.items()} for dim, groups in dims.items()}
        for key, dims in stored.items()
    }
    marks: list[int] = []
    marked: set[tuple[str, int]] = set()
    n = labels.words
    for row in rows:
        what, kind, period, key, cat_mask = row[:5]
        masks_of_row = row[5 : 5 + n]
        cents, receipts_count, people, mark_ids = row[5 + n :]
        if what == 4:  # a receipt named without a freelancer has one now
            return None
        kind = _KIND_OF_NUMBER[kind]
        dims = sets[(kind, period)]
        if what == 3:  # the period's marks: their ids, and whether each names a receipt
            if not cat_mask:  # a mark without a receipt: recompute from all receipts
                return None
            marks.extend(mark_ids)
            marked.add((kind, period))
        elif what == 2:
            rest, ctry = divmod(key, 1024)
            prov, cat = divmod(rest, 128)
            if ctry == 0:
                raise _UnknownCountry
            if 0 in (prov, cat):
                return None
            _add_sums(dims, labels, prov, cat, ctry, cents, receipts_count)
        else:
            prov, new = divmod(key, 2)
            if prov == 0:
                return None
            _add_people(dims, labels, prov, cat_mask, masks_of_row, people, bool(new))
    if marked != set(periods):  # a period without marks: an explicit recompute rescans it
        return None
    return _freeze(sets), marks


def figures_insert(*, revision_of: dict[tuple[str, int], int], sets: FigureSets) -> int:
    """Insert the figures of ``sets`` of each (kind, period) in ``revision_of`` into that
    revision (periods without figures get none). Returns the row count."""
    figures = [
        StatisticsFigure(
            revision_id=revision_of[key],
            dimension=dimension,
            label=label,
            total_cents=cents,
            receipts=receipts,
            freelancers=people,
        )
        for key, dims in sets.items()
        if key in revision_of
        for dimension, groups in dims.items()
        for label, (cents, receipts, people) in groups.items()
    ]
    StatisticsFigure.objects.bulk_create(figures, batch_size=2000)
    return len(figures)


def tune_aggregation(*, work_mem: str) -> None:
    """On PostgreSQL, for the current transaction only (``SET LOCAL``): let sorts and hashes use
    ``work_mem`` (for example "512MB") so they stay in memory, switch JIT compilation off (it
    costs a few hundred milliseconds per statement and saves less here), and commit without
    waiting for the WAL flush (``synchronous_commit = off``): a crash can lose only the last
    fraction of a second of recomputes, each whole (its figures and the marks it consumed go
    together), and the stale marks it would have deleted are still there for the periodic refresh
    (``registry-refresh-stale-statistics``). No-op elsewhere."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('work_mem', %s, true), set_config('jit', 'off', true),"
            " set_config('synchronous_commit', 'off', true)",
            [work_mem],
        )
