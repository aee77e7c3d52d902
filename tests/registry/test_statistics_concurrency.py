"""Concurrent aggregation on PostgreSQL, and the real Celery worker on Redis."""

import datetime
import importlib
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from payments.models import Receipt
from payments.signals import receipts_changed
from registry.models import PeriodKind, StatisticsPeriod
from registry.periods import cents_to_str
from registry.reports import fiscal_year_rows, monthly_rows
from registry.services import (
    statistics_mark_stale,
    statistics_period_recompute,
    statistics_rebuild,
    statistics_refresh,
    statistics_stale_periods,
)
from tests.factories import ApprovedFreelancerFactory, ReceiptFactory
from tests.registry.helpers import python_monthly


@pytest.fixture
def purpose_codes(transactional_db):
    """Transactional tests flush the database after each test, seeded rows included: seed again."""
    from django.apps import apps

    importlib.import_module("payments.migrations.0002_seed_purpose_codes").seed(apps, None)


def _in_threads(*targets) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def run(target):
        try:
            barrier.wait()
            target()
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def _populate() -> None:
    freelancer = ApprovedFreelancerFactory(province="sindh")
    for n in range(40):
        ReceiptFactory(
            value_date=datetime.date(2024, 1 + n % 6, 1 + n % 28),
            amount=Decimal(100 + n),
            freelancer=freelancer if n % 2 else None,
        )
    statistics_mark_stale(months={datetime.date(2024, m, 1) for m in range(1, 7)})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("purpose_codes")
def test_two_workers_refreshing_at_once_give_the_figures_of_one():
    _populate()
    errors = _in_threads(statistics_refresh, statistics_refresh, statistics_rebuild)
    assert errors == []
    expected = python_monthly()
    rows = monthly_rows(first=202401, last=202406)
    assert [r["total_usd"] for r in rows] == [
        cents_to_str(expected[(202400 + m, "")][0]) for m in range(1, 7)
    ]
    assert statistics_stale_periods() == []
    (fy,) = fiscal_year_rows(first=2023, last=2023)
    assert fy["receipts"] == 40 and fy["freelancers"] == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("purpose_codes")
def test_a_receipt_committed_during_a_recompute_keeps_its_mark_and_is_counted_next_time():
    ReceiptFactory(value_date=datetime.date(2024, 3, 3), amount=Decimal("10.00"))
    statistics_rebuild()
    ingested = threading.Event()
    recomputed = threading.Event()

    def ingest():
        with transaction.atomic():
            ReceiptFactory(value_date=datetime.date(2024, 3, 4), amount=Decimal("5.00"))
            # What the receiver does, without its on-commit task (eager in tests), so the
            # mark's survival is what this test sees.
            statistics_mark_stale(months={datetime.date(2024, 3, 1)})
            ingested.set()
            # Still uncommitted while the recompute runs: it must neither wait for us nor
            # delete our mark.
            assert recomputed.wait(10), "the recompute waited for the open ingestion"

    def recompute():
        ingested.wait(10)
        statistics_period_recompute(kind=PeriodKind.MONTH, period=202403)
        recomputed.set()

    assert _in_threads(ingest, recompute) == []
    assert monthly_rows(first=202403, last=202403)[0]["total_usd"] == "10.00"
    assert (PeriodKind.MONTH, 202403) in statistics_stale_periods()
    statistics_refresh()
    assert monthly_rows(first=202403, last=202403)[0]["total_usd"] == "15.00"
    assert statistics_stale_periods() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("purpose_codes")
def test_ingestion_does_not_wait_for_a_recompute_holding_the_period_lock():
    ReceiptFactory(value_date=datetime.date(2024, 3, 3), amount=Decimal("10.00"))
    statistics_rebuild()
    locked = threading.Event()
    ingested = threading.Event()

    def hold_lock():
        with transaction.atomic():
            for kind, key in ((PeriodKind.FISCAL_YEAR, 2023), (PeriodKind.MONTH, 202403)):
                StatisticsPeriod.objects.select_for_update().get(kind=kind, period=key)
            locked.set()
            assert ingested.wait(10), "the ingestion waited for the period lock"

    def ingest():
        locked.wait(10)
        with transaction.atomic():
            # Runs right after the COMMIT, before the receiver's refresh task (eager in tests,
            # which then waits for the lock as a worker would).
            transaction.on_commit(ingested.set)
            ReceiptFactory(value_date=datetime.date(2024, 3, 4), amount=Decimal("5.00"))
            receipts_changed.send(sender=Receipt, months={datetime.date(2024, 3, 1)})

    assert _in_threads(hold_lock, ingest) == []
    statistics_refresh()
    assert monthly_rows(first=202403, last=202403)[0]["total_usd"] == "15.00"


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("purpose_codes")
def test_real_celery_worker_runs_the_refresh_enqueued_on_commit(celery_worker_session):
    ReceiptFactory(value_date=datetime.date(2024, 8, 8), amount=Decimal("123.45"))
    with transaction.atomic():
        receipts_changed.send(sender=Receipt, months={datetime.date(2024, 8, 1)})
    deadline = time.monotonic() + 60
    while statistics_stale_periods():
        assert time.monotonic() < deadline, "the worker did not refresh the statistics"
        time.sleep(0.2)
    assert monthly_rows(first=202408, last=202408)[0]["total_usd"] == "123.45"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("purpose_codes")
def test_ingestion_during_a_full_rebuild_neither_deadlocks_nor_loses_a_receipt():
    _populate()
    statistics_rebuild()

    def ingest(day: int):
        def run():
            for month in (6, 1, 3):
                with transaction.atomic():
                    ReceiptFactory(
                        value_date=datetime.date(2024, month, day), amount=Decimal("1.00")
                    )
                    receipts_changed.send(
                        sender=Receipt,
                        months={datetime.date(2024, month, 1), datetime.date(2023, 12, 1)},
                    )

        return run

    errors = _in_threads(statistics_rebuild, ingest(2), ingest(3), statistics_rebuild)
    assert errors == []
    statistics_refresh()
    expected = python_monthly()
    rows = monthly_rows(first=202401, last=202406)
    assert [r["total_usd"] for r in rows] == [
        cents_to_str(expected[(202400 + m, "")][0]) for m in range(1, 7)
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("purpose_codes")
def test_two_refreshes_in_threads_agree_on_either_database():
    _populate()
    assert _in_threads(statistics_refresh, statistics_refresh) == []
    expected = python_monthly()
    rows = monthly_rows(first=202401, last=202406)
    assert [(r["total_usd"], r["receipts"]) for r in rows] == [
        (cents_to_str(expected[(202400 + m, "")][0]), expected[(202400 + m, "")][1])
        for m in range(1, 7)
    ]
    assert statistics_stale_periods() == []
