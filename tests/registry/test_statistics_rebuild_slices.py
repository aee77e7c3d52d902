"""The full rebuild in slices on several connections sharing one snapshot (PostgreSQL)."""

import datetime
import importlib
import random
import threading
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection, connections, transaction

from freelancers.models import Freelancer
from payments.models import PurposeCode, Receipt
from registry import rebuild
from registry.aggregation import _figure_sets_orm, _Labels
from registry.models import PeriodKind, StatisticsPeriod, StatisticsStaleMark
from registry.services import statistics_mark_stale, statistics_rebuild, statistics_refresh
from tests.factories import ReceiptFactory
from tests.registry.helpers import python_monthly, random_receipts

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

KINDS = {PeriodKind.MONTH, PeriodKind.FISCAL_YEAR}
COUNTRIES = ["", "AE", "GB", "US"]


@pytest.fixture(autouse=True)
def purpose_codes(transactional_db):
    """Transactional tests flush the database after each test, seeded rows included: seed again."""
    from django.apps import apps

    importlib.import_module("payments.migrations.0002_seed_purpose_codes").seed(apps, None)
    PurposeCode.objects.create(code="1111", description="Goods", category="goods", is_it=False)


def _receipts(rng: random.Random, count: int) -> list:
    return random_receipts(
        rng,
        count,
        first_day=datetime.date(2023, 6, 1),
        countries=COUNTRIES,
        provinces=("punjab", "sindh", "", "sindh"),
    )


def _build(workers: int):
    with transaction.atomic():
        return rebuild.build(kinds=KINDS, countries=COUNTRIES, workers=workers)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_slices_give_the_figures_of_the_orm_aggregation(workers):
    _receipts(random.Random(3), 160)
    statistics_mark_stale(months={datetime.date(2024, 2, 1)})
    expected = _figure_sets_orm(kinds=KINDS, start=None, end=None)
    sets, marks = _build(workers)
    assert sets == expected
    assert sorted(marks) == sorted(StatisticsStaleMark.objects.values_list("id", flat=True))
    assert len(marks) == 2  # the month and its fiscal year


def test_a_freelancer_in_every_slice_counts_once_per_group():
    one, two = _receipts(random.Random(4), 40)[:2]
    for day, country in (("2024-03-01", "US"), ("2024-03-09", "GB"), ("2024-04-02", "US")):
        ReceiptFactory(
            value_date=datetime.date.fromisoformat(day),
            freelancer=one,
            remitter_country=country,
            amount=Decimal("10.00"),
        )
    sets, _ = _build(4)
    assert sets == _figure_sets_orm(kinds=KINDS, start=None, end=None)
    march = python_monthly(dimension="country")
    assert sets[(PeriodKind.MONTH, 202403)]["country"]["US"][2] == march[(202403, "US")][2]


def test_labels_outside_the_lists_are_reported_not_lost():
    _receipts(random.Random(5), 20)
    ReceiptFactory(value_date=datetime.date(2024, 5, 5), remitter_country="FR")
    with transaction.atomic(), pytest.raises(rebuild._UnknownCountry):
        rebuild.build(kinds=KINDS, countries=COUNTRIES, workers=2)
    # More countries than the masks hold: the caller runs the one statement.
    with transaction.atomic():
        many = [f"{a}{b}" for a in "ABCDEFG" for b in "ABCDEFG"]
        assert rebuild.build(kinds=KINDS, countries=many, workers=2) is None
    # A province outside the choices (written behind the model's back): the ORM queries.
    matched = Receipt.objects.exclude(freelancer=None).values("freelancer_id")[:1]
    assert Freelancer.objects.filter(pk__in=matched).update(province="atlantis") == 1
    with transaction.atomic(), pytest.raises(rebuild._UnexpectedLabel):
        rebuild.build(kinds=KINDS, countries=[*COUNTRIES, "FR"], workers=2)


def test_a_country_is_numbered_by_its_slot_exactly_as_by_its_position_in_the_list():
    labels = ["", "AE", "G", "US", "ZZ", "Ü1", "A\x7f"]  # the last two get no slot: never found
    values = ["", "AE", "ae", "A", "G", "GB", "US", "ZZ", "Z", "Ü1", "ÜS", "UÜ", "U€", "A\x7f", "€"]
    slots = _Labels(categories=[], codes=[], countries=labels, provinces=[]).country_slots
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.remitter_country, {rebuild._CTRY}"  # noqa: S608
            " FROM unnest(%(values)s::varchar(2)[]) AS r(remitter_country)",
            {"values": values, "country_slots": slots},
        )
        numbers = dict(cursor.fetchall())
    expected = {v: labels.index(v) + 1 if v in labels[:5] else 0 for v in values}
    assert numbers == expected


def test_rebuild_uses_the_slices_in_its_own_transaction_and_equals_the_definition(monkeypatch):
    _receipts(random.Random(6), 120)
    statistics_rebuild()  # stores figures: their countries are the next rebuild's list
    used = []
    real = rebuild.fetch_in_snapshot
    monkeypatch.setattr(
        rebuild, "fetch_in_snapshot", lambda *a, **k: used.append(a) or real(*a, **k)
    )
    statistics_rebuild()
    assert used, "the rebuild did not run in slices"
    with transaction.atomic():
        assert rebuild.build(kinds=KINDS, countries=COUNTRIES) is not None
    for dimension in ("total", "category", "country", "province"):
        from registry.selectors import stored_figures

        stored = stored_figures(
            kind=PeriodKind.MONTH, periods=range(202301, 202601), dimension=dimension
        )
        got = {(k, label): v for k, groups in stored.items() for label, v in groups.items()}
        assert got == python_monthly(dimension=dimension)


def test_every_slice_reads_the_snapshot_of_the_rebuild_not_what_commits_meanwhile(monkeypatch):
    freelancer = _receipts(random.Random(8), 60)[0]
    statistics_rebuild()
    before = _figure_sets_orm(kinds=KINDS, start=None, end=None)
    wrapper = type(connections["default"])  # each slice's thread copies its own connection
    real_copy = wrapper.copy
    recorded = threading.Lock()

    def copy_after_another_session_commits(self, *args):
        # Runs in a slice's thread after the snapshot was exported: another session records a
        # receipt and its marks (as the receipt service does, without the refresh it enqueues).
        if recorded.acquire(blocking=False):
            with transaction.atomic():
                new = ReceiptFactory(
                    value_date=datetime.date(2024, 2, 2),
                    freelancer=freelancer,
                    amount=Decimal("500.00"),
                    remitter_country="US",
                )
                statistics_mark_stale(months={datetime.date(2024, 2, 1)}, added=[new.pk])
            connection.close()
        return real_copy(self, *args)

    monkeypatch.setattr(wrapper, "copy", copy_after_another_session_commits)
    statistics_rebuild()
    monkeypatch.setattr(wrapper, "copy", real_copy)
    assert recorded.locked(), "the rebuild did not run in slices"
    from registry.selectors import stored_figures

    stored = stored_figures(kind=PeriodKind.MONTH, periods=[202402], dimension="total")
    assert stored[202402][""] == before[(PeriodKind.MONTH, 202402)]["total"][""]
    # Its marks were not read by the rebuild, so they stay, and the refresh adds the receipt.
    assert StatisticsStaleMark.objects.count() == 2
    statistics_refresh()
    stored = stored_figures(kind=PeriodKind.MONTH, periods=[202402], dimension="total")
    assert stored[202402][""] == python_monthly()[(202402, "")]


def test_a_slice_that_cannot_connect_leaves_the_rebuild_to_one_statement(monkeypatch):
    from django.db import OperationalError

    _receipts(random.Random(9), 50)
    statistics_rebuild()

    def refuse(*args, **kwargs):
        raise OperationalError("FATAL: sorry, too many clients already")

    monkeypatch.setattr(rebuild, "fetch_in_snapshot", refuse)
    with transaction.atomic():
        assert rebuild.build(kinds=KINDS, countries=COUNTRIES, workers=2) is None
    statistics_rebuild()
    from registry.selectors import stored_figures

    stored = stored_figures(kind=PeriodKind.MONTH, periods=range(202301, 202601), dimension="total")
    got = {(k, label): v for k, groups in stored.items() for label, v in groups.items()}
    assert got == python_monthly()


def test_a_days_delta_in_slices_equals_the_delta_on_one_connection(monkeypatch):
    from registry import aggregation, services

    freelancers = _receipts(random.Random(10), 80)
    statistics_rebuild()
    added = [
        ReceiptFactory(
            value_date=datetime.date(2024, 3, 1 + n % 28),
            freelancer=freelancers[n % 4] if n % 5 else None,
            remitter_country=COUNTRIES[n % 4],
            amount=Decimal(10 + n),
        ).pk
        for n in range(30)
    ]
    statistics_mark_stale(months={datetime.date(2024, 3, 1)}, added=added)
    keys = [(PeriodKind.MONTH, 202403), (PeriodKind.FISCAL_YEAR, 2023)]
    with transaction.atomic():
        revisions = {
            (kind, period): current
            for kind, period, current in StatisticsPeriod.objects.values_list(
                "kind", "period", "current_id"
            )
        }
        args = dict(
            periods=keys,
            start=datetime.date(2023, 7, 1),
            end=datetime.date(2024, 7, 1),
            revisions={key: revisions[key] for key in keys},
        )
        one = aggregation.figure_delta(**args)
        for workers in (2, 3):
            sliced = aggregation.figure_delta(**args, workers=workers)
            assert sliced[0] == one[0]
            assert sorted(sliced[1]) == sorted(one[1])
    # The refresh slices a day's worth of marks in its own transaction.
    used = []
    real = aggregation.fetch_in_snapshot
    monkeypatch.setattr(
        aggregation, "fetch_in_snapshot", lambda *a, **k: used.append(k) or real(*a, **k)
    )
    monkeypatch.setattr(services, "DELTA_SLICE_MIN_MARKS", 10)
    statistics_refresh()
    assert used and used[0]["workers"] == settings.STATISTICS_REBUILD_WORKERS
    assert not StatisticsStaleMark.objects.exists()
    from registry.selectors import stored_figures

    for dimension in ("total", "category", "country", "province"):
        stored = stored_figures(
            kind=PeriodKind.MONTH, periods=range(202301, 202601), dimension=dimension
        )
        got = {(k, label): v for k, groups in stored.items() for label, v in groups.items()}
        assert got == python_monthly(dimension=dimension)


def test_a_delta_slice_that_cannot_connect_leaves_the_day_to_one_connection(monkeypatch, caplog):
    from django.db import OperationalError

    from registry import aggregation, services

    _a_may_of_receipts_after_a_rebuild(seed=12)

    def refuse(*args, **kwargs):
        raise OperationalError("FATAL: sorry, too many clients already")

    monkeypatch.setattr(aggregation, "fetch_in_snapshot", refuse)
    monkeypatch.setattr(services, "DELTA_SLICE_MIN_MARKS", 10)
    statistics_refresh()
    assert "statistics delta in slices failed" in caplog.text
    _assert_may_is_current()


def _a_may_of_receipts_after_a_rebuild(*, seed: int) -> None:
    """Receipts rebuilt, then twelve more in May 2024 for one freelancer, their marks naming
    them (24: the month's and the fiscal year's)."""
    freelancer = _receipts(random.Random(seed), 40)[0]
    statistics_rebuild()
    added = [
        ReceiptFactory(
            value_date=datetime.date(2024, 5, 1 + n), freelancer=freelancer, amount=Decimal(7 + n)
        ).pk
        for n in range(12)
    ]
    statistics_mark_stale(months={datetime.date(2024, 5, 1)}, added=added)


def _assert_may_is_current() -> None:
    from registry.selectors import stored_figures

    assert not StatisticsStaleMark.objects.exists()
    stored = stored_figures(kind=PeriodKind.MONTH, periods=[202405], dimension="total")
    assert stored[202405][""] == python_monthly()[(202405, "")]


def test_a_refresh_below_a_days_worth_of_marks_runs_the_delta_on_one_connection(monkeypatch):
    from registry import aggregation, services

    _a_may_of_receipts_after_a_rebuild(seed=13)
    used = []
    real = aggregation.fetch_in_snapshot
    monkeypatch.setattr(
        aggregation, "fetch_in_snapshot", lambda *a, **k: used.append(k) or real(*a, **k)
    )
    monkeypatch.setattr(services, "DELTA_SLICE_MIN_MARKS", 25)  # 24 marks: the month's and FY's
    assert statistics_refresh() == 2
    assert used == []
    _assert_may_is_current()


def test_the_slices_take_the_settings_the_caller_set_for_its_transaction():
    from config.db import fetch_in_snapshot

    show = ("SELECT current_setting('work_mem'), current_setting('jit')", [])
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('work_mem', '77MB', true), set_config('jit', 'off', true)"
            )
        inherited = fetch_in_snapshot([show], workers=1, inherit=("work_mem", "jit"))
        assert inherited == [[("77MB", "off")]]
        overridden = fetch_in_snapshot(
            [show], workers=1, inherit=("work_mem", "jit"), settings={"work_mem": "5MB"}
        )
        assert overridden == [[("5MB", "off")]]
    # Without them, a slice has the server's defaults, not the caller's.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('work_mem', '77MB', true)")
        assert fetch_in_snapshot([show], workers=1)[0][0][0] != "77MB"
