"""The freelancer's incentives page and API: their own figures only, freelancers only."""

import datetime
from decimal import Decimal

import pytest

from payments.models import Exclusion, PayoutAccount
from payments.services.incentives import scheme_compute
from tests.factories import (
    ApprovedFreelancerFactory,
    IncentiveSchemeFactory,
    ReceiptFactory,
    StaffFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def computed():
    winner, loser = ApprovedFreelancerFactory(), ApprovedFreelancerFactory()
    ReceiptFactory(
        freelancer=winner,
        amount=Decimal(20000),
        value_date=datetime.date(2024, 1, 5),
        reference="WIN-1",
    )
    ReceiptFactory(
        freelancer=loser,
        amount=Decimal(500),
        value_date=datetime.date(2024, 1, 5),
        reference="LOSE-1",
    )
    scheme = IncentiveSchemeFactory(name="Cash reward 2023-24", min_proceeds_usd=Decimal(10000))
    scheme_compute(scheme_id=scheme.pk, by=StaffFactory(), as_of=datetime.date(2024, 8, 1))
    return scheme, winner, loser


def test_api_shows_a_qualified_freelancer_the_award_and_the_receipts_that_counted(client, computed):
    scheme, winner, _ = computed
    client.force_login(winner.user)
    body = client.get("/api/v1/incentives/").json()
    [item] = body["results"]
    assert item["scheme"]["name"] == "Cash reward 2023-24"
    assert item["qualified"] is True and item["provisional"] is True
    assert item["figures"]["awarded_amount_pkr"] == "280000.00"  # 5% of 20000 x 280
    assert [r["reference"] for r in item["receipts"]] == ["WIN-1"]


def test_api_tells_an_excluded_freelancer_why(client, computed):
    _, _, loser = computed
    client.force_login(loser.user)
    [item] = client.get("/api/v1/incentives/").json()["results"]
    assert item["qualified"] is False
    assert item["reason_code"] == Exclusion.Reason.BELOW_MINIMUM
    assert "below the minimum" in item["reason"]
    assert [r["reference"] for r in item["receipts"]] == ["LOSE-1"]


def test_api_and_page_are_for_freelancers_only(client, computed):
    assert client.get("/api/v1/incentives/").status_code == 403
    client.force_login(UserFactory())
    assert client.get("/api/v1/incentives/").status_code == 403
    assert client.get("/incentives/").status_code == 403


def test_page_shows_the_award_and_saves_a_valid_payout_account(client, computed):
    _, winner, _ = computed
    client.force_login(winner.user)
    page = client.get("/incentives/").content.decode()
    assert "Cash reward 2023-24" in page and "280,000.00" in page and "WIN-1" in page
    iban = "PK36SCBL0000001123456702"
    response = client.post("/incentives/", {"iban": iban, "account_title": "A Khan"})
    assert response.status_code == 302
    assert PayoutAccount.objects.get(freelancer=winner).iban == iban


def test_an_invalid_iban_is_an_error_next_to_the_field(client, computed):
    _, winner, _ = computed
    client.force_login(winner.user)
    response = client.post("/incentives/", {"iban": "PK00XXXX1", "account_title": "A Khan"})
    assert response.status_code == 200
    assert "valid Pakistani IBAN" in response.content.decode()
    assert not PayoutAccount.objects.exists()
    api = client.put(
        "/api/v1/incentives/payout-account/",
        {"iban": "GB82WEST12345698765432", "account_title": "A Khan"},
        content_type="application/json",
    )
    assert api.status_code == 400 and "iban" in api.json()
    ok = client.put(
        "/api/v1/incentives/payout-account/",
        {"iban": "PK36 SCBL 0000 0011 2345 6702", "account_title": "A Khan"},
        content_type="application/json",
    )
    assert ok.status_code == 200 and ok.json()["iban"] == "PK36SCBL0000001123456702"


def test_openapi_schema_documents_the_incentives_api(client):
    client.force_login(StaffFactory())
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/incentives/" in schema and "/api/v1/incentives/payout-account/" in schema
