import datetime
import random
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone

from payments.models import PurposeCode, Receipt
from payments.signals import receipts_changed
from registry import periods as P
from registry.aggregation import _figure_sets_orm, figure_sets
from registry.models import (
    Dimension,
    PeriodKind,
    StatisticsPeriod,
    StatisticsRevision,
    StatisticsStaleMark,
)
from registry.reports import fiscal_year_rows, monthly_rows, registration_rows
from registry.selectors import figures_queryset, stored_figures
from registry.services import (
    _marks_delete,
    id_ranges,
    statistics_mark_stale,
    statistics_period_recompute,
    statistics_rebuild,
    statistics_refresh,
    statistics_stale_periods,
)
from tests.factories import ApprovedFreelancerFactory, FreelancerFactory, ReceiptFactory
from tests.registry.helpers import python_monthly, random_receipts

pytestmark = pytest.mark.django_db


def receipt(day: str, amount: str = "100.00", **kwargs) -> Receipt:
    return ReceiptFactory(
        value_date=datetime.date.fromisoformat(day), amount=Decimal(amount), **kwargs
    )


def month_total(key: int, as_of=None) -> str:
    (row,) = monthly_rows(first=key, last=key, as_of=as_of)
    return row["total_usd"]


@pytest.mark.parametrize("dimension", ["total", "category", "country", "province"])
def test_sql_aggregation_equals_plain_python_definition(dimension):
    PurposeCode.objects.create(code="1111", description="Goods", category="goods", is_it=False)
    random_receipts(random.Random(7), 150)
    expected = python_monthly(dimension=dimension)
    rows = figures_queryset(kind=PeriodKind.MONTH, dimension=dimension, start=None, end=None)
    got = {(r["p"], r["g"]): (r["cents"], r["n"], r["f"]) for r in rows}
    assert got == expected
    statistics_rebuild()
    stored = stored_figures(
        kind=PeriodKind.MONTH, periods=range(202301, 202512), dimension=dimension
    )
    assert {(k, label): v for k, groups in stored.items() for label, v in groups.items()} == (
        expected
    )


@pytest.mark.parametrize("odd_labels", [False, True])
def test_figure_sets_equal_the_orm_aggregation_even_with_odd_labels(odd_labels):
    # On PostgreSQL figure_sets computes everything in one statement with per-freelancer bit masks
    # of categories and countries (four mask words for the ISO codes); a label outside its lists
    # (a lowercase country, a province that is not a choice) must not be lost.
    random_receipts(random.Random(5), 80)
    one = ApprovedFreelancerFactory(province="balochistan")
    for n, country in enumerate(["AD", "MX", "PK", "ZW", "US", ""]):  # every mask word
        receipt(f"2024-0{1 + n % 2}-1{n}", freelancer=one, remitter_country=country)
    if odd_labels:
        receipt("2024-03-05", remitter_country="us")
        receipt("2024-03-06", freelancer=ApprovedFreelancerFactory(province="atlantis"))
    kinds = [PeriodKind.MONTH, PeriodKind.FISCAL_YEAR]
    for start, end in ((None, None), (datetime.date(2024, 1, 1), datetime.date(2024, 7, 1))):
        expected = _figure_sets_orm(kinds=kinds, start=start, end=end)
        assert figure_sets(kinds=kinds, start=start, end=end)[0] == expected
        assert figure_sets(kinds=[PeriodKind.FISCAL_YEAR], start=start, end=end)[0] == {
            key: dims for key, dims in expected.items() if key[0] == PeriodKind.FISCAL_YEAR
        }
    by_country = expected[(PeriodKind.MONTH, 202401)][Dimension.COUNTRY]
    assert by_country["AD"][2] >= 1 and by_country["PK"][2] >= 1
    # Once figures are stored, the statement maps only the countries they name (one mask word);
    # a new country makes it run again with every ISO code.
    statistics_rebuild()
    assert figure_sets(kinds=kinds, start=None, end=None)[0] == _figure_sets_orm(
        kinds=kinds, start=None, end=None
    )
    receipt("2024-04-04", freelancer=one, remitter_country="FR")
    expected = _figure_sets_orm(kinds=kinds, start=None, end=None)
    assert figure_sets(kinds=kinds, start=None, end=None)[0] == expected
    assert expected[(PeriodKind.MONTH, 202404)][Dimension.COUNTRY]["FR"][2] == 1


def test_incremental_refresh_gives_the_same_figures_as_a_full_rebuild():
    rng = random.Random(11)
    random_receipts(rng, 60)
    statistics_rebuild()
    months = {r.value_date.replace(day=1) for r in Receipt.objects.all()}
    random_receipts(rng, 40)
    receipts_changed.send(sender=Receipt, months=months | {datetime.date(2024, 2, 1)})
    # every month of the new receipts too
    receipts_changed.send(
        sender=Receipt, months={r.value_date.replace(day=1) for r in Receipt.objects.all()}
    )
    statistics_refresh()
    incremental = monthly_rows(first=202301, last=202504, group_by="province")
    fiscal = fiscal_year_rows(first=2022, last=2025, group_by="country")
    statistics_rebuild()
    assert monthly_rows(first=202301, last=202504, group_by="province") == incremental
    assert fiscal_year_rows(first=2022, last=2025, group_by="country") == fiscal


def test_receipts_changed_marks_month_and_fiscal_year_stale_in_the_senders_transaction(
    django_capture_on_commit_callbacks,
):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            receipts_changed.send(sender=Receipt, months={datetime.date(2024, 6, 1)})
            raise RuntimeError("ingestion failed")
    assert statistics_stale_periods() == []
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            receipts_changed.send(sender=Receipt, months={datetime.date(2024, 6, 1)})
    assert len(callbacks) == 1
    assert statistics_stale_periods() == [
        (PeriodKind.FISCAL_YEAR, 2023),
        (PeriodKind.MONTH, 202406),
    ]
    assert not StatisticsPeriod.objects.exists()  # ingestion appends marks, never locks periods


def test_marks_of_one_recorded_receipt_name_it_and_its_freelancer_for_its_month_and_year():
    recorded = receipt("2024-07-01", "5.00", freelancer=ApprovedFreelancerFactory())
    assert statistics_mark_stale(months={datetime.date(2024, 7, 1)}, added=[recorded.pk]) == 2
    marks = StatisticsStaleMark.objects.values_list("kind", "period", "receipt_id", "freelancer_id")
    assert sorted(marks) == [
        (PeriodKind.FISCAL_YEAR, 2024, recorded.pk, recorded.freelancer_id),
        (PeriodKind.MONTH, 202407, recorded.pk, recorded.freelancer_id),
    ]


def test_marks_of_receipts_recorded_together_name_each_receipts_freelancer_or_none():
    matched = receipt("2024-07-01", "5.00", freelancer=ApprovedFreelancerFactory())
    unmatched = receipt("2024-07-02", "6.00", freelancer=None)
    statistics_mark_stale(months={datetime.date(2024, 7, 1)}, added=[matched.pk, unmatched.pk])
    marks = StatisticsStaleMark.objects.filter(kind=PeriodKind.MONTH)
    assert sorted(marks.values_list("receipt_id", "freelancer_id")) == [
        (matched.pk, matched.freelancer_id),
        (unmatched.pk, None),
    ]


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"), reason="PostgreSQL"
)
@pytest.mark.parametrize("batched", [False, True])
def test_marks_naming_a_receipt_that_was_not_recorded_are_not_written(batched):
    from config.db import fetch_prepared_batch

    missing = (Receipt.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    batch = [] if batched else None
    statistics_mark_stale(months={datetime.date(2024, 7, 1)}, added=[missing], batch=batch)
    if batched:
        with transaction.atomic():
            fetch_prepared_batch(batch)
    assert not StatisticsStaleMark.objects.exists()


def test_id_ranges_cover_exactly_the_ids():
    assert id_ranges([]) == ([], [])
    assert id_ranges([7, 3, 4, 5, 9, 8, 1, 4]) == ([1, 3, 7], [1, 5, 9])
    assert id_ranges(range(10, 20_010)) == ([10], [20_009])
    rng = random.Random(5)
    ids = set(rng.sample(range(1, 500), 200))
    covered = {n for lo, hi in zip(*id_ranges(ids), strict=True) for n in range(lo, hi + 1)}
    assert covered == ids


def test_deleting_the_marks_read_keeps_the_marks_between_them():
    """The marks of a day come back as a run of consecutive ids; one committed later (an id in
    the middle of the run, allocated before it committed) was not read and stays."""
    for _ in range(3):
        statistics_mark_stale(months={datetime.date(2024, 6, 1)})
    ids = sorted(StatisticsStaleMark.objects.values_list("id", flat=True))
    kept = ids[2:4]  # the second call's month and fiscal-year marks
    _marks_delete([i for i in ids if i not in kept])
    assert sorted(StatisticsStaleMark.objects.values_list("id", flat=True)) == kept
    _marks_delete([])
    assert StatisticsStaleMark.objects.count() == 2


@pytest.mark.skipif(not settings.CELERY_TASK_ALWAYS_EAGER, reason="eager Celery only")
def test_on_commit_task_refreshes_the_stale_month(django_capture_on_commit_callbacks):
    receipt("2024-06-03", "70.00")
    with django_capture_on_commit_callbacks(execute=True):
        receipts_changed.send(sender=Receipt, months={datetime.date(2024, 6, 1)})
    assert month_total(202406) == "70.00"
    assert statistics_stale_periods() == []


def test_refresh_recomputes_only_stale_months():
    receipt("2024-01-05")
    receipt("2024-02-05")
    statistics_rebuild()
    before = dict(StatisticsPeriod.objects.filter(kind="month").values_list("period", "current_id"))
    receipt("2024-02-06", "1.00")
    statistics_mark_stale(months={datetime.date(2024, 2, 1)})
    assert statistics_refresh() == 2  # the month and its fiscal year
    after = dict(StatisticsPeriod.objects.filter(kind="month").values_list("period", "current_id"))
    assert after[202401] == before[202401]
    assert after[202402] != before[202402]
    assert month_total(202402) == "101.00"
    assert statistics_refresh() == 0  # nothing stale: running it twice changes nothing


def test_reversal_in_a_later_month_revises_the_earlier_month():
    early = receipt("2024-03-10", "500.00")
    receipt("2024-05-10", "20.00")
    statistics_rebuild()
    early.reversed_on = datetime.date(2024, 5, 2)
    early.save()
    # the ingestion sends the month of the receipt's value date
    receipts_changed.send(sender=Receipt, months={early.value_date.replace(day=1)})
    statistics_refresh()
    assert month_total(202403) == "0.00"
    assert month_total(202405) == "20.00"
    (fy,) = fiscal_year_rows(first=2023, last=2023)
    assert fy["total_usd"] == "20.00"


def test_late_receipt_revises_a_published_month_and_as_of_shows_the_old_figures():
    receipt("2024-07-10", "300.00")
    before_anything = timezone.now()
    statistics_rebuild()
    published = timezone.now()
    receipt("2024-07-28", "45.50")  # reported late, in August
    receipts_changed.send(sender=Receipt, months={datetime.date(2024, 7, 1)})
    statistics_refresh()
    assert month_total(202407) == "345.50"
    assert month_total(202407, as_of=published) == "300.00"
    assert month_total(202407, as_of=before_anything) == "0.00"
    (fy_then,) = fiscal_year_rows(first=2024, last=2024, as_of=published)
    assert fy_then["total_usd"] == "300.00"
    response = Client().get(
        "/api/v1/statistics/monthly/",
        {"from": "2024-07", "to": "2024-07", "as_of": published.isoformat()},
    )
    assert response.json()["results"][0]["total_usd"] == "300.00"
    assert StatisticsRevision.objects.filter(kind="month", period=202407).count() == 2


def test_rematching_a_receipt_moves_it_between_provinces_and_counts_the_freelancer():
    unmatched = receipt("2024-09-09", "80.00")
    statistics_rebuild()
    (row,) = monthly_rows(first=202409, last=202409, group_by="province")
    assert (row["province"], row["freelancers"]) == ("unknown", 0)
    unmatched.freelancer = ApprovedFreelancerFactory(province="balochistan")
    unmatched.save()
    receipts_changed.send(sender=Receipt, months={datetime.date(2024, 9, 1)})
    statistics_refresh()
    (row,) = monthly_rows(first=202409, last=202409, group_by="province")
    assert (row["province"], row["freelancers"]) == ("balochistan", 1)
    assert monthly_rows(first=202409, last=202409)[0]["freelancers"] == 1


def test_recompute_of_a_month_without_receipts_publishes_zero():
    gone = receipt("2024-10-01")
    statistics_rebuild()
    gone.reversed_on = datetime.date(2024, 10, 2)
    gone.save()
    statistics_period_recompute(kind=PeriodKind.MONTH, period=202410)
    assert month_total(202410) == "0.00"


def test_aggregate_statistics_command_refreshes_and_rebuilds(capsys):
    receipt("2024-11-11", "10.00")
    call_command("aggregate_statistics", "--full", "--no-progress")
    assert month_total(202411) == "10.00"
    receipt("2024-11-12", "5.00")
    statistics_mark_stale(months={datetime.date(2024, 11, 1)})
    call_command("aggregate_statistics")
    assert month_total(202411) == "15.00"
    assert "periods recomputed" in capsys.readouterr().out


def test_aggregate_statistics_draws_its_progress_bar_only_on_a_terminal(monkeypatch):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    receipt("2024-11-11", "10.00")
    for stderr, drawn in ((io.StringIO(), False), (Terminal(), True)):
        monkeypatch.setattr(sys, "stderr", stderr)
        call_command("aggregate_statistics", "--full", stdout=io.StringIO())
        assert ("full rebuild" in stderr.getvalue()) is drawn
    monkeypatch.setattr(sys, "stderr", stderr := Terminal())
    call_command("aggregate_statistics", "--full", "--no-progress", stdout=io.StringIO())
    assert stderr.getvalue() == ""


@pytest.mark.postgres
def test_statistics_transactions_commit_without_waiting_for_the_wal_flush():
    from django.db import connection

    from registry.aggregation import tune_aggregation

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('synchronous_commit')")
            return cursor.fetchone()[0]

    assert setting() == "on"
    with transaction.atomic():
        tune_aggregation(work_mem="64MB")
        assert setting() == "off"


def test_beat_schedule_has_the_stale_statistics_safety_net():
    entry = settings.CELERY_BEAT_SCHEDULE["registry-refresh-stale-statistics"]
    assert entry["task"] == "registry.tasks.statistics_refresh_task"


def test_registration_statistics_by_month_and_province():
    at = datetime.datetime(2024, 4, 3, 10, tzinfo=datetime.UTC)
    FreelancerFactory(province="sindh", submitted_at=at)
    approved = ApprovedFreelancerFactory(
        province="punjab", submitted_at=at, approved_at=at + datetime.timedelta(days=31)
    )
    receipt("2024-05-02", freelancer=approved)
    receipt("2024-05-03", freelancer=approved)
    rows = registration_rows(first=202404, last=202405)
    assert rows == [
        {"month": "2024-04", "registered": 2, "approved": 0, "active": 0},
        {"month": "2024-05", "registered": 0, "approved": 1, "active": 1},
    ]
    rows = registration_rows(first=202404, last=202405, group_by="province")
    assert rows == [
        {"month": "2024-04", "province": "punjab", "registered": 1, "approved": 0, "active": 0},
        {"month": "2024-04", "province": "sindh", "registered": 1, "approved": 0, "active": 0},
        {"month": "2024-05", "province": "punjab", "registered": 0, "approved": 1, "active": 1},
    ]


def test_period_helpers():
    assert P.fiscal_year_of_month(202406) == 2023
    assert P.fiscal_year_of_month(202407) == 2024
    assert P.fiscal_year_label(2099) == "2099-00"
    assert P.month_add(202401, -1) == 202312
    assert P.months_between(200001, 201912) == 240
    assert P.change_pct(0, 0) is None
    assert P.change_pct(1, 3) == "-66.7"
    assert P.change_pct(5, 3) == "66.7"


def test_load_demo_publishes_statistics_for_the_demo_receipts():
    call_command("load_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    today = timezone.localdate()
    key = P.month_key(today.year, today.month)
    rows = monthly_rows(first=P.month_add(key, -11), last=key)
    expected = python_monthly()
    assert [r["receipts"] for r in rows] == [
        expected.get((P.parse_month(r["month"]), ""), (0, 0, 0))[1] for r in rows
    ]
    assert sum(r["receipts"] for r in rows) > 0


def test_registrations_endpoint_serves_json_and_csv():
    at = datetime.datetime(2024, 4, 3, 10, tzinfo=datetime.UTC)
    FreelancerFactory(province="sindh", submitted_at=at)
    client = Client()
    response = client.get("/api/v1/statistics/registrations/", {"from": "2024-04", "to": "2024-04"})
    assert response.json() == {
        "results": [{"month": "2024-04", "registered": 1, "approved": 0, "active": 0}]
    }
    response = client.get(
        "/api/v1/statistics/registrations/",
        {"from": "2024-04", "to": "2024-04", "group_by": "province", "format": "csv"},
    )
    assert response.content.decode().splitlines() == [
        "month,province,registered,approved,active",
        "2024-04,sindh,1,0,0",
    ]


def test_admin_lists_statistics_periods_and_revisions(admin_client):
    receipt("2024-01-05")
    statistics_rebuild()
    assert admin_client.get("/admin/registry/statisticsperiod/").status_code == 200
    assert admin_client.get("/admin/registry/statisticsrevision/").status_code == 200
    period = StatisticsPeriod.objects.get(kind="month", period=202401)
    response = admin_client.post(
        "/admin/registry/statisticsperiod/",
        {"action": "recompute", "_selected_action": [period.pk]},
    )
    assert response.status_code == 302
    assert StatisticsRevision.objects.filter(kind="month", period=202401).count() == 2
