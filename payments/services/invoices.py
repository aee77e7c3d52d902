"""Invoices paid through Stripe: create, send (Checkout Session), void, mark paid, refund.

Money is Decimal in the invoice currency; Stripe's integer minor units are converted exactly
(every supported currency has two decimal places). Where a USD or PKR equivalent is estimated, the
rounding rule is ROUND_HALF_UP to the cent (USD) or to 6 places (rate).
"""

import datetime
from decimal import ROUND_HALF_UP, Decimal

import pycountry
import stripe
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from freelancers.models import Freelancer, ServiceCategory
from payments.models import Invoice, PurposeCode, Receipt
from payments.models.stripe import INVOICE_CURRENCIES
from payments.services.receipts import receipt_record, receipt_reverse

CENT = Decimal("0.01")
# Indicative rates, used only when Stripe's balance transaction (the real settlement amount) is not
# in the event: they value a Stripe receipt "in transit", which never counts nationally; the bank
# remittance that carries the payout brings the bank's real rate.
INDICATIVE_USD_PER_UNIT = {"USD": Decimal("1"), "EUR": Decimal("1.08"), "GBP": Decimal("1.27")}
INDICATIVE_PKR_PER_USD = Decimal("280.000000")
MAX_INVOICE_AMOUNT = Decimal("999999.99")  # Stripe Checkout's per-payment ceiling in practice


class InvoiceError(Exception):
    """A business rule refused the change. ``field`` names the offending input, if any."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class StripeNotConfigured(InvoiceError):
    """STRIPE_API_KEY is not set: invoices work, payments cannot be taken."""


def stripe_configured() -> bool:
    return bool(settings.STRIPE_API_KEY)


def _http_client() -> stripe.HTTPClient | None:
    """The SDK's HTTP client; tests replace this function with a recording fake."""
    return None


def stripe_client() -> stripe.StripeClient:
    """A StripeClient for the configured key. Raises StripeNotConfigured without a key."""
    if not stripe_configured():
        raise StripeNotConfigured("Stripe is not configured on this portal (no STRIPE_API_KEY).")
    http_client = _http_client()
    if http_client is not None:
        return stripe.StripeClient(
            settings.STRIPE_API_KEY, http_client=http_client, max_network_retries=0
        )
    return stripe.StripeClient(settings.STRIPE_API_KEY, max_network_retries=2)


def minor_to_decimal(amount_minor: int) -> Decimal:
    """Stripe minor units to a Decimal amount (exact for two-decimal currencies)."""
    return (Decimal(int(amount_minor)) / 100).quantize(CENT)


def indicative_usd(amount: Decimal, currency: str) -> Decimal:
    """USD equivalent at the indicative rate, rounded half up to the cent."""
    return (amount * INDICATIVE_USD_PER_UNIT[currency.upper()]).quantize(CENT, ROUND_HALF_UP)


# --- create / send / void ------------------------------------------------------------------------


def invoice_create(
    *,
    freelancer: Freelancer,
    client_name: str,
    client_email: str,
    client_country: str,
    description: str,
    amount: Decimal,
    currency: str,
    purpose_code: PurposeCode,
    due_date: datetime.date,
    service_category: ServiceCategory | None = None,
) -> Invoice:
    """Create a draft invoice for an approved freelancer.

    Raises InvoiceError (with ``field``) when the freelancer is not approved or an input is
    invalid. Not idempotent: each call creates an invoice.
    """
    if freelancer.status != Freelancer.Status.APPROVED:
        raise InvoiceError("Only an approved freelancer can issue invoices.")
    amount = Decimal(amount)
    if amount <= 0 or amount > MAX_INVOICE_AMOUNT:
        raise InvoiceError(
            f"Enter an amount between 0.01 and {MAX_INVOICE_AMOUNT}.", field="amount"
        )
    if amount != amount.quantize(CENT):
        raise InvoiceError("Use at most two decimal places.", field="amount")
    currency = currency.upper()
    if currency not in dict(INVOICE_CURRENCIES):
        raise InvoiceError("Currency must be USD, EUR or GBP.", field="currency")
    country = (client_country or "").upper()
    if pycountry.countries.get(alpha_2=country) is None:
        raise InvoiceError("Enter a two-letter ISO country code.", field="client_country")
    if country == "PK":
        raise InvoiceError("The client must be abroad (not PK).", field="client_country")
    if purpose_code.retired:
        raise InvoiceError("This purpose code is retired.", field="purpose_code")
    if due_date < timezone.localdate():
        raise InvoiceError("The due date is in the past.", field="due_date")
    return Invoice.objects.create(
        freelancer=freelancer,
        client_name=client_name.strip(),
        client_email=client_email.strip(),
        client_country=country,
        description=description.strip(),
        amount=amount,
        currency=currency,
        purpose_code=purpose_code,
        service_category=service_category,
        due_date=due_date,
    )


def _checkout_params(invoice: Invoice) -> dict:
    base = settings.PORTAL_BASE_URL.rstrip("/")
    pay_url = base + reverse("invoices:invoice-pay", args=[invoice.public_token])
    return {
        "mode": "payment",
        "client_reference_id": str(invoice.pk),
        "customer_email": invoice.client_email,
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": invoice.currency.lower(),
                    "unit_amount": invoice.amount_minor,
                    "product_data": {
                        "name": f"{invoice.number} from {invoice.freelancer}",
                        "description": invoice.description[:500],
                    },
                },
            }
        ],
        "metadata": {"invoice_id": str(invoice.pk)},
        "payment_intent_data": {
            "description": invoice.number,
            "metadata": {"invoice_id": str(invoice.pk)},
        },
        "success_url": pay_url + "?paid=1",
        "cancel_url": pay_url,
    }


def checkout_idempotency_key(invoice: Invoice) -> str:
    """The same invoice and attempt always give the same key, so a retry reuses the session."""
    return f"pseb-invoice-{invoice.pk}-checkout-{invoice.checkout_attempt}"


def invoice_send(*, invoice: Invoice, client: stripe.StripeClient | None = None) -> Invoice:
    """Create the invoice's Stripe Checkout Session (unless a live one exists) and open it.

    Idempotent: the Checkout call carries an idempotency key derived from the invoice id and
    attempt number, so a retry after a time-out gets the same session from Stripe, and a second
    call on an open invoice with a live session changes nothing. The Stripe call is made outside
    any transaction; the result is saved under a row lock.
    Raises InvoiceError for an invoice that is paid, refunded or void, StripeNotConfigured without
    an API key, and stripe.StripeError when Stripe refuses.
    """
    invoice = Invoice.objects.select_related("freelancer").get(pk=invoice.pk)
    if invoice.status not in (Invoice.Status.DRAFT, Invoice.Status.OPEN):
        raise InvoiceError(f"A {invoice.get_status_display().lower()} invoice cannot be sent.")
    if invoice.checkout_session_id and not _session_expired(invoice):
        if invoice.status == Invoice.Status.DRAFT:
            Invoice.objects.filter(pk=invoice.pk, status=Invoice.Status.DRAFT).update(
                status=Invoice.Status.OPEN, sent_at=timezone.now()
            )
        invoice.refresh_from_db()
        return invoice
    if invoice.checkout_session_id:  # expired: a new attempt gets a new key and session
        Invoice.objects.filter(pk=invoice.pk).update(checkout_attempt=invoice.checkout_attempt + 1)
        invoice.refresh_from_db()
    client = client or stripe_client()
    options: dict = {"idempotency_key": checkout_idempotency_key(invoice)}
    connected = getattr(invoice.freelancer, "stripe_account", None)
    if connected is not None:
        options["stripe_account"] = connected.account_id
    session = client.v1.checkout.sessions.create(
        params=_checkout_params(invoice), options=options
    ).to_dict()
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status not in (Invoice.Status.DRAFT, Invoice.Status.OPEN):
            return locked  # paid or voided meanwhile; the unused session expires by itself
        locked.checkout_session_id = session["id"]
        locked.checkout_url = session.get("url") or ""
        expires_at = session.get("expires_at")
        locked.checkout_expires_at = (
            datetime.datetime.fromtimestamp(int(expires_at), tz=datetime.UTC)
            if expires_at
            else None
        )
        locked.status = Invoice.Status.OPEN
        locked.sent_at = locked.sent_at or timezone.now()
        locked.save()
    return locked


def _session_expired(invoice: Invoice) -> bool:
    return bool(invoice.checkout_expires_at and invoice.checkout_expires_at <= timezone.now())


def invoice_void(*, invoice: Invoice, client: stripe.StripeClient | None = None) -> Invoice:
    """Void a draft or open invoice; an open one's Checkout Session is expired at Stripe first so
    the client can no longer pay it.

    Idempotent (voiding a void invoice returns it). Raises InvoiceError for a paid or refunded
    invoice, or when Stripe refuses to expire the session (for example, it was just paid).
    """
    invoice = Invoice.objects.select_related("freelancer").get(pk=invoice.pk)
    if invoice.status == Invoice.Status.VOID:
        return invoice
    if invoice.status not in (Invoice.Status.DRAFT, Invoice.Status.OPEN):
        raise InvoiceError(f"A {invoice.get_status_display().lower()} invoice cannot be voided.")
    if invoice.checkout_session_id and stripe_configured() and not _session_expired(invoice):
        client = client or stripe_client()
        options: dict = {}
        connected = getattr(invoice.freelancer, "stripe_account", None)
        if connected is not None:
            options["stripe_account"] = connected.account_id
        try:
            client.v1.checkout.sessions.expire(invoice.checkout_session_id, options=options)
        except stripe.InvalidRequestError as exc:
            raise InvoiceError(
                "Stripe could not close the payment page; the client may have just paid. "
                f"({exc.user_message or exc})"
            ) from exc
    with transaction.atomic():
        updated = Invoice.objects.filter(
            pk=invoice.pk, status__in=[Invoice.Status.DRAFT, Invoice.Status.OPEN]
        ).update(status=Invoice.Status.VOID, voided_at=timezone.now())
    invoice.refresh_from_db()
    if not updated and invoice.status != Invoice.Status.VOID:
        raise InvoiceError("The invoice was paid while it was being voided.")
    return invoice


# --- the ledger ----------------------------------------------------------------------------------


def stripe_receipt_record(
    *,
    freelancer: Freelancer,
    reference: str,
    amount: Decimal,
    currency: str,
    usd_amount: Decimal,
    pkr_rate: Decimal,
    value_date: datetime.date,
    purpose_code: PurposeCode,
    remitter_name: str = "",
    remitter_country: str = "",
) -> tuple[Receipt, bool]:
    """Record a Stripe payment in the receipt ledger, once per payment intent.

    A thin adapter over ``receipt_record``, the one ingestion path for every source: idempotent
    under the partial unique constraint ``receipt_unique_stripe_reference`` (a second or concurrent
    call returns the stored receipt and ``created=False``), and ``receipts_changed`` is sent inside
    the transaction when the ledger changes.
    """
    return receipt_record(
        source=Receipt.Source.STRIPE,
        bank=None,
        reference=reference,
        amount=amount,
        currency=currency.upper(),
        usd_amount=usd_amount,
        pkr_rate=pkr_rate,
        value_date=value_date,
        purpose_code=purpose_code,
        remitter_name=remitter_name[:200],
        remitter_country=remitter_country[:2],
        freelancer=freelancer,
    )


def invoice_mark_paid(
    *,
    invoice_id: int,
    payment_intent_id: str,
    amount_minor: int,
    currency: str,
    paid_at: datetime.datetime,
    livemode: bool,
    usd_amount: Decimal | None = None,
) -> tuple[Invoice, bool]:
    """Mark an invoice paid by a Stripe payment intent and record its Stripe receipt.

    Idempotent: the same payment intent again changes nothing (returns created=False). Locks the
    invoice row. A payment always wins over a void (money received is never dropped). Raises
    InvoiceError when the amount or currency differ from the invoice, or when the invoice was
    already paid by another payment intent (to be refunded by hand).
    """
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.payment_intent_id == payment_intent_id and invoice.receipt_id:
            return invoice, False
        if invoice.payment_intent_id and invoice.payment_intent_id != payment_intent_id:
            raise InvoiceError(
                f"{invoice.number} is already paid by {invoice.payment_intent_id}; "
                f"{payment_intent_id} is a second payment to refund."
            )
        if currency.upper() != invoice.currency or int(amount_minor) != invoice.amount_minor:
            raise InvoiceError(
                f"Paid {amount_minor} {currency.upper()} minor units, but {invoice.number} is "
                f"for {invoice.amount_minor} {invoice.currency}."
            )
        amount = minor_to_decimal(amount_minor)
        if usd_amount is None:
            usd_amount = indicative_usd(amount, invoice.currency)
        pkr_rate = (INDICATIVE_PKR_PER_USD * usd_amount / amount).quantize(
            Decimal("0.000001"), ROUND_HALF_UP
        )
        receipt, _ = stripe_receipt_record(
            freelancer=invoice.freelancer,
            reference=payment_intent_id,
            amount=amount,
            currency=invoice.currency,
            usd_amount=usd_amount,
            pkr_rate=pkr_rate,
            value_date=timezone.localdate(paid_at),
            purpose_code=invoice.purpose_code,
            remitter_name=invoice.client_name,
            remitter_country=invoice.client_country,
        )
        invoice.payment_intent_id = payment_intent_id
        invoice.receipt = receipt
        invoice.livemode = livemode
        invoice.paid_at = paid_at
        if invoice.status in (Invoice.Status.DRAFT, Invoice.Status.OPEN, Invoice.Status.VOID):
            invoice.status = Invoice.Status.PAID
        invoice.save()
    return invoice, True


def invoice_apply_refund(
    *, invoice_id: int, amount_refunded_minor: int, refunded_on: datetime.date
) -> Invoice:
    """Apply the charge's cumulative refunded amount (Stripe's ``amount_refunded``).

    Monotonic and idempotent: the refunded total only grows, so redelivered or out-of-order refund
    events cannot lower it or add up twice. A full refund reverses the Stripe receipt
    (``reversed_on``) and sends ``receipts_changed``; a partial one keeps it and records the
    refunded amount on the invoice. Locks the invoice row. Raises InvoiceError for an unpaid
    invoice or a refund larger than the invoice.
    """
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.receipt_id is None:
            raise InvoiceError(f"{invoice.number} is not paid; nothing to refund.")
        refunded = minor_to_decimal(amount_refunded_minor)
        if refunded > invoice.amount:
            raise InvoiceError(f"Refund {refunded} exceeds {invoice.number}'s {invoice.amount}.")
        if refunded <= invoice.amount_refunded:
            return invoice
        invoice.amount_refunded = refunded
        if refunded == invoice.amount:
            invoice.status = Invoice.Status.REFUNDED
            receipt_reverse(
                source=Receipt.Source.STRIPE,
                bank=None,
                reference=invoice.receipt.reference,
                reversed_on=refunded_on,
                reason="Stripe refund",
            )
        else:
            invoice.status = Invoice.Status.PARTIALLY_REFUNDED
        invoice.save(update_fields=["amount_refunded", "status"])
    return invoice
