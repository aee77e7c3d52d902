"""Earnings: statements (HTML, CSV, PDF), the API for the signed-in freelancer only, and the
retention rule checked against a plain Python definition."""

import csv
import datetime
import io
import random
from decimal import ROUND_HALF_UP, Decimal

import pytest

from payments.selectors_banks import freelancer_statement, retention_breaches
from tests.factories import (
    ApprovedFreelancerFactory,
    DollarAccountFactory,
    ReceiptFactory,
    StaffFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
MARCH = datetime.date(2024, 3, 1)


@pytest.fixture
def earner():
    account = DollarAccountFactory()
    freelancer = account.freelancer
    ReceiptFactory(
        account=account,
        amount=Decimal("1000.00"),
        retained_amount=Decimal("250.00"),
        pkr_rate=Decimal("280.000000"),
        tax_withheld_pkr=Decimal("2100.00"),
        value_date=datetime.date(2024, 3, 5),
        reference="R-USD",
    )
    ReceiptFactory(
        account=account,
        amount=Decimal("100.00"),
        currency="EUR",
        usd_amount=Decimal("108.33"),
        retained_amount=Decimal("33.33"),
        pkr_rate=Decimal("300.123456"),
        value_date=datetime.date(2024, 3, 20),
        reference="R-EUR",
    )
    ReceiptFactory(
        account=account,
        amount=Decimal("500.00"),
        value_date=datetime.date(2024, 3, 25),
        reversed_on=datetime.date(2024, 3, 28),
        reference="R-REV",
    )
    ReceiptFactory(account=account, value_date=datetime.date(2024, 4, 1), reference="R-APR")
    return freelancer


def test_statement_splits_retained_and_converted_parts_and_skips_reversed(earner):
    statement = freelancer_statement(freelancer=earner, month=MARCH)
    assert [line.reference for line in statement.lines] == ["R-USD", "R-EUR", "R-REV"]
    usd, eur, _ = statement.lines
    assert usd.retained_usd == Decimal("250.00") and usd.converted_pkr == Decimal("210000.00")
    # 108.33 * 33.33 / 100 = 36.106389 -> 36.11 (half up); (100 - 33.33) * 300.123456 = 20009.23
    assert eur.retained_usd == Decimal("36.11") and eur.converted_usd == Decimal("72.22")
    assert eur.converted_pkr == Decimal("20009.23")
    t = statement.totals
    assert t.receipts == 2 and t.usd_received == Decimal("1108.33")
    assert t.usd_retained == Decimal("286.11") and t.usd_converted == Decimal("822.22")
    assert t.pkr_converted == Decimal("230009.23") and t.tax_withheld_pkr == Decimal("2100.00")


def test_freelancer_sees_their_accounts_and_monthly_statement(client, earner):
    client.force_login(earner.user)
    index = client.get("/earnings/")
    assert index.status_code == 200
    assert earner.accounts.get().iban in index.content.decode()
    page = client.get("/earnings/2024-03/")
    assert page.status_code == 200 and "1108.33" in page.content.decode()


def test_statement_downloads_as_csv_and_pdf(client, earner):
    client.force_login(earner.user)
    response = client.get("/earnings/2024-03/csv/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][0] == "value_date" and [r[1] for r in rows[1:4]] == ["R-USD", "R-EUR", "R-REV"]
    assert rows[-1][5] == "1108.33"
    pdf = client.get("/earnings/2024-03/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_earnings_pages_need_a_signed_in_freelancer(client, earner, settings):
    settings.LOGIN_URL = "/accounts/login/"  # the named route belongs to the freelancers app
    response = client.get("/earnings/2024-03/csv/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    client.force_login(StaffFactory())
    assert client.get("/earnings/").status_code == 403


def test_api_returns_only_the_signed_in_freelancers_figures(client, earner):
    other = ApprovedFreelancerFactory()
    ReceiptFactory(
        account=DollarAccountFactory(freelancer=other),
        value_date=datetime.date(2024, 3, 9),
        reference="OTHER",
    )
    client.force_login(earner.user)
    months = client.get("/api/v1/earnings/months/").json()["results"]
    assert [m["month"] for m in months] == ["2024-04", "2024-03"]
    assert months[1]["usd_received"] == "1108.33" and months[1]["receipts"] == 2
    statement = client.get("/api/v1/earnings/months/2024-03/").json()
    assert [r["reference"] for r in statement["receipts"]] == ["R-USD", "R-EUR", "R-REV"]
    assert statement["totals"]["usd_retained"] == "286.11"
    accounts = client.get("/api/v1/earnings/accounts/").json()["results"]
    assert [a["iban"] for a in accounts] == [earner.accounts.get().iban]
    assert client.get("/api/v1/earnings/months/2024-13/").status_code == 400


def test_api_refuses_anonymous_and_non_freelancers(client, db):
    assert client.get("/api/v1/earnings/months/").status_code == 403
    client.force_login(UserFactory())
    assert client.get("/api/v1/earnings/accounts/").status_code == 403


def test_earnings_api_is_in_the_openapi_schema(client, db):
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/earnings/months/{month}/" in schema


def _plain_breaches(receipts, month):
    """The retention rule written the obvious way, for comparison."""
    groups = {}
    for r in sorted(receipts, key=lambda r: (r.value_date, r.id)):
        if r.reversed_on or r.value_date.replace(day=1) != month:
            continue
        holder = ("f", r.freelancer_id) if r.freelancer_id else ("i", r.iban)
        groups.setdefault(holder, []).append(r)
    flagged = set()
    for rs in groups.values():
        proceeds = sum(r.usd_amount for r in rs)
        allowance = max((proceeds / 2).quantize(Decimal("0.01"), ROUND_HALF_UP), Decimal(5000))
        running = Decimal(0)
        for r in rs:
            running += (r.usd_amount * r.retained_amount / r.amount).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )
            if running > allowance:
                flagged.add(r.reference)
    return flagged


def test_retention_rule_matches_a_plain_python_definition():
    rng = random.Random(7)
    accounts = [DollarAccountFactory() for _ in range(4)]
    receipts = []
    for n in range(60):
        account = rng.choice(accounts + [None])
        amount = Decimal(rng.choice([800, 3000, 6000, 9000]))
        receipts.append(
            ReceiptFactory(
                account=account,
                reference=f"RR{n}",
                amount=amount,
                retained_amount=amount * Decimal(rng.choice([0, 25, 50, 75, 100])) / 100,
                value_date=datetime.date(2024, 3, rng.randrange(1, 29)),
                reversed_on=datetime.date(2024, 4, 1) if rng.random() < 0.1 else None,
                iban="PK" + "1" * 22 if account is None else account.iban,
            )
        )
    flagged = {
        line.reference for breach in retention_breaches(month=MARCH) for line in breach.flagged
    }
    assert flagged == _plain_breaches(receipts, MARCH)
    assert flagged  # the data does break the rule somewhere


def test_retention_exactly_at_the_allowance_is_not_flagged():
    account = DollarAccountFactory()
    ReceiptFactory(account=account, amount=Decimal("5000.00"), retained_amount=Decimal("5000.00"))
    assert retention_breaches(month=MARCH) == []
    ReceiptFactory(
        account=account,
        amount=Decimal("2.00"),
        retained_amount=Decimal("1.01"),
        value_date=datetime.date(2024, 3, 16),
    )
    [breach] = retention_breaches(month=MARCH)
    assert breach.allowance_usd == Decimal("5000.00") and len(breach.flagged) == 1
