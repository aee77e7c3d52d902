"""Stripe webhook events: verify, store raw once by event id, then apply idempotently.

Store before trust: the verified event is committed first (``stripe_event_store``), then applied in
its own transaction (``stripe_event_apply``); a failure rolls back only the application and is
written to the event row (status, error, attempts) for the sweep or an admin replay.
"""

import datetime
import logging
import time
import traceback
from decimal import Decimal

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from payments.models import Invoice, StripeEvent
from payments.services.invoices import (
    InvoiceError,
    invoice_apply_refund,
    invoice_mark_paid,
    minor_to_decimal,
)
from payments.services.stripe_payouts import stripe_payout_record

logger = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_SECONDS = 300
MAX_APPLY_ATTEMPTS = 8


class InvalidEvent(ValueError):
    """The body is not a Stripe event; ``fields`` maps a field path to messages."""

    def __init__(self, fields: dict[str, list[str]]):
        super().__init__(str(fields))
        self.fields = fields


def stripe_signature_verify(
    *, payload: bytes, header: str | None, secret: str, now: float | None = None
) -> None:
    """Check a Stripe-Signature header with the stripe package's own check.

    The SDK skips the time check when no tolerance is given and accepts timestamps in the future,
    so this passes an explicit tolerance of 300 s and also rejects a timestamp more than 300 s
    ahead. Raises stripe.SignatureVerificationError.
    """
    try:
        payload_text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise stripe.SignatureVerificationError("Body is not UTF-8", header, "") from exc
    stripe.WebhookSignature.verify_header(
        payload_text, header, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
    )
    timestamp, _ = stripe.WebhookSignature._get_timestamp_and_signatures(
        header or "", stripe.WebhookSignature.EXPECTED_SCHEME
    )
    now = time.time() if now is None else now
    if timestamp > now + SIGNATURE_TOLERANCE_SECONDS:
        raise stripe.SignatureVerificationError(
            f"Timestamp {timestamp} is more than {SIGNATURE_TOLERANCE_SECONDS} s in the future",
            header,
            payload_text,
        )
    if timestamp < now - SIGNATURE_TOLERANCE_SECONDS:  # belt and braces: never tolerance=None
        raise stripe.SignatureVerificationError("Timestamp outside the tolerance zone", header, "")


def _validate_event(body: object) -> dict:
    if not isinstance(body, dict):
        raise InvalidEvent({"body": ["Expected a JSON object."]})
    errors: dict[str, list[str]] = {}
    if not isinstance(body.get("id"), str) or not body["id"] or len(body["id"]) > 255:
        errors["id"] = ["Expected the event id (a string)."]
    if body.get("object") != "event":
        errors["object"] = ['Expected "event".']
    if not isinstance(body.get("type"), str) or not body["type"] or len(body["type"]) > 100:
        errors["type"] = ["Expected the event type (a string)."]
    if not isinstance(body.get("created"), int) or isinstance(body.get("created"), bool):
        errors["created"] = ["Expected a Unix timestamp (integer)."]
    if not isinstance(body.get("livemode"), bool):
        errors["livemode"] = ["Expected true or false."]
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        errors["data.object"] = ["Expected an object."]
    if errors:
        raise InvalidEvent(errors)
    return body


def _payment_intent_of(body: dict) -> str:
    obj = body["data"]["object"]
    kind = obj.get("object")
    if kind == "payment_intent":
        value = obj.get("id")
    else:
        value = obj.get("payment_intent")
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def stripe_event_store(*, body: object) -> tuple[StripeEvent, bool]:
    """Store a verified event raw, once by Stripe's event id.

    Idempotent: the same event id again returns the stored row and ``created=False`` (the first
    stored payload is kept). Commits its own transaction so the raw event survives whatever
    happens while applying it. Raises InvalidEvent for a body that is not a Stripe event.
    """
    event = _validate_event(body)
    try:
        with transaction.atomic():
            return StripeEvent.objects.get_or_create(
                event_id=event["id"],
                defaults={
                    "type": event["type"],
                    "livemode": event["livemode"],
                    "account": str(event.get("account") or "")[:64],
                    "payment_intent_id": _payment_intent_of(event)[:64],
                    "created": datetime.datetime.fromtimestamp(event["created"], tz=datetime.UTC),
                    "payload": event,
                },
            )
    except IntegrityError:  # a concurrent delivery of the same event stored it first
        return StripeEvent.objects.get(event_id=event["id"]), False


class _Deferred(Exception):
    """The event refers to something not known yet; keep it and apply it later."""


class _Ignored(Exception):
    """The event is stored but has no effect (the message is the verdict)."""


def stripe_event_apply(*, event_pk: int) -> StripeEvent:
    """Apply a stored event once; safe to call any number of times, in any order of events.

    Locks the event row. An applied or ignored event is returned unchanged. Test-mode events on a
    live deployment (settings.STRIPE_LIVEMODE) are ignored: stored, never counted. An event about
    a payment not known yet (a refund before its payment) is deferred and re-applied when the
    payment arrives. Any error rolls back the application only, and is stored on the event
    (status failed, error, attempts) for the sweep or an admin replay; it never propagates.
    """
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if event.status in (StripeEvent.Status.APPLIED, StripeEvent.Status.IGNORED):
            return event
        event.attempts += 1
        try:
            with transaction.atomic():
                verdict = _apply(event)
            event.status, event.verdict, event.error = StripeEvent.Status.APPLIED, verdict, ""
            event.applied_at = timezone.now()
        except _Ignored as exc:
            event.status, event.verdict, event.error = StripeEvent.Status.IGNORED, str(exc), ""
            event.applied_at = timezone.now()
        except _Deferred as exc:
            event.status, event.verdict, event.error = StripeEvent.Status.DEFERRED, str(exc), ""
        except InvoiceError as exc:
            event.status, event.verdict = StripeEvent.Status.FAILED, exc.message[:300]
            event.error = exc.message
            logger.warning("stripe event %s failed: %s", event.event_id, exc.message)
        except Exception as exc:  # noqa: BLE001 - stored for replay, never lost
            event.status = StripeEvent.Status.FAILED
            event.verdict = f"{type(exc).__name__}: {exc}"[:300]
            event.error = traceback.format_exc()
            logger.exception("stripe event %s failed", event.event_id)
        event.save()
    return event


def stripe_event_replay(*, event_pk: int) -> StripeEvent:
    """Admin replay: put a failed or deferred event back to pending and apply it again."""
    StripeEvent.objects.filter(
        pk=event_pk, status__in=[StripeEvent.Status.FAILED, StripeEvent.Status.DEFERRED]
    ).update(status=StripeEvent.Status.PENDING)
    return stripe_event_apply(event_pk=event_pk)


def stripe_events_retry_pending(*, older_than_seconds: int = 60) -> int:
    """The sweep: apply events left pending (the request died), failed (fewer than
    MAX_APPLY_ATTEMPTS tries) or deferred. Safe to run twice; returns how many were applied."""
    cutoff = timezone.now() - datetime.timedelta(seconds=older_than_seconds)
    pks = list(
        StripeEvent.objects.filter(
            status__in=[
                StripeEvent.Status.PENDING,
                StripeEvent.Status.FAILED,
                StripeEvent.Status.DEFERRED,
            ],
            attempts__lt=MAX_APPLY_ATTEMPTS,
            received_at__lte=cutoff,
        )
        .order_by("id")
        .values_list("id", flat=True)[:1000]
    )
    return sum(stripe_event_apply(event_pk=pk).status == StripeEvent.Status.APPLIED for pk in pks)


# --- handlers ------------------------------------------------------------------------------------


def _apply(event: StripeEvent) -> str:
    if settings.STRIPE_LIVEMODE and not event.livemode:
        raise _Ignored("test-mode event on a live deployment: stored, never counted")
    handler = HANDLERS.get(event.type)
    if handler is None:
        raise _Ignored(f"no handler for {event.type}")
    return handler(event, event.payload["data"]["object"])


def _invoice_id(obj: dict) -> int | None:
    metadata = obj.get("metadata") or {}
    raw = metadata.get("invoice_id") or obj.get("client_reference_id")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _find_invoice(obj: dict, payment_intent_id: str) -> Invoice | None:
    if payment_intent_id:
        invoice = Invoice.objects.filter(payment_intent_id=payment_intent_id).first()
        if invoice is not None:
            return invoice
    invoice_id = _invoice_id(obj)
    if invoice_id is None:
        return None
    return Invoice.objects.filter(pk=invoice_id).first()


def _usd_from_balance_transaction(value: object) -> Decimal | None:
    """The USD settlement amount when the balance transaction is expanded in the event."""
    if isinstance(value, dict) and str(value.get("currency", "")).lower() == "usd":
        amount = value.get("amount")
        if isinstance(amount, int) and amount > 0:
            return minor_to_decimal(amount)
    return None


def _mark_paid(event, invoice, *, payment_intent_id, amount_minor, currency, usd=None) -> str:
    invoice, created = invoice_mark_paid(
        invoice_id=invoice.pk,
        payment_intent_id=payment_intent_id,
        amount_minor=amount_minor,
        currency=currency,
        paid_at=event.created,
        livemode=event.livemode,
        usd_amount=usd,
    )
    # Events about this payment that arrived first (a refund) can now be applied.
    deferred = StripeEvent.objects.filter(
        payment_intent_id=payment_intent_id, status=StripeEvent.Status.DEFERRED
    ).exclude(pk=event.pk)
    for pk in deferred.values_list("id", flat=True):
        stripe_event_apply(event_pk=pk)
    return f"{invoice.number} paid by {payment_intent_id}" + ("" if created else " (already)")


def _checkout_session_completed(event: StripeEvent, session: dict) -> str:
    if session.get("payment_status") != "paid":
        raise _Ignored(f"payment_status is {session.get('payment_status')!r}, not paid yet")
    payment_intent_id = _payment_intent_of(event.payload)
    if not payment_intent_id:
        raise _Ignored("session has no payment intent")
    invoice = _find_invoice(session, payment_intent_id)
    if invoice is None:
        raise _Ignored("no invoice for this session")
    return _mark_paid(
        event,
        invoice,
        payment_intent_id=payment_intent_id,
        amount_minor=session.get("amount_total") or 0,
        currency=str(session.get("currency") or ""),
    )


def _payment_intent_succeeded(event: StripeEvent, intent: dict) -> str:
    if intent.get("status") != "succeeded":
        raise _Ignored(f"payment intent status is {intent.get('status')!r}")
    invoice = _find_invoice(intent, intent["id"])
    if invoice is None:
        raise _Ignored("no invoice for this payment intent")
    usd = None
    charge = intent.get("latest_charge")
    if not isinstance(charge, dict):  # API versions before 2022-11-15 embed a charges list
        charges = (intent.get("charges") or {}).get("data") or []
        charge = charges[0] if charges and isinstance(charges[0], dict) else None
    if charge is not None:
        usd = _usd_from_balance_transaction(charge.get("balance_transaction"))
    return _mark_paid(
        event,
        invoice,
        payment_intent_id=intent["id"],
        amount_minor=intent.get("amount_received") or intent.get("amount") or 0,
        currency=str(intent.get("currency") or ""),
        usd=usd,
    )


def _charge_refunded(event: StripeEvent, charge: dict) -> str:
    payment_intent_id = _payment_intent_of(event.payload)
    invoice = _find_invoice(charge, payment_intent_id)
    if invoice is None or (invoice.receipt_id is None and not payment_intent_id):
        raise _Deferred(f"payment {payment_intent_id or charge.get('id')} not known yet")
    if invoice.receipt_id is None:
        # The refund arrived before the payment event; the charge itself proves the payment.
        if not (charge.get("paid") and charge.get("status") == "succeeded"):
            raise _Deferred("charge not succeeded; waiting for the payment event")
        _mark_paid(
            event,
            invoice,
            payment_intent_id=payment_intent_id,
            amount_minor=charge.get("amount") or 0,
            currency=str(charge.get("currency") or ""),
            usd=_usd_from_balance_transaction(charge.get("balance_transaction")),
        )
    amount_refunded = charge.get("amount_refunded")
    if not isinstance(amount_refunded, int) or amount_refunded < 0:
        raise InvoiceError(f"charge.amount_refunded is {amount_refunded!r}")
    invoice = invoice_apply_refund(
        invoice_id=invoice.pk,
        amount_refunded_minor=amount_refunded,
        refunded_on=timezone.localdate(event.created),
    )
    return f"{invoice.number} refunded {invoice.amount_refunded} {invoice.currency} in total"


def _payout_paid(event: StripeEvent, payout: dict) -> str:
    record, created = stripe_payout_record(
        payout=payout, account=event.account, livemode=event.livemode, paid_at=event.created
    )
    record.refresh_from_db()
    state = (
        f"matched to receipt {record.bank_receipt_id}" if record.bank_receipt_id else "unmatched"
    )
    return f"payout {record.payout_id} recorded{'' if created else ' (already)'}, {state}"


HANDLERS = {
    "checkout.session.completed": _checkout_session_completed,
    "checkout.session.async_payment_succeeded": _checkout_session_completed,
    "payment_intent.succeeded": _payment_intent_succeeded,
    "charge.refunded": _charge_refunded,
    "payout.paid": _payout_paid,
}
