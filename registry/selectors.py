"""Reads: the set-based SQL that turns receipts into figures, and the stored figures readers get.

Figures are computed in the database by ``SELECT ... GROUP BY`` over
``payments.selectors.counted_receipts()``; only the grouped rows (a few per period) reach Python,
receipts never do. The SQL is built with the ORM (so it is the same on SQLite and PostgreSQL); a
test compares it with a plain Python definition on small data.
"""

import datetime
from collections.abc import Iterable, Iterator

import pycountry
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

from freelancers.models import Province
from payments.models import PurposeCode, Receipt
from payments.selectors import counted_receipts
from registry.models import (
    Dimension,
    PeriodKind,
    StatisticsFigure,
    StatisticsPeriod,
    StatisticsRevision,
)
from registry.periods import fiscal_year_of_month

UNKNOWN_PROVINCE = "unknown"


def _dimension_expression(dimension: str):
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
        receipts.annotate(p=_period_expression(kind), g=_dimension_expression(dimension))
        .values("p", "g")
        .annotate(cents=_cents_sum(), n=Count("id"), f=Count("freelancer_id", distinct=True))
        .order_by()
    )


# (kind, period) -> dimension -> label -> (USD cents, receipts, distinct freelancers)
FigureSets = dict[tuple[str, int], dict[str, dict[str, tuple[int, int, int]]]]


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


def _country_words(labels: list[str]) -> list[tuple[str, int, int, int]]:
    """(country, number, mask word, bit) for a VALUES list: 63 countries per bigint mask word."""
    return [(c, i + 1, i // 63, 1 << (i % 63)) for i, c in enumerate(labels)]


# The outer GROUP BY of the one-pass statement hashes one packed bigint per row instead of eight
# columns: level (GROUPING bits, 6) | period (17) | province (5) | category (7) | country (10).
_KEY_SQL = "((((s.g::bigint * 131072 + s.p) * 32 + s.prov) * 128 + s.cat) * 1024 + s.ctry)"


def _unpack_key(key: int) -> tuple[int, int, int, int, int]:
    key, ctry = divmod(key, 1024)
    key, cat = divmod(key, 128)
    key, prov = divmod(key, 32)
    level, period = divmod(key, 131072)
    return level, period, prov, cat, ctry


def _one_pass_sql(*, inner_sql: str, countries: int, categories: int, provinces: int) -> str:
    words = max(1, -(-countries // 63))
    masks = ", ".join(
        f"bit_or(CASE WHEN t.kw = {w} THEN t.kb ELSE 0 END) AS k{w}" for w in range(words)
    )
    mask_cols = ", ".join(f"x.k{w}" for w in range(words))
    cat_values = ", ".join(["(%s, %s, %s)"] * categories)
    country_values = ", ".join(["(%s, %s, %s, %s)"] * countries)
    prov_values = ", ".join(["(%s, %s)"] * provinces)
    # mi = months since year 0 (year * 12 + month - 1); a fiscal year starts in July, so it is
    # (mi + 6) / 12 - 1 in integer division. The sums' set is keyed by month (p = mi), the
    # distinct-freelancer sets by month (level 3) or fiscal year (level 7).
    # Identifiers and expressions are constants of this module; every value is a parameter.
    return f"""
        SELECT x.key, x.cm, {mask_cols}, x.cents, x.n, x.people
        FROM (
            SELECT {_KEY_SQL} AS key, SUM(s.cents)::bigint AS cents, SUM(s.n)::bigint AS n,
                   COUNT(*) AS people, s.cm, {", ".join(f"s.k{w}" for w in range(words))}
            FROM (
                SELECT GROUPING(t.f, t.prov, t.fy, t.mi, t.cat, t.ctry) AS g,
                       COALESCE(t.mi, t.fy) AS p, t.prov,
                       COALESCE(t.cat, 0) AS cat, COALESCE(t.ctry, 0) AS ctry,
                       SUM(t.cents) AS cents, COUNT(*) AS n,
                       CASE WHEN GROUPING(t.cat) = 1 THEN bit_or(t.cb) ELSE 0 END AS cm,
                       {masks}
                FROM (
                    SELECT r.freelancer_id AS f, r.mi, (r.mi + 6) / 12 - 1 AS fy,
                           (r.usd_amount * 100)::bigint AS cents,
                           COALESCE(c.n, 0) AS cat, COALESCE(c.b, 0) AS cb,
                           COALESCE(k.n, 0) AS ctry, COALESCE(k.w, -1) AS kw,
                           COALESCE(k.b, 0) AS kb, COALESCE(v.n, 0) AS prov
                    FROM (
                        SELECT q.*, (date_part('year', q.value_date) * 12
                                     + date_part('month', q.value_date) - 1)::int AS mi
                        FROM ({inner_sql}) q
                    ) r
                    LEFT JOIN (VALUES {cat_values}) AS c(v, n, b) ON c.v = r.purpose_code_id
                    LEFT JOIN (VALUES {country_values}) AS k(v, n, w, b)
                        ON k.v = r.remitter_country
                    LEFT JOIN (VALUES {prov_values}) AS v(v, n) ON v.v = r.prov
                ) t
                GROUP BY GROUPING SETS ((t.f, t.prov, t.fy, t.mi), (t.f, t.prov, t.fy),
                                        (t.mi, t.cat, t.ctry, t.prov))
                HAVING t.f IS NOT NULL OR GROUPING(t.f) = 1
            ) s
            GROUP BY 1, s.cm, {", ".join(f"s.k{w}" for w in range(words))}
        ) x
    """  # noqa: S608


def _bits(mask: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _month_of_index(mi: int) -> int:
    return (mi // 12) * 100 + mi % 12 + 1


def _known_countries() -> list[str]:
    """The country labels of the figures readers see now: the receipts' countries, in practice
    (a few dozen), so the masks usually fit one word. A country outside the list makes the
    statement run again with every ISO code."""
    current = StatisticsPeriod.objects.filter(current__isnull=False).values("current_id")
    return sorted(
        set(
            StatisticsFigure.objects.filter(revision_id__in=current, dimension=Dimension.COUNTRY)
            .values_list("label", flat=True)
            .distinct()
        )
    )


def _figure_sets_one_pass(
    *,
    kinds: Iterable[str],
    start: datetime.date | None,
    end: datetime.date | None,
    countries: list[str],
) -> FigureSets | None:
    """PostgreSQL: every figure of both period kinds from ONE scan and ONE sort of the receipts.

    The statement groups the receipts by GROUPING SETS: (month, category, country, province)
    gives every sum and count (a few thousand rows; fiscal years add up their months), and the
    rollup (freelancer, fiscal year, month), which PostgreSQL computes from one sort by
    freelancer, gives one row per freelancer and month and per freelancer and fiscal year with
    bit masks of the categories and countries the freelancer received money under. An outer
    hash aggregate counts those rows per (period, province, masks), and the bits are expanded
    here: a freelancer counts once in every group whose bit is set, which is exactly
    ``COUNT(DISTINCT freelancer_id)`` per group. Returns None when a receipt carries a
    category or province outside the VALUES lists (the caller then runs the ORM queries), and
    raises ``_UnknownCountry`` for a country outside ``countries``, so the result is exact.
    """
    kinds = set(kinds)
    receipts = counted_receipts().annotate(prov=_dimension_expression(Dimension.PROVINCE))
    if start is not None:
        receipts = receipts.filter(value_date__gte=start)
    if end is not None:
        receipts = receipts.filter(value_date__lt=end)
    fields = ["value_date", "usd_amount", "freelancer_id", "purpose_code_id", "remitter_country"]
    inner_sql, inner_params = receipts.values(*fields, "prov").order_by().query.sql_with_params()

    codes = list(PurposeCode.objects.order_by("id").values_list("id", "category"))
    categories = sorted({category for _, category in codes})
    if len(categories) > 62 or len(countries) > 1000:
        return None
    cat_number = {label: i + 1 for i, label in enumerate(categories)}
    provinces = [UNKNOWN_PROVINCE, *Province.values]
    params = [
        *inner_params,
        *(x for pk, cat in codes for x in (pk, cat_number[cat], 1 << (cat_number[cat] - 1))),
        *(x for row in _country_words(countries) for x in row),
        *(x for i, label in enumerate(provinces) for x in (label, i + 1)),
    ]
    sql = _one_pass_sql(
        inner_sql=inner_sql,
        countries=len(countries),
        categories=len(codes),
        provinces=len(provinces),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()

    words = max(1, -(-len(countries) // 63))
    sets: dict = {}
    for row in rows:
        level, period, prov, cat, ctry = _unpack_key(row[0])
        cat_mask, masks = row[1], row[2 : 2 + words]
        cents, receipts_count, people = row[2 + words :]
        if prov == 0:
            return None
        if level in (3, 7):  # (freelancer, fiscal year[, month]): distinct freelancers
            kind = PeriodKind.MONTH if level == 3 else PeriodKind.FISCAL_YEAR
            if kind not in kinds:
                continue
            key = (kind, _month_of_index(period) if level == 3 else period)
            dims = sets.setdefault(key, {})
            _add(dims.setdefault(Dimension.TOTAL, {}), "", 0, 0, people)
            _add(dims.setdefault(Dimension.PROVINCE, {}), provinces[prov - 1], 0, 0, people)
            for bit in _bits(cat_mask):
                _add(dims.setdefault(Dimension.CATEGORY, {}), categories[bit], 0, 0, people)
            for word, mask in enumerate(masks):
                for bit in _bits(mask):
                    label = countries[word * 63 + bit]
                    _add(dims.setdefault(Dimension.COUNTRY, {}), label, 0, 0, people)
            continue
        # (month, category, country, province): sums and counts of months and fiscal years.
        if cat == 0:
            return None
        if ctry == 0:
            raise _UnknownCountry
        month = _month_of_index(period)
        keys = []
        if PeriodKind.MONTH in kinds:
            keys.append((PeriodKind.MONTH, month))
        if PeriodKind.FISCAL_YEAR in kinds:
            keys.append((PeriodKind.FISCAL_YEAR, fiscal_year_of_month(month)))
        labels = {
            Dimension.TOTAL: "",
            Dimension.CATEGORY: categories[cat - 1],
            Dimension.COUNTRY: countries[ctry - 1],
            Dimension.PROVINCE: provinces[prov - 1],
        }
        for key in keys:
            dims = sets.setdefault(key, {})
            for dimension, label in labels.items():
                _add(dims.setdefault(dimension, {}), label, cents, receipts_count, 0)
    return _freeze(sets)


class _UnknownCountry(Exception):
    """A receipt's country is not in the statement's list: run it again with every code."""


def figure_sets(
    *, kinds: Iterable[str], start: datetime.date | None, end: datetime.date | None
) -> FigureSets:
    """Every figure of the given period kinds for the counted receipts with value_date in
    [start, end): one pass on PostgreSQL, grouped ORM queries elsewhere (or when a label is
    unexpected). Both give the same figures; tests compare them with plain Python."""
    if connection.vendor == "postgresql":
        kinds = list(kinds)
        every_code = ["", *sorted(c.alpha_2 for c in pycountry.countries)]
        known = _known_countries() or every_code
        try:
            sets = _figure_sets_one_pass(kinds=kinds, start=start, end=end, countries=known)
        except _UnknownCountry:
            try:
                sets = _figure_sets_one_pass(
                    kinds=kinds,
                    start=start,
                    end=end,
                    countries=sorted(set(known) | set(every_code)),
                )
            except _UnknownCountry:
                sets = None
        if sets is not None:
            return sets
    return _figure_sets_orm(kinds=kinds, start=start, end=end)


def figures_insert(*, kind: str, batch: str, sets: FigureSets) -> int:
    """Insert the figures of ``sets`` into the revisions of ``batch`` (one per period of
    ``kind``; periods without a revision in the batch are skipped). Returns the row count."""
    revision_of = dict(
        StatisticsRevision.objects.filter(batch=batch, kind=kind).values_list("period", "id")
    )
    figures = [
        StatisticsFigure(
            revision_id=revision_of[period],
            dimension=dimension,
            label=label,
            total_cents=cents,
            receipts=receipts,
            freelancers=people,
        )
        for (set_kind, period), dims in sets.items()
        if set_kind == kind and period in revision_of
        for dimension, groups in dims.items()
        for label, (cents, receipts, people) in groups.items()
    ]
    StatisticsFigure.objects.bulk_create(figures, batch_size=2000)
    return len(figures)


def tune_aggregation(*, work_mem: str) -> None:
    """On PostgreSQL, for the current transaction only (``SET LOCAL``): let sorts and hashes use
    ``work_mem`` (for example "512MB") so ``COUNT(DISTINCT ...)`` sorts in memory instead of
    spilling to disk, and switch JIT compilation off (it costs a few hundred milliseconds per
    statement and saves less on these short grouped scans). No-op elsewhere."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('work_mem', %s, true), set_config('jit', 'off', true)", [work_mem]
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
