"""The bank webhook contract: every row of the response table and the order of checks."""

import json

import pytest

from payments.models import Bank, BankEvent, Receipt, WebhookDelivery
from tests.factories import BankFactory, BankSecretFactory
from tests.payments.bank_helpers import (
    SECRET,
    bank,  # noqa: F401
    event,
    post,
    remittance,
    url,
)

pytestmark = pytest.mark.django_db


def test_remittance_is_accepted_and_recorded(client, bank):  # noqa: F811
    payload = event("remittance.credited", remittance(reference="FT1"))
    response = post(client, "HBL", payload)
    assert response.status_code == 201
    assert response.json() == {"status": "accepted", "id": payload["id"]}
    receipt = Receipt.objects.get(bank=bank, reference="FT1")
    assert str(receipt.amount) == "1250.00" and receipt.usd_amount == receipt.amount
    assert receipt.account is None and receipt.freelancer is None
    delivery = WebhookDelivery.objects.get()
    assert delivery.response_status == 201 and delivery.outcome == "accepted"
    assert delivery.signature_verdict == "valid" and delivery.body == json.dumps(payload)
    assert BankEvent.objects.get().event_id == payload["id"]


def test_same_event_again_is_a_duplicate_and_records_nothing_new(client, bank):  # noqa: F811
    payload = event("remittance.credited", remittance())
    assert post(client, "HBL", payload).status_code == 201
    response = post(client, "HBL", payload)
    assert response.status_code == 200
    assert response.json() == {"status": "duplicate", "id": payload["id"]}
    assert Receipt.objects.count() == 1 and BankEvent.objects.count() == 1
    assert WebhookDelivery.objects.filter(outcome="duplicate").count() == 1


def test_same_event_with_other_key_order_whitespace_and_decimal_spelling_is_a_duplicate(
    client,
    bank,  # noqa: F811
):
    payload = event("remittance.credited", remittance(amount="12.5", retained_amount="0"))
    assert post(client, "HBL", payload).status_code == 201
    data = dict(reversed(list(payload["data"].items())))
    data["amount"] = "12.50"
    data.pop("retained_amount")  # omitted optional field equals its default
    data["tax_withheld_pkr"] = "0.00"
    again = {"data": data, "id": payload["id"], "type": payload["type"]}
    again["created"] = "2030-01-01T00:00:00+05:00"  # created is not compared
    raw = json.dumps(again, indent=4).encode()
    response = post(client, "HBL", None, raw=raw)
    assert response.status_code == 200, response.json()


def test_new_event_id_for_an_identical_recorded_reference_is_a_duplicate(client, bank):  # noqa: F811
    data = remittance()
    assert post(client, "HBL", event("remittance.credited", data)).status_code == 201
    second = event("remittance.credited", dict(data))
    response = post(client, "HBL", second)
    assert response.status_code == 200
    assert response.json() == {"status": "duplicate", "id": second["id"]}
    assert Receipt.objects.count() == 1


def test_same_event_id_with_different_content_is_a_conflict(client, bank):  # noqa: F811
    payload = event("remittance.credited", remittance())
    assert post(client, "HBL", payload).status_code == 201
    payload["data"] = remittance()  # another reference under the same id
    response = post(client, "HBL", payload)
    assert response.status_code == 409
    assert response.json()["error"] == "conflict" and response.json()["detail"]
    assert Receipt.objects.count() == 1


def test_same_reference_with_different_amount_is_a_conflict(client, bank):  # noqa: F811
    data = remittance()
    assert post(client, "HBL", event("remittance.credited", data)).status_code == 201
    response = post(client, "HBL", event("remittance.credited", {**data, "amount": "1250.01"}))
    assert response.status_code == 409
    assert Receipt.objects.get().amount == 1250
    assert WebhookDelivery.objects.filter(outcome="conflict", response_status=409).count() == 1


def test_same_reference_at_another_bank_is_another_receipt(client, bank):  # noqa: F811
    other = BankFactory(code="MCB")
    BankSecretFactory(bank=other, secret="whsec-other-bank-secret")
    data = remittance()
    assert post(client, "HBL", event("remittance.credited", data)).status_code == 201
    response = post(
        client, "MCB", event("remittance.credited", data), secret="whsec-other-bank-secret"
    )
    assert response.status_code == 201
    assert Receipt.objects.count() == 2


@pytest.mark.parametrize(
    "raw, field",
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b"\xff\xfe", "body"),
        (b'{"id": "e1", "type": "x", "created": "2024-03-15T10:00:00Z", "data": {}}', "type"),
        (b'{"type": "account.closed", "created": "2024-03-15T10:00:00Z", "data": {}}', "id"),
        (b'{"id": "e1", "type": "account.closed", "created": "yesterday", "data": {}}', "created"),
        (b'{"id": "e1", "type": "account.closed", "created": "2024-03-15T10:00:00Z"}', "data"),
        (
            b'{"id": "e1", "type": "account.closed", "created": "2024-03-15T10:00:00", "data": {}}',
            "created",
        ),
        (("x" * 65).join(['{"id": "', '", "type": "account.closed"}']).encode(), "id"),
    ],
)
def test_malformed_bodies_answer_400_naming_the_field(client, bank, raw, field):  # noqa: F811
    response = post(client, "HBL", None, raw=raw)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid" and field in body["fields"], body
    assert BankEvent.objects.count() == 0
    assert WebhookDelivery.objects.get().outcome == "invalid"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"iban": "PK36SCBL0000001123456703"}, "data.iban"),
        ({"iban": "GB82WEST12345698765432"}, "data.iban"),
        ({"amount": 1250.0}, "data.amount"),
        ({"amount": "1250.001"}, "data.amount"),
        ({"amount": "0.00"}, "data.amount"),
        ({"amount": "-5.00"}, "data.amount"),
        ({"amount": "1e3"}, "data.amount"),
        ({"currency": "usd"}, "data.currency"),
        ({"currency": "XYZ"}, "data.currency"),
        ({"currency": "EUR"}, "data.usd_amount"),  # usd_amount required for non-USD
        ({"usd_amount": "1000.00"}, "data.usd_amount"),  # must equal amount on USD
        ({"pkr_rate": "0"}, "data.pkr_rate"),
        ({"value_date": "2024-02-30"}, "data.value_date"),
        ({"value_date": "15/03/2024"}, "data.value_date"),
        ({"purpose_code": "0000"}, "data.purpose_code"),
        ({"retained_amount": "1250.01"}, "data.retained_amount"),
        ({"tax_withheld_pkr": "-1.00"}, "data.tax_withheld_pkr"),
        ({"remitter": {"name": "Acme"}}, "data.remitter.country"),
        ({"remitter": {"country": "US"}}, "data.remitter.name"),
        ({"remitter": {"name": "Acme", "country": "XX"}}, "data.remitter.country"),
        ({"remitter": "Acme"}, "data.remitter"),
        ({"reference": ""}, "data.reference"),
        ({"reference": "R" * 65}, "data.reference"),
    ],
)
def test_invalid_remittance_fields_answer_400_with_dotted_paths(
    client,
    bank,  # noqa: F811
    overrides,
    field,
):
    response = post(client, "HBL", event("remittance.credited", remittance(**overrides)))
    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()
    assert Receipt.objects.count() == 0


@pytest.mark.parametrize(
    "missing",
    [
        "reference",
        "iban",
        "amount",
        "currency",
        "pkr_rate",
        "value_date",
        "purpose_code",
        "remitter",
    ],
)
def test_missing_required_remittance_field_answers_400(client, bank, missing):  # noqa: F811
    data = remittance()
    data.pop(missing)
    response = post(client, "HBL", event("remittance.credited", data))
    assert response.status_code == 400
    assert f"data.{missing}" in response.json()["fields"]


def test_value_date_may_be_tomorrow_in_karachi_but_not_later(client, bank):  # noqa: F811
    import datetime

    from tests.payments.bank_helpers import today_karachi

    tomorrow = today_karachi() + datetime.timedelta(days=1)
    ok = post(client, "HBL", event("remittance.credited", remittance(value_date=str(tomorrow))))
    assert ok.status_code == 201
    later = str(tomorrow + datetime.timedelta(days=1))
    response = post(client, "HBL", event("remittance.credited", remittance(value_date=later)))
    assert response.status_code == 400 and "data.value_date" in response.json()["fields"]
    old = post(client, "HBL", event("remittance.credited", remittance(value_date="1999-01-01")))
    assert old.status_code == 201


def test_non_usd_receipt_keeps_its_reported_usd_amount(client, bank):  # noqa: F811
    data = remittance(currency="EUR", amount="1000.00", usd_amount="1080.00", pkr_rate="300.1")
    assert post(client, "HBL", event("remittance.credited", data)).status_code == 201
    receipt = Receipt.objects.get()
    assert receipt.currency == "EUR" and str(receipt.usd_amount) == "1080.00"


def test_retired_purpose_code_answers_400(client, bank):  # noqa: F811
    from payments.services.banks import purpose_code_set

    purpose_code_set(code="9185", description="Other", category="computer", retired=True)
    response = post(client, "HBL", event("remittance.credited", remittance(purpose_code="9185")))
    assert response.status_code == 400
    assert "data.purpose_code" in response.json()["fields"]


def test_a_400_records_nothing_so_its_id_may_be_used_again(client, bank):  # noqa: F811
    bad = event("remittance.credited", remittance(amount="oops"))
    assert post(client, "HBL", bad).status_code == 400
    good = event("remittance.credited", remittance(), id_=bad["id"])
    assert post(client, "HBL", good).status_code == 201


def test_unknown_bank_answers_404_json(client, db):
    response = post(client, "NOPE", event("remittance.credited", remittance()))
    assert response.status_code == 404 and response.json() == {"error": "unknown_bank"}


@pytest.mark.parametrize("code", ["hbl", "H", "ABCDEFGHIJKLM", "HB-L"])
def test_malformed_bank_code_answers_404(client, bank, code):  # noqa: F811
    response = post(client, code, event("remittance.credited", remittance()))
    assert response.status_code == 404 and response.json() == {"error": "unknown_bank"}


def test_disabled_bank_answers_404(client, bank):  # noqa: F811
    assert post(client, "HBL", event("remittance.credited", remittance())).status_code == 201
    bank.enabled = False
    bank.save()  # this process forgets the bank it kept at once
    response = post(client, "HBL", event("remittance.credited", remittance()))
    assert response.status_code == 404 and response.json() == {"error": "unknown_bank"}


def test_bank_disabled_by_another_process_answers_404_within_the_keep_time(
    client,
    bank,  # noqa: F811
    monkeypatch,
):
    from payments.services import banks

    clock = [1000.0]
    monkeypatch.setattr(banks, "_clock", lambda: clock[0])
    assert post(client, "HBL", event("remittance.credited", remittance())).status_code == 201
    Bank.objects.filter(pk=bank.pk).update(enabled=False)  # no signal here: another process
    clock[0] += banks.BANK_CREDENTIALS_SECONDS - 0.5
    assert post(client, "HBL", event("remittance.credited", remittance())).status_code == 201
    clock[0] += 1.0
    assert post(client, "HBL", event("remittance.credited", remittance())).status_code == 404


def test_body_over_64_kib_answers_413_before_the_signature_is_checked(client, bank):  # noqa: F811
    payload = event("remittance.credited", remittance(padding="x" * 70_000))
    response = post(client, "HBL", payload, header="garbage")
    assert response.status_code == 413 and response.json() == {"error": "too_large"}
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "too_large"
    assert delivery.body == "" and delivery.body_truncated  # unauthenticated: not kept


def test_body_of_exactly_64_kib_is_not_too_large(client, bank):  # noqa: F811
    payload = event("remittance.credited", remittance())
    raw = json.dumps(payload).encode()
    raw = raw[:-1] + b" " * (64 * 1024 - len(raw)) + b"}"
    assert len(raw) == 64 * 1024
    assert post(client, "HBL", None, raw=raw).status_code == 201


def test_unknown_bank_is_checked_before_size(client, db):
    payload = event("remittance.credited", remittance(padding="x" * 70_000))
    assert post(client, "NOPE", payload).status_code == 404


def test_signature_is_checked_before_the_body(client, bank):  # noqa: F811
    response = post(client, "HBL", None, raw=b"{not json", secret="wrong-secret-xxxxxxxx")
    assert response.status_code == 401


def test_body_is_checked_before_duplicates(client, bank):  # noqa: F811
    payload = event("remittance.credited", remittance())
    assert post(client, "HBL", payload).status_code == 201
    payload["data"]["amount"] = "abc"
    assert post(client, "HBL", payload).status_code == 400


def test_get_is_not_allowed(client, bank):  # noqa: F811
    response = client.get(url("HBL"))
    assert response.status_code == 405 and response.json()["error"]


def test_unknown_data_fields_are_ignored(client, bank):  # noqa: F811
    data = remittance(note="internal")
    assert post(client, "HBL", event("remittance.credited", data)).status_code == 201


def test_wrong_secret_records_only_the_rejected_delivery(client, bank):  # noqa: F811
    response = post(client, "HBL", event("remittance.credited", remittance()), secret="x" * 20)
    assert response.status_code == 401
    assert response.json()["error"] == "signature" and response.json()["detail"]
    assert Receipt.objects.count() == 0 and BankEvent.objects.count() == 0
    delivery = WebhookDelivery.objects.get()
    assert delivery.signature_verdict == "mismatch" and delivery.response_status == 401
    assert SECRET not in delivery.signature_header
    assert delivery.body == "" and len(delivery.body_sha256) == 64  # metadata only
