"""Bodies the resilience suite's fuzzing found answering 500 on PostgreSQL (regressions)."""

import json

import pytest

from payments.models import Receipt, WebhookDelivery
from tests.payments.bank_helpers import bank, event, post, remittance  # noqa: F401

pytestmark = pytest.mark.django_db


def test_nesting_deeper_than_the_parser_allows_is_a_400_naming_the_body(client, bank):  # noqa: F811
    response = post(client, "HBL", None, raw=b"[" * 30000 + b"]" * 30000)
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["body"]
    assert WebhookDelivery.objects.get().response_status == 400


def test_nul_bytes_in_a_body_are_logged_without_failing(client, bank):  # noqa: F811
    response = post(client, "HBL", None, raw=b'{"id": "x\x00"}')
    assert response.status_code == 400
    assert "\x00" not in WebhookDelivery.objects.get().body


@pytest.mark.parametrize("name", ["Acme\x00 GmbH", "Acme \ud800"])
def test_nul_or_lone_surrogate_in_a_field_is_a_400_naming_it(client, bank, name):  # noqa: F811
    payload = event("remittance.credited", remittance(remitter={"name": name, "country": "US"}))
    response = post(client, "HBL", None, raw=json.dumps(payload).encode())
    assert response.status_code == 400
    assert "data.remitter.name" in response.json()["fields"]
    assert not Receipt.objects.exists()
