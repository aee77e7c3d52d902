"""Admin: receipts with filters, the unmatched queue, reconciliation, retention report, secrets."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from payments.models import Receipt
from tests.factories import BankFactory, BankSecretFactory, DollarAccountFactory, ReceiptFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.pk", "pw-xyz-12345")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?matched=no",
        "?matched=yes",
        "?reversed=yes",
        "?month=2024-03",
        "?bank__id__exact=1",
        "?purpose_code__id__exact=1",
        "?q=REF1",
    ],
)
def test_receipt_changelist_filters_work(admin_client, query):
    ReceiptFactory(account=DollarAccountFactory())
    ReceiptFactory(reversed_on=datetime.date(2024, 3, 20))
    response = admin_client.get(f"/admin/payments/receipt/{query}")
    assert response.status_code == 200


def test_month_filter_selects_by_value_date(admin_client):
    ReceiptFactory(reference="IN-MARCH", value_date=datetime.date(2024, 3, 31))
    ReceiptFactory(reference="IN-APRIL", value_date=datetime.date(2024, 4, 1))
    page = admin_client.get("/admin/payments/receipt/?month=2024-03").content.decode()
    assert "IN-MARCH" in page and "IN-APRIL" not in page


def test_unmatched_queue_lists_only_receipts_without_account(admin_client):
    ReceiptFactory(reference="MATCHED", account=DollarAccountFactory())
    ReceiptFactory(reference="LOOSE")
    page = admin_client.get("/admin/payments/unmatchedreceipt/").content.decode()
    assert "LOOSE" in page and "MATCHED" not in page


def test_reconciliation_counts_and_sums_per_bank_and_day(admin_client):
    bank = BankFactory(code="HBL")
    day = datetime.date(2024, 3, 15)
    ReceiptFactory(bank=bank, value_date=day, amount=Decimal("10.00"))
    ReceiptFactory(bank=bank, value_date=day, amount=Decimal("5.50"), reversed_on=day)
    ReceiptFactory(bank=BankFactory(code="MCB"), value_date=day, amount=Decimal("99.00"))
    response = admin_client.get(
        f"/admin/payments/receipt/reconciliation/?bank={bank.pk}&date_from=2024-03-01"
        "&date_to=2024-03-31&format=csv"
    )
    lines = response.content.decode().strip().splitlines()
    assert lines[0].startswith("bank,value_date,currency,receipts")
    assert lines[1:] == ["HBL,2024-03-15,USD,2,15.50,15.50,1,5.50"]
    page = admin_client.get(
        "/admin/payments/receipt/reconciliation/?date_from=2024-03-01&date_to=2024-03-31"
    )
    assert page.status_code == 200 and "MCB" in page.content.decode()


def test_retention_report_flags_the_receipt_over_the_allowance(admin_client):
    account = DollarAccountFactory()
    ReceiptFactory(
        account=account,
        reference="KEEP-OK",
        amount=Decimal("6000.00"),
        retained_amount=Decimal("5000.00"),
        value_date=datetime.date(2024, 3, 1),
    )
    ReceiptFactory(
        account=account,
        reference="KEEP-OVER",
        amount=Decimal("2000.00"),
        retained_amount=Decimal("2000.00"),
        value_date=datetime.date(2024, 3, 2),
    )
    page = admin_client.get("/admin/payments/receipt/retention/?month=2024-03").content.decode()
    assert "KEEP-OVER" in page and "KEEP-OK" not in page.split("<tbody>")[1]
    assert Receipt.objects.count() == 2  # the money is still recorded


def test_bank_page_never_shows_a_stored_secret(admin_client):
    secret = BankSecretFactory(secret="super-secret-value-1234")
    page = admin_client.get(f"/admin/payments/bank/{secret.bank.pk}/change/").content.decode()
    assert "super-secret-value-1234" not in page and "…1234" in page
    listing = admin_client.get("/admin/payments/banksecret/").content.decode()
    assert "super-secret-value-1234" not in listing


def test_revoke_action_revokes_a_secret(admin_client):
    secret = BankSecretFactory()
    admin_client.post(
        "/admin/payments/banksecret/",
        {"action": "revoke", "_selected_action": [secret.pk]},
    )
    secret.refresh_from_db()
    assert not secret.active and secret.revoked_at is not None


@pytest.mark.parametrize(
    "path",
    [
        "/admin/payments/webhookdelivery/",
        "/admin/payments/bankevent/",
        "/admin/payments/dollaraccount/",
        "/admin/payments/receiptreversal/",
        "/admin/payments/accountclosure/",
        "/admin/payments/purposecode/",
    ],
)
def test_other_changelists_load(admin_client, path):
    assert admin_client.get(path).status_code == 200
