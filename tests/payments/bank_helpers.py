"""Helpers for the bank webhook tests: signed deliveries and event bodies."""

import datetime
import itertools
import json

from payments.demo import make_iban
from payments.services.bank_webhooks import signature_header_for

SECRET = "whsec-bank-test-secret-0001"
_serial = itertools.count(1)


def url(code: str) -> str:
    return f"/api/v1/webhooks/banks/{code}/"


def event(type_: str, data: dict, *, id_: str | None = None) -> dict:
    return {
        "id": id_ or f"evt_{next(_serial):06d}",
        "type": type_,
        "created": "2024-03-15T10:00:00Z",
        "data": data,
    }


def remittance(**overrides) -> dict:
    data = {
        "reference": f"FT{next(_serial):010d}",
        "iban": make_iban("ABCD", 1),
        "amount": "1250.00",
        "currency": "USD",
        "pkr_rate": "278.50",
        "value_date": "2024-03-15",
        "purpose_code": "9182",
        "remitter": {"name": "Acme Inc", "country": "US"},
    }
    data.update(overrides)
    return data


def account_opened(*, iban: str, cnic: str, **overrides) -> dict:
    data = {"iban": iban, "currency": "USD", "cnic": cnic, "opened_on": "2024-01-10"}
    data.update(overrides)
    return data


def post(
    client,
    code: str,
    payload,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    header: str | None = None,
    raw: bytes | None = None,
):
    body = raw if raw is not None else json.dumps(payload).encode()
    if header is None:
        header = signature_header_for(secret=secret, body=body, timestamp=timestamp)
    return client.post(
        url(code), data=body, content_type="application/json", HTTP_X_BANK_SIGNATURE=header
    )


def today_karachi() -> datetime.date:
    from payments.services.bank_webhooks import karachi_today

    return karachi_today()


import pytest  # noqa: E402


@pytest.fixture
def bank(db):
    from tests.factories import BankFactory, BankSecretFactory

    bank = BankFactory(code="HBL")
    BankSecretFactory(bank=bank, secret=SECRET)
    return bank
