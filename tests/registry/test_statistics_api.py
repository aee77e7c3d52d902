import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.test import Client

from payments.signals import receipts_changed
from registry.services import statistics_rebuild, statistics_refresh
from tests.factories import ApprovedFreelancerFactory, ReceiptFactory, purpose_code

pytestmark = pytest.mark.django_db

MONTHLY = "/api/v1/statistics/monthly/"
FISCAL = "/api/v1/statistics/fiscal-years/"


def receipt(day: str, amount: str, **kwargs):
    return ReceiptFactory(
        value_date=datetime.date.fromisoformat(day), amount=Decimal(amount), **kwargs
    )


def get(url: str, **params):
    return Client().get(url, params)


def results(url: str, **params) -> list[dict]:
    response = get(url, **params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_monthly_rows_cover_every_month_with_zero_for_empty_months():
    receipt("2024-01-10", "100.00")
    receipt("2024-03-05", "50.00")
    statistics_rebuild()
    rows = results(MONTHLY, **{"from": "2023-12", "to": "2024-04"})
    assert [r["month"] for r in rows] == ["2023-12", "2024-01", "2024-02", "2024-03", "2024-04"]
    assert [r["total_usd"] for r in rows] == ["0.00", "100.00", "0.00", "50.00", "0.00"]
    assert rows[1]["mom_pct"] is None  # previous month 0
    assert rows[2]["mom_pct"] == "-100.0"
    assert rows[3]["mom_pct"] is None
    assert rows[0]["fiscal_year"] == "2023-24"


def test_contract_example_shapes_and_percentages():
    # 2020-08: 124 million; 2021-07: 467 million; 2021-08: 224 million; FYTD 2021-22 = 691 million
    receipt("2020-07-15", "460000000.00")
    receipt("2020-08-15", "124000000.00")
    receipt("2021-07-15", "233333333.33")
    receipt("2021-07-16", "233666666.67")
    receipt("2021-08-15", "224000000.00")
    statistics_rebuild()
    (row,) = results(MONTHLY, **{"from": "2021-08", "to": "2021-08"})
    assert row == {
        "month": "2021-08",
        "fiscal_year": "2021-22",
        "total_usd": "224000000.00",
        "receipts": 1,
        "freelancers": 0,
        "mom_pct": "-52.0",  # 224 / 467 - 1 = -52.03...
        "yoy_pct": "80.6",  # 224 / 124 - 1 = 80.645...
        "fytd_usd": "691000000.00",
        "fytd_yoy_pct": "18.3",  # 691 / 584 - 1 = 18.32...
    }


def test_rounding_is_half_away_from_zero_and_never_negative_zero():
    receipt("2023-01-10", "1000.00")
    receipt("2023-02-10", "1000.50")  # +0.05% -> 0.1 (half away from zero)
    receipt("2023-03-10", "1000.00")  # -0.04997...% -> 0.0, not -0.0
    receipt("2023-04-10", "999.50")  # -0.05% -> -0.1
    statistics_rebuild()
    rows = results(MONTHLY, **{"from": "2023-02", "to": "2023-04"})
    assert [r["mom_pct"] for r in rows] == ["0.1", "0.0", "-0.1"]


def test_fiscal_year_boundary_june_july_resets_fytd():
    receipt("2024-06-30", "300.00")
    receipt("2024-07-01", "100.00")
    receipt("2023-07-01", "80.00")
    statistics_rebuild()
    june, july = results(MONTHLY, **{"from": "2024-06", "to": "2024-07"})
    assert (june["fiscal_year"], june["fytd_usd"]) == ("2023-24", "380.00")
    assert (july["fiscal_year"], july["fytd_usd"]) == ("2024-25", "100.00")
    assert july["fytd_yoy_pct"] == "25.0"
    assert june["fytd_yoy_pct"] is None


def test_leap_day_receipt_counts_in_february_and_yoy_from_non_leap_year():
    receipt("2024-02-29", "200.00")
    receipt("2023-02-28", "100.00")
    statistics_rebuild()
    (feb,) = results(MONTHLY, **{"from": "2024-02", "to": "2024-02"})
    assert feb["total_usd"] == "200.00"
    assert feb["yoy_pct"] == "100.0"
    (mar,) = results(MONTHLY, **{"from": "2024-03", "to": "2024-03"})
    assert mar["total_usd"] == "0.00"


def test_fiscal_years_freelancers_are_distinct_over_the_year():
    freelancer = ApprovedFreelancerFactory()
    other = ApprovedFreelancerFactory()
    receipt("2024-08-01", "10.00", freelancer=freelancer)
    receipt("2024-09-01", "10.00", freelancer=freelancer)
    receipt("2025-01-01", "10.00", freelancer=other)
    receipt("2023-08-01", "20.00")
    statistics_rebuild()
    rows = results(FISCAL, **{"from": "2023-24", "to": "2024-25"})
    assert rows == [
        {"fiscal_year": "2023-24", "total_usd": "20.00", "receipts": 1, "freelancers": 0,
         "yoy_pct": None},
        {"fiscal_year": "2024-25", "total_usd": "30.00", "receipts": 3, "freelancers": 2,
         "yoy_pct": "50.0"},
    ]  # fmt: skip
    months = results(MONTHLY, **{"from": "2024-08", "to": "2024-09"})
    assert [m["freelancers"] for m in months] == [1, 1]


def test_reversed_non_it_and_stripe_receipts_do_not_count_unmatched_do():
    receipt("2024-05-02", "100.00")  # unmatched: counts
    receipt("2024-05-03", "7.00", reversed_on=datetime.date(2024, 6, 1))
    receipt("2024-05-04", "9.00", source="stripe", bank=None)
    non_it = purpose_code("9182")
    non_it.pk = None
    non_it.code, non_it.is_it = "1234", False
    non_it.save()
    receipt("2024-05-05", "11.00", purpose_code=non_it)
    statistics_rebuild()
    (row,) = results(MONTHLY, **{"from": "2024-05", "to": "2024-05"})
    assert (row["total_usd"], row["receipts"]) == ("100.00", 1)


def test_group_by_splits_rows_per_group_with_their_own_percentages():
    punjab = ApprovedFreelancerFactory(province="punjab")
    sindh = ApprovedFreelancerFactory(province="sindh")
    receipt("2024-04-10", "100.00", freelancer=punjab, remitter_country="US")
    receipt("2024-05-10", "150.00", freelancer=punjab, remitter_country="GB")
    receipt("2024-05-11", "40.00", freelancer=sindh, remitter_country="US")
    receipt("2024-05-12", "60.00", remitter_country="US", purpose_code=purpose_code("9102"))
    statistics_rebuild()
    rows = results(MONTHLY, **{"from": "2024-05", "to": "2024-05", "group_by": "province"})
    assert [(r["province"], r["total_usd"], r["freelancers"], r["mom_pct"]) for r in rows] == [
        ("punjab", "150.00", 1, "50.0"),
        ("sindh", "40.00", 1, None),
        ("unknown", "60.00", 0, None),
    ]
    assert list(rows[0])[:3] == ["month", "fiscal_year", "province"]
    rows = results(MONTHLY, **{"from": "2024-04", "to": "2024-05", "group_by": "country"})
    assert [(r["month"], r["country"], r["total_usd"]) for r in rows] == [
        ("2024-04", "US", "100.00"),
        ("2024-05", "GB", "150.00"),
        ("2024-05", "US", "100.00"),
    ]
    assert rows[2]["mom_pct"] == "0.0"
    rows = results(MONTHLY, **{"from": "2024-05", "to": "2024-05", "group_by": "category"})
    assert [(r["category"], r["total_usd"]) for r in rows] == [
        ("computer", "190.00"),
        ("telecommunication", "60.00"),
    ]
    rows = results(FISCAL, **{"from": "2023-24", "to": "2023-24", "group_by": "country"})
    assert [(r["country"], r["total_usd"]) for r in rows] == [("GB", "150.00"), ("US", "200.00")]


def test_csv_has_header_in_json_order_and_empty_cells_for_null():
    receipt("2024-01-10", "100.00")
    receipt("2024-02-10", "12.34")
    statistics_rebuild()
    response = get(MONTHLY, **{"from": "2024-01", "to": "2024-02", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    json_rows = results(MONTHLY, **{"from": "2024-01", "to": "2024-02"})
    assert rows[0] == list(json_rows[0])
    assert rows[1] == ["2024-01", "2023-24", "100.00", "1", "0", "", "", "100.00", ""]
    assert rows[2][2] == "12.34" and rows[2][5] == "-87.7"
    grouped = get(FISCAL, **{"from": "2023-24", "to": "2023-24", "format": "csv",
                             "group_by": "country"})  # fmt: skip
    lines = grouped.content.decode().splitlines()
    assert lines == [
        "fiscal_year,country,total_usd,receipts,freelancers,yoy_pct",
        "2023-24,US,112.34,2,0,",
    ]


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        (MONTHLY, {"from": "2021-13"}, "from"),
        (MONTHLY, {"to": "2021-00"}, "to"),
        (MONTHLY, {"to": "21-01"}, "to"),
        (MONTHLY, {"from": "2024-05", "to": "2024-04"}, "from"),
        (MONTHLY, {"from": "2000-01", "to": "2020-01"}, "from"),  # 241 months
        (MONTHLY, {"group_by": "bank"}, "group_by"),
        (MONTHLY, {"format": "xml"}, "format"),
        (MONTHLY, {"as_of": "yesterday"}, "as_of"),
        (FISCAL, {"from": "2025-27"}, "from"),
        (FISCAL, {"to": "2025"}, "to"),
        (FISCAL, {"from": "2025-26", "to": "2024-25"}, "from"),
        (FISCAL, {"from": "2000-01", "to": "2020-21"}, "from"),  # 21 years = 252 months
        (FISCAL, {"format": "xml"}, "format"),
        (FISCAL, {"group_by": "city"}, "group_by"),
        ("/api/v1/statistics/registrations/", {"group_by": "country"}, "group_by"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter(url, params, field):
    response = get(url, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert list(body["fields"]) == [field]


def test_exactly_240_months_is_allowed():
    rows = results(MONTHLY, **{"from": "2000-01", "to": "2019-12"})
    assert len(rows) == 240


def test_defaults_are_last_twelve_months_and_last_five_fiscal_years(settings):
    rows = results(MONTHLY)
    assert len(rows) == 12
    fiscal = results(FISCAL)
    assert len(fiscal) == 5


def test_figures_are_fresh_after_refresh_without_any_cache():
    receipt("2024-01-10", "100.00")
    statistics_rebuild()
    assert results(MONTHLY, **{"from": "2024-01", "to": "2024-01"})[0]["total_usd"] == "100.00"
    receipt("2024-01-11", "5.00")
    receipts_changed.send(sender=None, months={datetime.date(2024, 1, 1)})
    statistics_refresh()
    assert results(MONTHLY, **{"from": "2024-01", "to": "2024-01"})[0]["total_usd"] == "105.00"
    assert results(FISCAL, **{"from": "2023-24", "to": "2023-24"})[0]["total_usd"] == "105.00"


def test_many_anonymous_requests_are_not_throttled():
    for _ in range(620):
        response = get(MONTHLY, **{"from": "2024-01", "to": "2024-01"})
    assert response.status_code == 200
