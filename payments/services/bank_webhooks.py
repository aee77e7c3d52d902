"""The bank webhook (contract: shared/contract/bank-webhooks.md): verify, validate, record, apply.

Checks run in the contract's order: bank (404) -> size (413) -> signature (401) -> body (400) ->
duplicate or conflict (200 / 409) -> accepted (201). Every delivery leaves one WebhookDelivery row;
an accepted one is committed in the same transaction as its event and its effect, so a 201 or 200 is
only answered for what is durably stored.
"""

import datetime
import functools
import hashlib
import hmac
import json
import logging
import re
import time
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import pycountry
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from stdnum import iban as iban_number
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.pk import cnic as cnic_number

from config.db import retry_if_stale
from payments.models import (
    Bank,
    BankEvent,
    PurposeCode,
    Receipt,
    WebhookDelivery,
)
from payments.services.banks import (
    AccountConflict,
    account_close,
    account_open,
    bank_credentials,
)
from payments.services.receipts import receipt_record, receipt_reverse
from payments.services.remittance_insert import remittance_insert_new

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
SIGNATURE_TOLERANCE_SECONDS = 300
KARACHI = zoneinfo.ZoneInfo("Asia/Karachi")
EVENT_TYPES = ("account.opened", "account.closed", "remittance.credited", "remittance.reversed")

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
DECIMAL_RE = re.compile(r"^-?\d+(\.\d+)?$")
HEX64_RE = re.compile(r"^[0-9a-fA-F]{64}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
SURROGATE_RE = re.compile("[\ud800-\udfff]")


def current_unix_time() -> float:
    """The portal's clock for the signature window (a function so tests can set it)."""
    return time.time()


def karachi_today() -> datetime.date:
    return timezone.now().astimezone(KARACHI).date()


@dataclass
class DeliveryResult:
    status: int
    body: dict


@dataclass
class Event:
    id: str
    type: str
    created: datetime.datetime
    data: dict  # canonical form: what "identical" compares
    purpose_code: PurposeCode | None = None


class EventConflict(Exception):
    pass


@dataclass
class _Errors:
    fields: dict[str, list[str]] = field(default_factory=dict)

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)


# --- signature ------------------------------------------------------------------------------------


def signature_verify(*, header: str, body: bytes, secrets: list[str], now: float) -> str:
    """Return a WebhookDelivery.Verdict for ``header`` over ``body``.

    Authentic when t is within 300 s of ``now`` (inclusive) and any v1 matches HMAC-SHA256 of
    ``<t>.<body>`` under any of ``secrets``; digests compared case-insensitively in constant time.
    """
    Verdict = WebhookDelivery.Verdict
    if not header:
        return Verdict.MISSING
    timestamp, digests = None, []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            return Verdict.MALFORMED
        if key == "t":
            if timestamp is not None or not value.isdigit() or len(value) > 12:
                return Verdict.MALFORMED
            timestamp = value
        elif key == "v1":
            if not HEX64_RE.match(value):
                return Verdict.MALFORMED
            digests.append(value.lower().encode())
    if timestamp is None or not digests:
        return Verdict.MALFORMED
    if abs(int(now) - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        return Verdict.STALE
    signed = timestamp.encode() + b"." + body
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
        for digest in digests:
            matched |= hmac.compare_digest(expected, digest)
    return Verdict.VALID if matched else Verdict.MISMATCH


def signature_header_for(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The X-Bank-Signature a bank would send (tests, the demo and banks' integration guides)."""
    t = int(current_unix_time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


# --- validation -----------------------------------------------------------------------------------


def _string(errors, obj, key, path, *, max_length, required=True, min_length=1) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            errors.add(path, "This field is required.")
        return None
    value = obj[key]
    if not isinstance(value, str):
        errors.add(path, "Must be a string.")
        return None
    if "\x00" in value or SURROGATE_RE.search(value):
        # Neither fits in PostgreSQL text: refuse here rather than fail in the database.
        errors.add(path, "Must not contain NUL or unpaired surrogate characters.")
        return None
    if not (min_length <= len(value) <= max_length):
        errors.add(path, f"Must be {min_length}-{max_length} characters.")
        return None
    return value


def _decimal(errors, obj, key, path, *, places, required=True, positive=False) -> Decimal | None:
    raw = _string(errors, obj, key, path, max_length=40, required=required)
    if raw is None:
        return None
    if not DECIMAL_RE.match(raw):
        errors.add(path, 'Must be a decimal number written as a string, e.g. "1250.00".')
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        errors.add(path, "Must be a decimal number.")
        return None
    if -value.as_tuple().exponent > places:
        errors.add(path, f"At most {places} decimal places.")
        return None
    if value.adjusted() >= 15:
        errors.add(path, "Too large.")
        return None
    if positive and value <= 0:
        errors.add(path, "Must be greater than 0.")
        return None
    if value < 0:
        errors.add(path, "Must not be negative.")
        return None
    return value


def _date(errors, obj, key, path) -> datetime.date | None:
    raw = _string(errors, obj, key, path, max_length=10)
    if raw is None:
        return None
    try:
        if not DATE_RE.match(raw):
            raise ValueError
        return datetime.date.fromisoformat(raw)
    except ValueError:
        errors.add(path, "Must be a date, YYYY-MM-DD.")
        return None


@functools.lru_cache(maxsize=65_536)
def _iban_compact(raw: str) -> str | None:
    """python-stdnum's validated IBAN, or None when it is not valid. Kept per process: a
    freelancer's account receives remittance after remittance, and the validation (country
    tables, the mod-97 check) was the costliest part of parsing a delivery."""
    try:
        return iban_number.validate(raw)
    except StdnumError:
        return None


def _iban(errors, obj, key, path) -> str | None:
    raw = _string(errors, obj, key, path, max_length=42)
    if raw is None:
        return None
    value = _iban_compact(raw)
    if value is None:
        errors.add(path, "Not a valid IBAN.")
        return None
    if not value.startswith("PK"):
        errors.add(path, "Must be a Pakistani IBAN (PK...).")
        return None
    return value


def _currency(errors, obj, key, path) -> str | None:
    raw = _string(errors, obj, key, path, max_length=3)
    if raw is None:
        return None
    if not CURRENCY_RE.match(raw) or pycountry.currencies.get(alpha_3=raw) is None:
        errors.add(path, "Not an ISO 4217 currency code.")
        return None
    return raw


def _country(errors, obj, key, path) -> str | None:
    raw = _string(errors, obj, key, path, max_length=2)
    if raw is None:
        return None
    if not COUNTRY_RE.match(raw) or pycountry.countries.get(alpha_2=raw) is None:
        errors.add(path, "Not an ISO 3166-1 alpha-2 country code.")
        return None
    return raw


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _validate_account_opened(errors, data) -> dict:
    iban = _iban(errors, data, "iban", "data.iban")
    currency = _currency(errors, data, "currency", "data.currency")
    cnic = None
    raw = _string(errors, data, "cnic", "data.cnic", max_length=15)
    if raw is not None:
        try:
            cnic = cnic_number.validate(raw)
        except StdnumError:
            errors.add("data.cnic", "Not a valid CNIC.")
    opened_on = _date(errors, data, "opened_on", "data.opened_on")
    return {
        "iban": iban,
        "currency": currency,
        "cnic": cnic,
        "opened_on": opened_on.isoformat() if opened_on else None,
    }


def _validate_account_closed(errors, data) -> dict:
    iban = _iban(errors, data, "iban", "data.iban")
    closed_on = _date(errors, data, "closed_on", "data.closed_on")
    return {"iban": iban, "closed_on": closed_on.isoformat() if closed_on else None}


def _validate_remittance_credited(
    errors, data, *, check_purpose: bool
) -> tuple[dict, PurposeCode | None]:
    reference = _string(errors, data, "reference", "data.reference", max_length=64)
    iban = _iban(errors, data, "iban", "data.iban")
    amount = _decimal(errors, data, "amount", "data.amount", places=2, positive=True)
    currency = _currency(errors, data, "currency", "data.currency")
    usd_amount = _decimal(
        errors,
        data,
        "usd_amount",
        "data.usd_amount",
        places=2,
        positive=True,
        required=currency is not None and currency != "USD",
    )
    if currency == "USD" and amount is not None:
        if usd_amount is None and "usd_amount" not in errors.fields:
            usd_amount = amount
        elif usd_amount is not None and usd_amount != amount:
            errors.add("data.usd_amount", "Must equal amount for a USD receipt.")
    pkr_rate = _decimal(errors, data, "pkr_rate", "data.pkr_rate", places=6, positive=True)
    value_date = _date(errors, data, "value_date", "data.value_date")
    if value_date is not None and value_date > karachi_today() + datetime.timedelta(days=1):
        errors.add("data.value_date", "Must not be more than 1 day after today (Asia/Karachi).")
    purpose = None
    code = _string(errors, data, "purpose_code", "data.purpose_code", max_length=8)
    if code is not None and check_purpose:
        purpose = PurposeCode.objects.filter(code=code).first()
        if purpose is None:
            errors.add("data.purpose_code", "Unknown purpose code.")
        elif purpose.retired:
            errors.add("data.purpose_code", "This purpose code is retired.")
            purpose = None
    retained = Decimal("0.00")
    if data.get("retained_amount") is not None:
        retained = _decimal(errors, data, "retained_amount", "data.retained_amount", places=2)
        if retained is not None and amount is not None and retained > amount:
            errors.add("data.retained_amount", "Must not exceed amount.")
    tax = Decimal("0.00")
    if data.get("tax_withheld_pkr") is not None:
        tax = _decimal(errors, data, "tax_withheld_pkr", "data.tax_withheld_pkr", places=2)
    remitter = data.get("remitter")
    name = country = None
    if remitter is None:
        errors.add("data.remitter", "This field is required.")
    elif not isinstance(remitter, dict):
        errors.add("data.remitter", "Must be an object with name and country.")
    else:
        name = _string(errors, remitter, "name", "data.remitter.name", max_length=200)
        country = _country(errors, remitter, "country", "data.remitter.country")
    canonical = {
        "reference": reference,
        "iban": iban,
        "amount": _money(amount) if amount is not None else None,
        "currency": currency,
        "usd_amount": _money(usd_amount) if usd_amount is not None else None,
        "pkr_rate": f"{pkr_rate:.6f}" if pkr_rate is not None else None,
        "value_date": value_date.isoformat() if value_date else None,
        "purpose_code": code,
        "retained_amount": _money(retained) if retained is not None else None,
        "tax_withheld_pkr": _money(tax) if tax is not None else None,
        "remitter": {"name": name, "country": country},
    }
    return canonical, purpose


def _validate_remittance_reversed(errors, data) -> dict:
    reference = _string(errors, data, "reference", "data.reference", max_length=64)
    reversed_on = _date(errors, data, "reversed_on", "data.reversed_on")
    reason = _string(
        errors, data, "reason", "data.reason", max_length=300, required=False, min_length=0
    )
    return {
        "reference": reference,
        "reversed_on": reversed_on.isoformat() if reversed_on else None,
        "reason": reason or "",
    }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def event_parse(
    *, body: bytes, check_purpose: bool = True
) -> tuple[Event | None, dict[str, list[str]]]:
    """Parse and validate a delivery's body; return (event, {}) or (None, field errors).

    With ``check_purpose=False`` a remittance's purpose code is not looked up (no query; the
    event's ``purpose_code`` stays None): for a caller whose statement checks it itself."""
    errors = _Errors()
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, {"body": [f"Not valid UTF-8 JSON: {exc}"[:200]]}
    if not isinstance(payload, dict):
        return None, {"body": ["Must be a JSON object."]}
    event_id = _string(errors, payload, "id", "id", max_length=64)
    event_type = _string(errors, payload, "type", "type", max_length=64)
    if event_type is not None and event_type not in EVENT_TYPES:
        errors.add("type", f"Unknown type; one of {', '.join(EVENT_TYPES)}.")
        event_type = None
    created = None
    raw_created = _string(errors, payload, "created", "created", max_length=40)
    if raw_created is not None:
        try:
            if not RFC3339_RE.match(raw_created):
                raise ValueError
            created = datetime.datetime.fromisoformat(raw_created.upper().replace(" ", "T"))
        except ValueError:
            errors.add("created", "Must be an RFC 3339 timestamp.")
    data = payload.get("data")
    if data is None:
        errors.add("data", "This field is required.")
    elif not isinstance(data, dict):
        errors.add("data", "Must be an object.")
    canonical, purpose = {}, None
    if isinstance(data, dict) and event_type is not None:
        if event_type == "account.opened":
            canonical = _validate_account_opened(errors, data)
        elif event_type == "account.closed":
            canonical = _validate_account_closed(errors, data)
        elif event_type == "remittance.credited":
            canonical, purpose = _validate_remittance_credited(
                errors, data, check_purpose=check_purpose
            )
        else:
            canonical = _validate_remittance_reversed(errors, data)
    if errors.fields:
        return None, errors.fields
    return Event(event_id, event_type, created, canonical, purpose), {}


# --- applying -------------------------------------------------------------------------------------


def _receipt_canonical(receipt: Receipt) -> dict:
    return {
        "reference": receipt.reference,
        "iban": receipt.iban,
        "amount": _money(receipt.amount),
        "currency": receipt.currency,
        "usd_amount": _money(receipt.usd_amount),
        "pkr_rate": f"{receipt.pkr_rate:.6f}",
        "value_date": receipt.value_date.isoformat(),
        "purpose_code": PurposeCode.objects.values_list("code", flat=True).get(
            pk=receipt.purpose_code_id
        ),
        "retained_amount": _money(receipt.retained_amount),
        "tax_withheld_pkr": _money(receipt.tax_withheld_pkr),
        "remitter": {"name": receipt.remitter_name, "country": receipt.remitter_country},
    }


def _apply(bank: Bank, event: Event) -> str:
    """Apply an event; return BankEvent.Outcome. Raises EventConflict."""
    data = event.data
    applied, duplicate = BankEvent.Outcome.APPLIED, BankEvent.Outcome.DUPLICATE
    if event.type == "remittance.credited":
        receipt, created = receipt_record(
            source=Receipt.Source.BANK,
            bank=bank,
            reference=data["reference"],
            iban=data["iban"],
            amount=Decimal(data["amount"]),
            currency=data["currency"],
            usd_amount=Decimal(data["usd_amount"]),
            pkr_rate=Decimal(data["pkr_rate"]),
            value_date=datetime.date.fromisoformat(data["value_date"]),
            purpose_code=event.purpose_code,
            retained_amount=Decimal(data["retained_amount"]),
            tax_withheld_pkr=Decimal(data["tax_withheld_pkr"]),
            remitter_name=data["remitter"]["name"],
            remitter_country=data["remitter"]["country"],
        )
        if created:
            return applied
        if _receipt_canonical(receipt) != data:
            raise EventConflict(
                f"reference {data['reference']} is already recorded with different fields"
            )
        return duplicate
    if event.type == "remittance.reversed":
        _, created = receipt_reverse(
            source=Receipt.Source.BANK,
            bank=bank,
            reference=data["reference"],
            reversed_on=datetime.date.fromisoformat(data["reversed_on"]),
            reason=data["reason"],
        )
        return applied if created else duplicate
    try:
        if event.type == "account.opened":
            _, created = account_open(
                bank=bank,
                iban=data["iban"],
                currency=data["currency"],
                cnic=data["cnic"],
                opened_on=datetime.date.fromisoformat(data["opened_on"]),
            )
        else:
            created = account_close(
                bank=bank,
                iban=data["iban"],
                closed_on=datetime.date.fromisoformat(data["closed_on"]),
            )
    except AccountConflict as exc:
        raise EventConflict(str(exc)) from exc
    return applied if created else duplicate


def _truncated(body: bytes, limit: int | None) -> tuple[str, bool]:
    # PostgreSQL text cannot hold NUL: the log keeps U+FFFD in its place.
    if limit is not None and len(body) > limit:
        return body[:limit].decode("utf-8", "replace").replace("\x00", "\ufffd"), True
    return body.decode("utf-8", "replace").replace("\x00", "\ufffd"), False


def _body_columns(
    meta: dict, body: bytes | None, *, full_body: bool = False, keep_body: bool = True
) -> dict:
    """A delivery-log row's body, body_truncated and body_sha256. Bodies of unauthenticated
    deliveries (404, 413, 401) are not kept, only their length and SHA-256 (the contract: nothing
    but the rejected delivery's metadata); bodies of authentic but rejected ones (400) are cut to
    REJECTED_BODY_LIMIT."""
    raw = body or b""
    text, truncated = "", bool(raw)
    if keep_body:
        text, truncated = _truncated(
            raw, None if full_body else WebhookDelivery.REJECTED_BODY_LIMIT
        )
    return {
        "body": text,
        "body_truncated": truncated or (meta.get("content_length") or 0) > len(raw),
        "body_sha256": hashlib.sha256(raw).hexdigest() if body is not None else "",
    }


def _record(
    meta: dict, body: bytes | None, *, full_body: bool = False, keep_body: bool = True, **fields
) -> WebhookDelivery:
    """One delivery-log row (its body as ``_body_columns`` keeps it)."""
    return WebhookDelivery.objects.create(
        received_at=timezone.now(),
        **_body_columns(meta, body, full_body=full_body, keep_body=keep_body),
        **meta,
        **fields,
    )


def bank_delivery_receive(
    *,
    bank_code: str,
    body: bytes | None,
    content_length: int | None,
    signature_header: str,
    content_type: str = "",
    user_agent: str = "",
    remote_addr: str = "",
) -> DeliveryResult:
    """Handle one delivery to the bank webhook and record it; return the response to send.

    ``body`` is None when the declared length already exceeds the limit (it was not read). Never
    raises for anything a bank can send; a 201/200 is returned only after the commit. Concurrent
    deliveries of the same event store it once (unique constraints on BankEvent and Receipt, and a
    lock on the business key); an IntegrityError from a racing delivery is re-classified as a
    duplicate or a conflict.
    """
    Outcome, Verdict = WebhookDelivery.Outcome, WebhookDelivery.Verdict
    meta = {
        "bank_code": bank_code[:32],
        "signature_header": signature_header[:600],
        "content_type": content_type[:100],
        "content_length": content_length,
        "user_agent": user_agent[:200],
        "remote_addr": remote_addr[:64],
    }
    bank, secrets = bank_credentials(code=bank_code)
    if bank is None:
        _record(meta, body, keep_body=False, outcome=Outcome.UNKNOWN_BANK, response_status=404)
        return DeliveryResult(404, {"error": "unknown_bank"})
    meta["bank"] = bank
    if body is None or len(body) > MAX_BODY_BYTES:
        _record(meta, body, keep_body=False, outcome=Outcome.TOO_LARGE, response_status=413)
        return DeliveryResult(413, {"error": "too_large"})
    verdict = signature_verify(
        header=signature_header, body=body, secrets=secrets, now=current_unix_time()
    )
    if verdict != Verdict.VALID:
        detail = {
            Verdict.MISSING: "X-Bank-Signature header is missing",
            Verdict.MALFORMED: "X-Bank-Signature header is malformed",
            Verdict.STALE: "timestamp is outside the 300 second window",
            Verdict.MISMATCH: "no signature matches an active secret",
        }[verdict]
        _record(
            meta,
            body,
            keep_body=False,
            signature_verdict=verdict,
            outcome=Outcome.SIGNATURE,
            response_status=401,
            detail=detail,
        )
        return DeliveryResult(401, {"error": "signature", "detail": detail})
    meta["signature_verdict"] = verdict
    # On PostgreSQL a new remittance is recorded by one statement that checks the purpose code
    # itself; whatever it does not record is answered by the general path below.
    one_statement = connection.vendor == "postgresql"
    event, errors = event_parse(body=body, check_purpose=not one_statement)
    if one_statement and (event is None or event.type == "remittance.credited"):
        if event is not None:
            new_meta = {**meta, "event_id": event.id, "event_type": event.type}
            result = _guarded(
                new_meta, body, lambda: _store_new_remittance(bank, event, new_meta, body)
            )
            if result is not None:
                return result
        event, errors = event_parse(body=body)
    if event is None:
        _record(
            meta,
            body,
            outcome=Outcome.INVALID,
            response_status=400,
            detail=json.dumps(errors)[:2000],
        )
        return DeliveryResult(400, {"error": "invalid", "fields": errors})
    meta["event_id"], meta["event_type"] = event.id, event.type
    return _guarded(meta, body, lambda: _store(bank, event, meta, body))


def _guarded(meta: dict, body: bytes, store) -> DeliveryResult | None:
    """Run ``store()``; a database failure is recorded in the delivery log, and answered 503
    (SQLite busy: the bank retries) or raised (500, the bank retries)."""
    Outcome = WebhookDelivery.Outcome
    try:
        return store()
    except OperationalError as exc:
        # SQLite's write lock still taken after the 20 s busy timeout: ask the bank to retry
        # rather than fail with a 500. Nothing of the event was committed.
        if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
            _record_failure(meta, body, Outcome.ERROR, 500, repr(exc))
            raise
        _record_failure(meta, body, Outcome.BUSY, 503, str(exc))
        return DeliveryResult(503, {"error": "busy", "detail": "database busy, retry later"})
    except Exception as exc:
        # Kept for the audit trail (and replay by hand); the bank retries on the 500.
        _record_failure(meta, body, Outcome.ERROR, 500, repr(exc))
        raise


def _record_failure(meta: dict, body: bytes, outcome: str, status: int, detail: str) -> None:
    try:
        _record(
            meta,
            body,
            full_body=True,
            outcome=outcome,
            response_status=status,
            detail=detail[:2000],
        )
    except DatabaseError:
        logger.exception("could not record a failed bank webhook delivery")


def _store_new_remittance(
    bank: Bank, event: Event, meta: dict, body: bytes
) -> DeliveryResult | None:
    """PostgreSQL: record a new remittance, its event and its delivery in one statement and answer
    201, or a byte-for-byte redelivery of a stored event with 200; None for anything else (the
    statement wrote nothing, and ``_store`` decides)."""
    delivery = {
        key: meta[key]
        for key in (
            "bank_code",
            "remote_addr",
            "signature_header",
            "content_type",
            "content_length",
            "user_agent",
        )
    }
    delivery.update(_body_columns(meta, body, full_body=True))
    # A duplicate's log row keeps the body as ``_record`` keeps it: cut at the rejected-body
    # limit, so it differs from the accepted row's only past that limit.
    if len(body) > WebhookDelivery.REJECTED_BODY_LIMIT:
        duplicate = _body_columns(meta, body)
        delivery["duplicate_body"] = duplicate["body"]
        delivery["duplicate_body_truncated"] = duplicate["body_truncated"]

    def insert():
        with transaction.atomic():
            return remittance_insert_new(
                bank_id=bank.pk,
                event_id=event.id,
                created=event.created,
                data=event.data,
                now=timezone.now(),
                delivery=delivery,
                # The block holds nothing else: outside any transaction (a request) the COMMIT
                # goes in the statement's round trip.
                commit=True,
            )

    try:
        # No health check round trip first: the statement is idempotent (a second run after a
        # broken connection finds the event it stored, if it was stored, and answers 200).
        outcome = retry_if_stale(insert)
    except IntegrityError:
        # A writer that does not take the receipt key's lock recorded the reference: nothing of
        # this delivery was committed, and the general path answers.
        return None
    if outcome.receipt_id is not None:
        return DeliveryResult(201, {"status": "accepted", "id": event.id})
    if outcome.duplicate:
        return DeliveryResult(200, {"status": "duplicate", "id": event.id})
    return None


def _store(bank: Bank, event: Event, meta: dict, body: bytes) -> DeliveryResult:
    Outcome = WebhookDelivery.Outcome
    for attempt in range(3):
        try:
            with transaction.atomic():
                outcome = _apply(bank, event)
                delivery = _record(
                    meta,
                    body,
                    full_body=True,
                    outcome=Outcome.ACCEPTED
                    if outcome == BankEvent.Outcome.APPLIED
                    else Outcome.DUPLICATE,
                    response_status=201 if outcome == BankEvent.Outcome.APPLIED else 200,
                )
                BankEvent.objects.create(
                    bank=bank,
                    event_id=event.id,
                    type=event.type,
                    created=event.created,
                    data=event.data,
                    outcome=outcome,
                    delivery=delivery,
                )
            if outcome == BankEvent.Outcome.APPLIED:
                return DeliveryResult(201, {"status": "accepted", "id": event.id})
            return DeliveryResult(200, {"status": "duplicate", "id": event.id})
        except EventConflict as exc:
            return _answer_conflict(meta, body, str(exc))
        except IntegrityError:
            # Most often: this event id is already stored (by an earlier or a concurrent delivery,
            # committed by now since the unique index made us wait for it).
            stored = (
                BankEvent.objects.filter(bank=bank, event_id=event.id)
                .values_list("type", "data")
                .first()
            )
            if stored is None:
                if attempt == 2:
                    raise
                continue
            if stored[0] == event.type and stored[1] == event.data:
                _record(meta, body, outcome=Outcome.DUPLICATE, response_status=200)
                return DeliveryResult(200, {"status": "duplicate", "id": event.id})
            return _answer_conflict(
                meta, body, f"event id {event.id} was already used for different content"
            )
    raise AssertionError("unreachable")


def _answer_conflict(meta: dict, body: bytes, detail: str) -> DeliveryResult:
    _record(
        meta, body, outcome=WebhookDelivery.Outcome.CONFLICT, response_status=409, detail=detail
    )
    return DeliveryResult(409, {"error": "conflict", "detail": detail})


def webhook_deliveries_prune(*, days: int | None = None, batch: int = 10_000) -> int:
    """Delete records of rejected deliveries (every outcome but accepted and duplicate) received
    more than ``days`` ago (settings.BANK_WEBHOOK_REJECTED_RETENTION_DAYS, default 30), in batches.
    Idempotent; returns how many rows were deleted. Accepted deliveries are kept: they are the audit
    trail of what each bank sent."""
    from django.conf import settings

    days = (
        days if days is not None else getattr(settings, "BANK_WEBHOOK_REJECTED_RETENTION_DAYS", 30)
    )
    cutoff = timezone.now() - datetime.timedelta(days=days)
    kept = [WebhookDelivery.Outcome.ACCEPTED, WebhookDelivery.Outcome.DUPLICATE]
    deleted = 0
    while True:
        ids = list(
            WebhookDelivery.objects.filter(received_at__lt=cutoff)
            .exclude(outcome__in=kept)
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += WebhookDelivery.objects.filter(id__in=ids).delete()[0]
