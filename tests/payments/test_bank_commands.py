"""Operator commands: add_bank (with rotation) and set_purpose_code."""

import pytest
from django.core.management import CommandError, call_command

from payments.models import Bank, PurposeCode
from tests.payments.bank_helpers import event, post, remittance

pytestmark = pytest.mark.django_db


def test_add_bank_twice_adds_a_second_active_secret_and_never_prints_it(client, capsys):
    call_command("add_bank", "ABL", "--name", "Allied Bank", "--secret", "first-secret-0000001")
    call_command("add_bank", "ABL", "--name", "Allied Bank", "--secret", "second-secret-000002")
    output = capsys.readouterr().out
    assert "first-secret-0000001" not in output and "second-secret-000002" not in output
    bank = Bank.objects.get(code="ABL")
    assert bank.secrets.filter(active=True).count() == 2
    for secret in ("first-secret-0000001", "second-secret-000002"):
        payload = event("remittance.credited", remittance())
        assert post(client, "ABL", payload, secret=secret).status_code == 201


@pytest.mark.parametrize("code", ["abl", "A", "TOO-LONG-CODE"])
def test_add_bank_refuses_a_malformed_code(code):
    with pytest.raises(CommandError):
        call_command("add_bank", code, "--name", "X", "--secret", "a-long-enough-secret")


def test_set_purpose_code_creates_updates_and_retires(client):
    call_command(
        "set_purpose_code", "9999", "--description", "Test", "--category", "other", "--not-it"
    )
    row = PurposeCode.objects.get(code="9999")
    assert not row.is_it and not row.retired
    call_command(
        "set_purpose_code", "9999", "--description", "Test 2", "--category", "other", "--retired"
    )
    row.refresh_from_db()
    assert row.is_it and row.retired and row.description == "Test 2"


def test_sign_bank_event_prints_a_delivery_the_webhook_accepts(client, capsys):
    import re

    call_command("add_bank", "HBL", "--name", "Habib", "--secret", "demo-secret-000000001")
    call_command("sign_bank_event", "HBL", "--secret", "demo-secret-000000001")
    line = capsys.readouterr().out.strip().splitlines()[-1]
    header = re.search(r"X-Bank-Signature: ([^']+)'", line).group(1)
    body = re.search(r"--data-raw '(.+)'$", line).group(1)
    response = client.post(
        "/api/v1/webhooks/banks/HBL/",
        data=body.encode(),
        content_type="application/json",
        HTTP_X_BANK_SIGNATURE=header,
    )
    assert response.status_code == 201, response.json()
