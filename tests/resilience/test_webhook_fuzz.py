"""Property tests of the bank webhook body against the running portal (hypothesis).

Every body here is correctly signed, so it reaches the body checks. Bodies that are invalid by
construction (random JSON, garbage bytes, a valid event with one field broken, too-deep nesting,
64 KiB + 1) must get the contract's 400 (naming the broken field) or 413, never a 5xx, and must
store nothing but the delivery log. Valid-but-odd bodies (unicode names, the largest amount the
ledger holds, "12.5") must be accepted and stored exactly once.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import urllib.parse
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.resilience.bankgen import make_iban, sign, today_karachi, unix_now
from tests.resilience.conftest import require_feature

pytestmark = pytest.mark.resilience

BANK = "FUZZ1"
SECRET = "whsec-fuzz-0123456789abcdef"
EXAMPLES = int(os.environ.get("RESILIENCE_FUZZ_EXAMPLES", "300"))
TRIED: Counter = Counter()
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Client:
    """One keep-alive connection to gunicorn, signing every body for BANK."""

    def __init__(self, base_url: str):
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def post(self, body: bytes, *, bank: str = BANK) -> tuple[int, bytes]:
        t = unix_now()
        headers = {
            "Content-Type": "application/json",
            "X-Bank-Signature": f"t={t},v1={sign(SECRET, t, body)}",
        }
        for attempt in range(3):
            try:
                self.conn.request("POST", f"/api/v1/webhooks/banks/{bank}/", body, headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def client(stack):
    require_feature("payments.management.commands.add_bank", "bank webhooks (issue 4)")
    stack.manage("add_bank", BANK, "--name", "Fuzz bank", "--secret", SECRET)
    return Client(stack.base_url)


def stored_counts(stack) -> tuple[int, int]:
    return (
        stack.db.scalar("SELECT COUNT(*) FROM payments_receipt"),
        stack.db.scalar("SELECT COUNT(*) FROM payments_dollaraccount"),
    )


_serial = iter(range(10**9))


def fresh_ids() -> tuple[str, str, str]:
    n = next(_serial)
    return f"evt_fuzz_{os.getpid()}_{n}", f"FZ{os.getpid()}X{n}", make_iban("FUZZ", n + 1)


def valid_remittance() -> dict:
    event_id, reference, iban = fresh_ids()
    return {
        "id": event_id,
        "type": "remittance.credited",
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {
            "reference": reference,
            "iban": iban,
            "amount": "1250.00",
            "currency": "EUR",
            "usd_amount": "1355.25",
            "pkr_rate": "301.4500",
            "value_date": (today_karachi() - datetime.timedelta(days=3)).isoformat(),
            "purpose_code": "9182",
            "retained_amount": "250.00",
            "tax_withheld_pkr": "1000.00",
            "remitter": {"name": "Acme GmbH", "country": "DE"},
        },
    }


def valid_account() -> dict:
    event_id, _, iban = fresh_ids()
    return {
        "id": event_id,
        "type": "account.opened",
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {
            "iban": iban,
            "currency": "USD",
            "cnic": "35202-1234567-1",
            "opened_on": "2024-01-15",
        },
    }


def _tomorrow_plus(days: int) -> str:
    return (today_karachi() + datetime.timedelta(days=days)).isoformat()


# (event kind, field path, bad value). ``DELETE`` removes the field.
DELETE = object()
BAD_REMITTANCE_FIELDS = [
    ("data.amount", "10.123"),
    ("data.amount", "-5.00"),
    ("data.amount", "0.00"),
    ("data.amount", "0"),
    ("data.amount", "1e400"),
    ("data.amount", "99999999999999999999999999.99"),
    ("data.amount", 1250.0),
    ("data.amount", 1250),
    ("data.amount", "NaN"),
    ("data.amount", "Infinity"),
    ("data.amount", ""),
    ("data.amount", "12,50"),
    ("data.amount", None),
    ("data.amount", DELETE),
    ("data.usd_amount", DELETE),
    ("data.usd_amount", "-1.00"),
    ("data.usd_amount", "1.001"),
    ("data.pkr_rate", "0"),
    ("data.pkr_rate", "-278.5"),
    ("data.pkr_rate", "abc"),
    ("data.pkr_rate", DELETE),
    ("data.retained_amount", "1250.01"),
    ("data.retained_amount", "-0.01"),
    ("data.tax_withheld_pkr", "-1.00"),
    ("data.tax_withheld_pkr", "1.005"),
    ("data.currency", "ZZZ"),
    ("data.currency", "EURO"),
    ("data.currency", ""),
    ("data.currency", 978),
    ("data.currency", DELETE),
    ("data.iban", "PK00ZZZZ0000000000000001"),
    ("data.iban", "DE89370400440532013000"),
    ("data.iban", "PK36SCBL000000112345670299"),
    ("data.iban", ""),
    ("data.iban", DELETE),
    ("data.value_date", "2026-02-30"),
    ("data.value_date", "yesterday"),
    ("data.value_date", "2025/01/01"),
    ("data.value_date", "__future3__"),
    ("data.value_date", DELETE),
    ("data.purpose_code", "0000"),
    ("data.purpose_code", "91821"),
    ("data.purpose_code", 9182),
    ("data.purpose_code", DELETE),
    ("data.remitter.country", "XX"),
    ("data.remitter.country", "DEU"),
    ("data.remitter.country", ""),
    ("data.remitter.country", DELETE),
    ("data.remitter.name", DELETE),
    ("data.remitter.name", "Acme\x00GmbH"),
    ("data.remitter.name", "Acme \ud800"),
    ("data.reference", "REF\x00"),
    ("data.remitter.name", 42),
    ("data.remitter", "Acme GmbH"),
    ("data.remitter", DELETE),
    ("data.reference", ""),
    ("data.reference", "R" * 65),
    ("data.reference", DELETE),
    ("data", []),
    ("data", "x"),
    ("data", DELETE),
    ("type", "remittance.refunded"),
    ("type", DELETE),
    ("type", 7),
    ("id", ""),
    ("id", "E" * 65),
    ("id", DELETE),
    ("id", 12345),
    ("created", "not a time"),
    ("created", DELETE),
]
BAD_ACCOUNT_FIELDS = [
    ("data.cnic", "00000-0000000-0"),
    ("data.cnic", "35202-1234567-0"),
    ("data.cnic", "85202-1234567-1"),
    ("data.cnic", "352021234567"),
    ("data.cnic", "35202-123456A-1"),
    ("data.cnic", 3520212345671),
    ("data.cnic", DELETE),
    ("data.iban", "PK00ZZZZ0000000000000001"),
    ("data.iban", "GB82WEST12345698765432"),
    ("data.currency", "DOLLAR"),
    ("data.opened_on", "2024-13-01"),
    ("data.opened_on", DELETE),
]


def set_path(event: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = event
    for name in parents:
        node = node[name]
    if value is DELETE:
        node.pop(last, None)
    elif value == "__future3__":
        node[last] = _tomorrow_plus(3)
    else:
        node[last] = value


def assert_invalid(status: int, body: bytes, field: str | None) -> None:
    assert status == 400, (status, body[:400])
    payload = json.loads(body)
    assert payload["error"] == "invalid", payload
    assert payload["fields"], payload
    if field is not None:
        # The field itself or one of its parents ("data.remitter" for "data.remitter.name",
        # "data" when data is not an object) is named.
        names = set(payload["fields"])
        prefixes = {field.rsplit(".", i)[0] for i in range(field.count(".") + 1)}
        assert names & prefixes or (field == "data" and names), (field, payload)


@pytest.mark.parametrize("kind", ["remittance", "account"])
def test_each_broken_field_gets_400_naming_it_and_stores_nothing(stack, client, kind):
    before = stored_counts(stack)
    cases = BAD_REMITTANCE_FIELDS if kind == "remittance" else BAD_ACCOUNT_FIELDS
    failures = []
    for field, value in cases:
        event = valid_remittance() if kind == "remittance" else valid_account()
        set_path(event, field, value)
        status, body = client.post(json.dumps(event).encode())
        TRIED["broken_field"] += 1
        try:
            assert_invalid(status, body, field)
        except (AssertionError, ValueError, KeyError) as exc:
            failures.append(f"{field}={value!r}: {exc}")
    assert stored_counts(stack) == before
    assert failures == [], "\n".join(failures)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=40,
)


@FUZZ_SETTINGS
@given(value=json_values)
def test_random_json_is_refused_with_400_never_5xx(stack, client, value):
    before = stored_counts(stack)
    status, body = client.post(json.dumps(value).encode())
    TRIED["random_json"] += 1
    assert_invalid(status, body, None)
    assert stored_counts(stack) == before


@FUZZ_SETTINGS
@given(raw=st.binary(min_size=0, max_size=2000))
def test_garbage_bytes_are_refused_with_400_never_5xx(stack, client, raw):
    status, body = client.post(raw)
    TRIED["garbage_bytes"] += 1
    assert_invalid(status, body, None)


@FUZZ_SETTINGS
@given(
    field=st.sampled_from(BAD_REMITTANCE_FIELDS),
    name=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80),
    indent=st.sampled_from([None, 0, 2]),
)
def test_mutated_remittance_is_refused_whatever_else_it_carries(stack, client, field, name, indent):
    """A broken field stays broken whatever unicode the rest carries or however it is spaced."""
    event = valid_remittance()
    event["data"]["remitter"]["name"] = name
    set_path(event, *field)
    try:
        raw = json.dumps(event, indent=indent, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate travels escaped
        raw = json.dumps(event, indent=indent).encode()
    status, body = client.post(raw)
    TRIED["mutated"] += 1
    assert_invalid(status, body, field[0] if not field[0].startswith("data.remitter") else None)
    data = event.get("data")
    reference = str(data.get("reference", "")) if isinstance(data, dict) else ""
    # (A reference PostgreSQL cannot even hold is not looked up.)
    reference = reference.encode("utf-8", "replace").decode().replace("\x00", "")
    assert not stack.db.scalar(
        "SELECT COUNT(*) FROM payments_receipt WHERE reference = %s", (reference,)
    )


@FUZZ_SETTINGS
@given(name=st.text(min_size=1, max_size=200))
def test_any_unicode_remitter_name_never_gives_5xx_and_stores_at_most_once(stack, client, name):
    """Lone surrogates, NUL, right-to-left marks, emoji: a 4xx, or stored exactly once."""
    event = valid_remittance()
    event["data"]["remitter"]["name"] = name
    raw = json.dumps(event).encode()  # ensure_ascii: lone surrogates travel as \\ud800
    status, body = client.post(raw)
    TRIED["unicode_name"] += 1
    assert status < 500, (status, body[:300])
    count = stack.db.scalar(
        "SELECT COUNT(*) FROM payments_receipt WHERE reference = %s",
        (event["data"]["reference"],),
    )
    if status in (200, 201):
        assert count == 1
        again, _ = client.post(raw)
        assert again == 200
    else:
        assert status == 400, (status, body[:300])
        assert count == 0


def test_deep_nesting_is_refused_with_400(stack, client):
    for depth in (100, 1000, 20000):
        event = valid_remittance()
        nested = "[" * depth + "]" * depth
        raw = json.dumps(event).encode()[:-1] + b',"extra":' + nested.encode() + b"}"
        status, body = client.post(raw)
        TRIED["deep_nesting"] += 1
        # An unknown extra key may be refused or ignored; never a 5xx (RecursionError).
        assert status in (400, 201), (depth, status, body[:200])
    status, body = client.post(b"[" * 30000 + b"]" * 30000)
    TRIED["deep_nesting"] += 1
    assert_invalid(status, body, None)


def test_body_of_64_kib_plus_one_gets_413_and_64_kib_is_read(stack, client):
    event = valid_remittance()
    raw = json.dumps(event).encode()
    exact = raw[:-1] + b" " * (64 * 1024 - len(raw)) + b"}"
    assert len(exact) == 64 * 1024
    status, body = client.post(exact)
    TRIED["size_limit"] += 1
    assert status == 201, (status, body[:300])
    event = valid_remittance()
    raw = json.dumps(event).encode()
    over = raw[:-1] + b" " * (64 * 1024 + 1 - len(raw)) + b"}"
    assert len(over) == 64 * 1024 + 1
    before = stored_counts(stack)
    status, body = client.post(over)
    TRIED["size_limit"] += 1
    assert status == 413, (status, body[:300])
    assert json.loads(body) == {"error": "too_large"}
    status, body = client.post(b"x" * (2 * 1024 * 1024))
    TRIED["size_limit"] += 1
    assert status == 413
    assert stored_counts(stack) == before


@pytest.mark.parametrize("amount,usd", [("0.01", "0.01"), ("12.5", "12.5")])
def test_edge_of_valid_amounts_is_accepted_and_stored_once(stack, client, amount, usd):
    event = valid_remittance()
    event["data"].update(
        {"amount": amount, "currency": "USD", "usd_amount": usd, "retained_amount": "0"}
    )
    raw = json.dumps(event).encode()
    status, body = client.post(raw)
    TRIED["valid_edge"] += 1
    assert status == 201, (status, body[:300])
    assert client.post(raw)[0] == 200
    assert (
        stack.db.scalar(
            "SELECT COUNT(*) FROM payments_receipt WHERE reference = %s",
            (event["data"]["reference"],),
        )
        == 1
    )


def test_largest_amount_is_stored_exactly_or_refused_naming_the_field(stack, client):
    """The contract sets no maximum: the portal may refuse a huge amount (400 naming it) but
    must never store it rounded or answer 5xx."""
    event = valid_remittance()
    big = "9999999999999999.99"
    event["data"].update({"amount": big, "currency": "USD", "usd_amount": big})
    status, body = client.post(json.dumps(event).encode())
    TRIED["valid_edge"] += 1
    reference = event["data"]["reference"]
    if status == 201:
        stored = stack.db.scalar(
            "SELECT amount FROM payments_receipt WHERE reference = %s", (reference,)
        )
        assert str(stored) == big
    else:
        assert_invalid(status, body, "data.amount")


def test_value_date_tomorrow_in_karachi_is_accepted(stack, client):
    event = valid_remittance()
    event["data"]["value_date"] = _tomorrow_plus(1)
    status, body = client.post(json.dumps(event).encode())
    assert status == 201, (status, body[:300])


def test_fuzz_counts_are_written(resilience_log_dir):
    (resilience_log_dir / "fuzz_counts.json").write_text(json.dumps(TRIED, indent=2))
    assert sum(TRIED.values()) > 0
