"""The invoice pages (/invoices/), the client's page (/pay/<token>/) and the API
(/api/v1/invoices/), through the test client."""

import datetime

import pytest

from payments.models import Invoice
from tests.factories import ApprovedFreelancerFactory, FreelancerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def form_data(**changes) -> dict:
    data = {
        "client_name": "Initech GmbH",
        "client_email": "billing@initech.example.de",
        "client_country": "DE",
        "description": "Mobile app, milestone 2",
        "amount": "2500.00",
        "currency": "EUR",
        "purpose_code": "",
        "due_date": (datetime.date.today() + datetime.timedelta(days=14)).isoformat(),
    }
    data.update(changes)
    return data


def purpose_pk() -> int:
    from payments.models import PurposeCode

    return PurposeCode.objects.get(code="9182").pk


def test_approved_freelancer_creates_a_draft_invoice_in_the_portal(client):
    freelancer = ApprovedFreelancerFactory()
    client.force_login(freelancer.user)
    response = client.post("/invoices/", form_data(purpose_code=purpose_pk()))
    invoice = Invoice.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/invoices/{invoice.pk}/"
    assert invoice.freelancer == freelancer and invoice.status == Invoice.Status.DRAFT
    assert str(invoice.amount) == "2500.00" and invoice.currency == "EUR"
    page = client.get("/invoices/")
    assert invoice.number in page.content.decode()


@pytest.mark.parametrize(
    "field,value",
    [
        ("client_country", "PK"),
        ("client_country", "XX"),
        ("amount", "0"),
        ("due_date", "2001-01-01"),
    ],
)
def test_bad_input_shows_an_error_next_to_the_field(client, field, value):
    freelancer = ApprovedFreelancerFactory()
    client.force_login(freelancer.user)
    response = client.post("/invoices/", form_data(purpose_code=purpose_pk(), **{field: value}))
    assert response.status_code == 200
    assert response.context["form"].errors.get(field)
    assert not Invoice.objects.exists()


def test_freelancer_not_yet_approved_cannot_use_invoices(client):
    freelancer = FreelancerFactory()
    client.force_login(freelancer.user)
    assert client.get("/invoices/").status_code == 403
    assert client.get("/api/v1/invoices/").status_code == 403


def test_a_freelancer_never_sees_another_freelancers_invoice(client):
    other = InvoiceFactory()
    client.force_login(ApprovedFreelancerFactory().user)
    assert client.get(f"/invoices/{other.pk}/").status_code == 404
    assert client.post(f"/invoices/{other.pk}/void/").status_code == 404
    assert client.get(f"/api/v1/invoices/{other.pk}/").status_code == 404
    assert client.get("/api/v1/invoices/").json()["results"] == []


def test_freelancer_voids_own_open_invoice(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    client.force_login(invoice.freelancer.user)
    client.post(f"/invoices/{invoice.pk}/void/")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID and invoice.voided_at is not None


def test_sending_without_stripe_key_says_stripe_is_not_configured(client, settings):
    settings.STRIPE_API_KEY = ""
    invoice = InvoiceFactory()
    client.force_login(invoice.freelancer.user)
    response = client.post(f"/invoices/{invoice.pk}/send/", follow=True)
    assert "Stripe is not configured" in response.content.decode()
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.DRAFT


def test_client_page_shows_the_invoice_and_explains_missing_stripe(client, settings):
    settings.STRIPE_API_KEY = ""
    invoice = InvoiceFactory(status=Invoice.Status.OPEN, client_name="Umbrella plc")
    response = client.get(f"/pay/{invoice.public_token}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Umbrella plc" in body and "1500.00 USD" in body
    assert 'id="stripe-not-configured"' in body
    assert invoice.freelancer.cnic not in body


def test_client_page_shows_the_stripe_button_when_configured(client, settings):
    settings.STRIPE_API_KEY = "sk_test_fake"
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    body = client.get(f"/pay/{invoice.public_token}/").content.decode()
    assert f'action="/pay/{invoice.public_token}/checkout/"' in body
    assert "stripe-not-configured" not in body


def test_draft_invoice_and_unknown_token_have_no_client_page(client):
    invoice = InvoiceFactory()
    assert client.get(f"/pay/{invoice.public_token}/").status_code == 404
    assert client.get("/pay/not-a-real-token/").status_code == 404


def test_api_creates_lists_and_voids_own_invoices(client):
    freelancer = ApprovedFreelancerFactory()
    client.force_login(freelancer.user)
    data = form_data(purpose_code="9184", service_category=None)
    response = client.post("/api/v1/invoices/", data, content_type="application/json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] == "draft" and created["amount"] == "2500.00"
    assert created["pay_url"] is None
    listed = client.get("/api/v1/invoices/").json()
    assert [row["id"] for row in listed["results"]] == [created["id"]]
    voided = client.post(f"/api/v1/invoices/{created['id']}/void/")
    assert voided.status_code == 200 and voided.json()["status"] == "void"
    again = client.post(f"/api/v1/invoices/{created['id']}/send/")
    assert again.status_code == 400 and "non_field_errors" in again.json()


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"amount": "-5"}, "amount"),
        ({"amount": "12.345"}, "amount"),
        ({"currency": "JPY"}, "currency"),
        ({"client_country": "PK"}, "client_country"),
        ({"purpose_code": "0000"}, "purpose_code"),
        ({"client_email": "nope"}, "client_email"),
    ],
)
def test_api_bad_input_is_a_400_naming_the_field(client, changes, field):
    client.force_login(ApprovedFreelancerFactory().user)
    data = form_data(**{"purpose_code": "9184", **changes})
    response = client.post("/api/v1/invoices/", data, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()


def test_invoice_api_is_in_the_openapi_schema(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("schema-reader", password="x"))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/invoices/" in schema and "/api/v1/invoices/{id}/void/" in schema
