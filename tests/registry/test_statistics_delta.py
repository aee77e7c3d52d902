"""The incremental path: receipts just recorded are added to the stored figures (PostgreSQL)."""

import datetime
import random
from decimal import Decimal

import pytest
from django.db import transaction

from payments.models import PurposeCode, Receipt
from payments.signals import receipts_changed
from registry.aggregation import _figure_sets_orm, figure_delta
from registry.models import PeriodKind, StatisticsPeriod, StatisticsStaleMark
from registry.selectors import stored_figures
from registry.services import (
    _period_range,
    statistics_period_recompute,
    statistics_rebuild,
    statistics_refresh,
    statistics_stale_periods,
)
from tests.factories import ApprovedFreelancerFactory, ReceiptFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

KINDS = [PeriodKind.MONTH, PeriodKind.FISCAL_YEAR]


def record(**fields) -> Receipt:
    """What ``receipt_record`` does for statistics: the receipt, then ``receipts_changed`` with
    the receipt named as the change."""
    receipt = ReceiptFactory(**fields)
    receipts_changed.send(
        sender=Receipt, months={receipt.value_date.replace(day=1)}, added=[receipt.pk]
    )
    return receipt


def stored(kind: str, period: int) -> dict:
    out = {}
    for dimension in ("total", "category", "country", "province"):
        groups = stored_figures(kind=kind, periods=[period], dimension=dimension).get(period, {})
        if groups:
            out[dimension] = groups
    return out


def orm_figures(kind: str, period: int) -> dict:
    """The period's figures by the ORM definition, shaped as ``stored`` returns them."""
    start, end = _period_range(kind, period)
    expected = _figure_sets_orm(kinds=[kind], start=start, end=end)[(kind, period)]
    return {dim: dict(groups) for dim, groups in expected.items()}


def _population(rng: random.Random):
    people = [ApprovedFreelancerFactory(province=p) for p in ("punjab", "sindh", "", "punjab")]
    codes = list(PurposeCode.objects.filter(is_it=True))
    for _ in range(60):
        ReceiptFactory(
            value_date=datetime.date(2024, 3, 1) + datetime.timedelta(days=rng.randrange(120)),
            amount=Decimal(rng.randrange(1, 10_000_00)) / 100,
            freelancer=rng.choice([*people, None]),
            remitter_country=rng.choice(["US", "GB", "AE"]),
            purpose_code=rng.choice(codes),
        )
    return people, codes


def _record_new(rng: random.Random, people, codes, *, count: int, province: str) -> None:
    """``count`` receipts recorded after the rebuild, in April and May 2024: known freelancers in
    known and new groups, a newcomer (in ``province``), unmatched money, a new country."""
    newcomer = ApprovedFreelancerFactory(province=province)
    for _ in range(count):
        record(
            value_date=datetime.date(2024, 4, 1) + datetime.timedelta(days=rng.randrange(60)),
            amount=Decimal(rng.randrange(1, 10_000_00)) / 100,
            freelancer=rng.choice([*people, newcomer, None]),
            remitter_country=rng.choice(["US", "GB", "AE", "FR"]),
            purpose_code=rng.choice(codes),
        )


def test_recorded_receipts_are_added_to_the_stored_figures_exactly():
    rng = random.Random(3)
    people, codes = _population(rng)
    statistics_rebuild()
    _record_new(rng, people, codes, count=40, province="khyber_pakhtunkhwa")
    stale = statistics_stale_periods()
    assert (PeriodKind.MONTH, 202404) in stale and (PeriodKind.FISCAL_YEAR, 2023) in stale
    start, end = _period_range(PeriodKind.FISCAL_YEAR, 2023)
    for together in ([key] for key in stale), [stale]:  # one period at a time, then all at once
        for periods in together:
            rows = {k: StatisticsPeriod.objects.get(kind=k[0], period=k[1]) for k in periods}
            with transaction.atomic():
                delta = figure_delta(
                    periods=periods,
                    start=start,
                    end=end,
                    revisions={k: row.current_id for k, row in rows.items()},
                )
            assert delta is not None, periods
            sets, marks = delta
            assert sorted(marks) == sorted(
                StatisticsStaleMark.objects.filter(
                    kind__in={k[0] for k in periods}, period__in={k[1] for k in periods}
                ).values_list("id", flat=True)
            )
            for kind, period in periods:
                assert sets[(kind, period)] == orm_figures(kind, period), (kind, period)
    assert statistics_refresh() == len(stale)
    assert statistics_stale_periods() == []
    for kind, period in stale:
        assert stored(kind, period) == orm_figures(kind, period)


def test_a_fiscal_year_delta_after_its_month_was_refreshed_alone():
    """The month's marks consumed, the fiscal year's not: the month's receipts are known to the
    month and new to the fiscal year, in one statement."""
    people, codes = _population(random.Random(6))
    statistics_rebuild()
    record(value_date=datetime.date(2024, 4, 2), freelancer=people[2], remitter_country="FR")
    statistics_period_recompute(kind=PeriodKind.MONTH, period=202404, only_if_stale=True)
    record(value_date=datetime.date(2024, 4, 3), freelancer=people[2], remitter_country="DE")
    record(value_date=datetime.date(2024, 5, 3), freelancer=people[3], purpose_code=codes[-1])
    assert statistics_stale_periods() == [
        (PeriodKind.FISCAL_YEAR, 2023),
        (PeriodKind.MONTH, 202404),
        (PeriodKind.MONTH, 202405),
    ]
    assert statistics_refresh() == 3
    for kind, period in ((PeriodKind.FISCAL_YEAR, 2023), (PeriodKind.MONTH, 202404)):
        assert stored(kind, period) == orm_figures(kind, period)


def test_a_mark_without_a_receipt_makes_the_period_rescan():
    people, codes = _population(random.Random(4))
    statistics_rebuild()
    record(value_date=datetime.date(2024, 5, 5), freelancer=people[0], purpose_code=codes[0])
    gone = Receipt.objects.filter(value_date__month=5, reversed_on__isnull=True).first()
    Receipt.objects.filter(pk=gone.pk).update(reversed_on=datetime.date(2024, 6, 1))
    receipts_changed.send(sender=Receipt, months={datetime.date(2024, 5, 1)})  # a reversal
    start, end = _period_range(PeriodKind.MONTH, 202405)
    row = StatisticsPeriod.objects.get(kind=PeriodKind.MONTH, period=202405)
    with transaction.atomic():
        assert (
            figure_delta(
                periods=[(PeriodKind.MONTH, 202405)],
                start=start,
                end=end,
                revisions={(PeriodKind.MONTH, 202405): row.current_id},
            )
            is None
        )
    statistics_refresh()
    assert stored(PeriodKind.MONTH, 202405) == orm_figures(PeriodKind.MONTH, 202405)


def test_a_mark_naming_a_receipt_without_its_freelancer_makes_the_period_rescan():
    """The slices look up the freelancers the marks name: a mark without a freelancer whose
    receipt has one (written before marks carried it) is not exact as a delta."""
    people, codes = _population(random.Random(9))
    statistics_rebuild()
    record(value_date=datetime.date(2024, 5, 6), freelancer=people[1], purpose_code=codes[0])
    StatisticsStaleMark.objects.update(freelancer_id=None)
    start, end = _period_range(PeriodKind.FISCAL_YEAR, 2023)
    periods = sorted(statistics_stale_periods())
    revisions = {
        k: StatisticsPeriod.objects.get(kind=k[0], period=k[1]).current_id for k in periods
    }
    with transaction.atomic():
        assert figure_delta(periods=periods, start=start, end=end, revisions=revisions) is None
    assert statistics_refresh() == 2
    for key in periods:
        assert stored(*key) == orm_figures(*key), key


def test_the_migration_fills_the_freelancer_of_marks_written_before_it():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("registry.migrations.0004_stale_mark_freelancer")
    people, _ = _population(random.Random(10))
    matched = record(value_date=datetime.date(2024, 5, 6), freelancer=people[0])
    unmatched = record(value_date=datetime.date(2024, 5, 7), freelancer=None)
    receipts_changed.send(sender=Receipt, months={datetime.date(2024, 5, 1)})  # no receipt
    StatisticsStaleMark.objects.update(freelancer_id=None)
    migration.fill_freelancers(apps, None)
    marks = StatisticsStaleMark.objects.filter(kind=PeriodKind.MONTH)
    assert sorted(marks.values_list("receipt_id", "freelancer_id"), key=str) == sorted(
        [(matched.pk, people[0].pk), (unmatched.pk, None), (None, None)], key=str
    )


def test_a_receipt_reversed_at_once_adds_nothing_and_a_second_refresh_changes_nothing():
    people, codes = _population(random.Random(5))
    statistics_rebuild()
    before = stored(PeriodKind.MONTH, 202404)
    record(
        value_date=datetime.date(2024, 4, 9),
        freelancer=people[1],
        purpose_code=codes[0],
        reversed_on=datetime.date(2024, 4, 10),  # recorded already reversed: not counted
    )
    statistics_refresh()
    assert stored(PeriodKind.MONTH, 202404) == before
    assert statistics_refresh() == 0


@pytest.mark.django_db(transaction=True)
def test_the_delta_in_freelancer_slices_equals_the_delta_on_one_connection(monkeypatch):
    """A day's worth of marks runs the delta on two connections sharing the snapshot, each with
    its half of the freelancers (the first also the marks without one): the same figures
    and the same marks as one statement, and the ORM's figures."""
    import registry.receivers

    # Committed data (the slices' connections read it; tests/conftest.py's ``_reference_data``
    # seeds the purpose codes a flush removed), and no refresh task consuming the marks after
    # each commit: the test runs the delta itself.
    monkeypatch.setattr(registry.receivers, "enqueue_debounced_on_commit", lambda *a, **k: None)
    rng = random.Random(7)
    people, codes = _population(rng)
    statistics_rebuild()
    _record_new(rng, people, codes, count=60, province="sindh")
    stale = statistics_stale_periods()
    start, end = _period_range(PeriodKind.FISCAL_YEAR, 2023)
    revisions = {
        key: StatisticsPeriod.objects.get(kind=key[0], period=key[1]).current_id for key in stale
    }
    results = {}
    for workers in (1, 2):
        with transaction.atomic():
            results[workers] = figure_delta(
                periods=stale, start=start, end=end, revisions=revisions, workers=workers
            )
    assert results[1] is not None and results[2] is not None
    (one, one_marks), (sliced, sliced_marks) = results[1], results[2]
    assert sorted(sliced_marks) == sorted(one_marks) and len(one_marks) == 2 * 60
    assert sliced == one
    for kind, period in stale:
        assert sliced[(kind, period)] == orm_figures(kind, period), (kind, period)


def _delta_statements(queries) -> list[str]:
    return [q["sql"] for q in queries if "registry_statisticsstalemark m" in q["sql"]]


def test_the_delta_masks_only_the_stored_countries_and_reruns_for_a_new_one():
    """Countries the stored figures name: one mask word, one statement; a new receipt from any
    other country runs the statement again with every ISO code (four words), still exact."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    people, codes = _population(random.Random(8))
    statistics_rebuild()
    periods = [(PeriodKind.FISCAL_YEAR, 2023), (PeriodKind.MONTH, 202404)]
    start, end = _period_range(PeriodKind.FISCAL_YEAR, 2023)
    for country, words in (("GB", 1), ("FR", 4)):
        record(value_date=datetime.date(2024, 4, 9), freelancer=people[0], remitter_country=country)
        revisions = {
            k: StatisticsPeriod.objects.get(kind=k[0], period=k[1]).current_id for k in periods
        }
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            sets, _ = figure_delta(periods=periods, start=start, end=end, revisions=revisions)
        statements = _delta_statements(queries.captured_queries)
        assert len(statements) == (1 if words == 1 else 2)
        assert f"AS n{words - 1}," in statements[-1] and f"AS n{words}," not in statements[-1]
        for key in periods:
            assert sets[key] == orm_figures(*key), key
        assert statistics_refresh() == 2
