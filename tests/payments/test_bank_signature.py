"""Signature edge cases: the window, several v1 values, hex case, rotation and revocation."""

import hashlib
import hmac
import json

import pytest

from payments.models import Receipt, WebhookDelivery
from payments.services import bank_webhooks
from payments.services.bank_webhooks import signature_header_for
from payments.services.banks import bank_add, bank_secret_revoke
from tests.payments.bank_helpers import SECRET, bank, event, post, remittance  # noqa: F401

pytestmark = pytest.mark.django_db
NOW = 1_700_000_000


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(bank_webhooks, "current_unix_time", lambda: float(NOW))


def _body():
    return json.dumps(event("remittance.credited", remittance())).encode()


def _digest(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("offset", [-300, 300, 0])
def test_timestamp_exactly_300_seconds_off_is_accepted(client, bank, offset):  # noqa: F811
    assert post(client, "HBL", None, raw=_body(), timestamp=NOW + offset).status_code == 201


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_stale_or_future_timestamp_is_rejected(client, bank, offset):  # noqa: F811
    response = post(client, "HBL", None, raw=_body(), timestamp=NOW + offset)
    assert response.status_code == 401
    assert response.json()["error"] == "signature"
    assert WebhookDelivery.objects.get().signature_verdict == "stale"
    assert Receipt.objects.count() == 0


def test_one_changed_byte_in_the_body_fails(client, bank):  # noqa: F811
    body = _body()
    header = signature_header_for(secret=SECRET, body=body, timestamp=NOW)
    tampered = body.replace(b"1250.00", b"1250.01")
    assert tampered != body
    assert post(client, "HBL", None, raw=tampered, header=header).status_code == 401
    assert post(client, "HBL", None, raw=body, header=header).status_code == 201


def test_one_changed_byte_in_the_timestamp_fails(client, bank):  # noqa: F811
    body = _body()
    header = f"t={NOW + 1},v1={_digest(SECRET, NOW, body)}"
    assert post(client, "HBL", None, raw=body, header=header).status_code == 401


def test_any_of_several_v1_values_may_match(client, bank):  # noqa: F811
    body = _body()
    header = f"t={NOW},v1={'0' * 64},v1={_digest(SECRET, NOW, body)},v1={'f' * 64}"
    assert post(client, "HBL", None, raw=body, header=header).status_code == 201


def test_upper_case_hex_digest_is_accepted(client, bank):  # noqa: F811
    body = _body()
    header = f"t={NOW},v1={_digest(SECRET, NOW, body).upper()}"
    assert post(client, "HBL", None, raw=body, header=header).status_code == 201


@pytest.mark.parametrize(
    "header, verdict",
    [
        ("", "missing"),
        ("garbage", "malformed"),
        (f"t={NOW}", "malformed"),
        ("v1=" + "a" * 64, "malformed"),
        (f"t=abc,v1={'a' * 64}", "malformed"),
        (f"t={NOW},v1=nothex", "malformed"),
        (f"t={NOW},t={NOW},v1={'a' * 64}", "malformed"),
        (f"t={NOW},v1={'a' * 64}", "mismatch"),
    ],
)
def test_missing_or_malformed_signature_is_rejected(client, bank, header, verdict):  # noqa: F811
    response = post(client, "HBL", None, raw=_body(), header=header)
    assert response.status_code == 401 and response.json()["error"] == "signature"
    assert WebhookDelivery.objects.get().signature_verdict == verdict


def test_digest_signed_with_the_sha1_or_without_the_timestamp_fails(client, bank):  # noqa: F811
    body = _body()
    no_timestamp = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert (
        post(client, "HBL", None, raw=body, header=f"t={NOW},v1={no_timestamp}").status_code == 401
    )


def test_rotation_both_secrets_work_until_the_old_one_is_revoked(client, bank):  # noqa: F811
    _, new_secret, created = bank_add(code="HBL", name="", secret="whsec-rotated-secret-0002")
    assert not created
    assert post(client, "HBL", None, raw=_body(), secret=SECRET, timestamp=NOW).status_code == 201
    new = post(client, "HBL", None, raw=_body(), secret=new_secret.secret, timestamp=NOW)
    assert new.status_code == 201
    bank_secret_revoke(bank_secret=bank.secrets.get(secret=SECRET))
    assert post(client, "HBL", None, raw=_body(), secret=SECRET, timestamp=NOW).status_code == 401
    new = post(client, "HBL", None, raw=_body(), secret=new_secret.secret, timestamp=NOW)
    assert new.status_code == 201


def test_secret_of_another_bank_does_not_sign_for_this_one(client, bank):  # noqa: F811
    bank_add(code="MCB", name="MCB", secret="whsec-mcb-secret-00001")
    response = post(client, "HBL", None, raw=_body(), secret="whsec-mcb-secret-00001")
    assert response.status_code == 401


def test_bank_with_every_secret_revoked_rejects_everything(client, bank):  # noqa: F811
    bank_secret_revoke(bank_secret=bank.secrets.get())
    assert post(client, "HBL", None, raw=_body(), timestamp=NOW).status_code == 401
