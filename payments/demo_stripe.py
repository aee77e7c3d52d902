"""Demo: invoices in every status for approved demo freelancers, made without Stripe keys.

Paid and refunded states go through the same services the webhook uses (with made-up
``pi_demo_…`` payment intents); one payout is matched to a bank remittance so the statement shows
which invoices a remittance settled. Idempotent and deterministic.
"""

import base64
import datetime
import hashlib
import hmac
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from freelancers.models import Freelancer
from payments.models import (
    DollarAccount,
    Invoice,
    PurposeCode,
    Receipt,
    StripeAccount,
    StripePayout,
)
from payments.services.invoices import invoice_apply_refund, invoice_mark_paid
from payments.services.stripe_payouts import stripe_payout_record

CLIENTS = [
    ("Globex Corporation", "ap@globex.example.com", "US"),
    ("Initech GmbH", "billing@initech.example.de", "DE"),
    ("Umbrella plc", "accounts@umbrella.example.co.uk", "GB"),
]
# (slug, status, amount, currency, days ago paid)
PLAN = [
    ("draft", Invoice.Status.DRAFT, "450.00", "USD", None),
    ("open", Invoice.Status.OPEN, "1200.00", "USD", None),
    ("paid-out", Invoice.Status.PAID, "800.00", "USD", 20),
    ("in-transit", Invoice.Status.PAID, "640.00", "EUR", 3),
    ("partly-refunded", Invoice.Status.PARTIALLY_REFUNDED, "1000.00", "GBP", 10),
    ("refunded", Invoice.Status.REFUNDED, "300.00", "USD", 9),
    ("void", Invoice.Status.VOID, "150.00", "USD", None),
]


def load_invoices(freelancers: list[Freelancer]) -> list[Invoice]:
    """Every status for the first approved freelancer, a draft and an open one for the next two."""
    approved = [f for f in freelancers if f.status == Freelancer.Status.APPROVED][:3]
    out: list[Invoice] = []
    for position, freelancer in enumerate(approved):
        plan = PLAN if position == 0 else PLAN[:2]
        for index, row in enumerate(plan):
            out.append(_invoice(freelancer, position, index, *row))
        if position == 0:
            _payout(freelancer)
    return out


def describe(invoices: list[Invoice]) -> str:
    """The line load_demo prints for newcomers."""
    open_ones = [i for i in invoices if i.status == Invoice.Status.OPEN]
    page = f" A client's payment page: /pay/{open_ones[0].public_token}/" if open_ones else ""
    return (
        f"Stripe invoices: {len(invoices)} in every status; sign in as freelancer1 and open "
        f"/invoices/ (no Stripe keys needed).{page}"
    )


def _demo_token(freelancer: Freelancer, slug: str) -> str:
    """Deterministic for a deployment, unguessable without its SECRET_KEY."""
    message = f"demo-invoice-{freelancer.pk}-{slug}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _invoice(freelancer, position, index, slug, status, amount, currency, days_ago) -> Invoice:
    name, email, country = CLIENTS[(position + index) % len(CLIENTS)]
    today = timezone.localdate()
    invoice, created = Invoice.objects.get_or_create(
        freelancer=freelancer,
        description=f"Demo invoice ({slug}): software development services",
        defaults={
            "client_name": name,
            "client_email": email,
            "client_country": country,
            "amount": Decimal(amount),
            "currency": currency,
            "purpose_code": PurposeCode.objects.get(code="9184"),
            "due_date": today + datetime.timedelta(days=30),
            "public_token": _demo_token(freelancer, slug),
        },
    )
    if not created:
        return invoice
    if status == Invoice.Status.OPEN:
        Invoice.objects.filter(pk=invoice.pk).update(status=status, sent_at=timezone.now())
    elif status == Invoice.Status.VOID:
        Invoice.objects.filter(pk=invoice.pk).update(status=status, voided_at=timezone.now())
    elif days_ago is not None:
        paid_at = timezone.now() - datetime.timedelta(days=days_ago)
        invoice_mark_paid(
            invoice_id=invoice.pk,
            payment_intent_id=f"pi_demo_{freelancer.pk}_{slug}",
            amount_minor=invoice.amount_minor,
            currency=currency,
            paid_at=paid_at,
            livemode=False,
        )
        refunded = {
            Invoice.Status.REFUNDED: invoice.amount_minor,
            Invoice.Status.PARTIALLY_REFUNDED: invoice.amount_minor // 4,
        }.get(status)
        if refunded:
            invoice_apply_refund(
                invoice_id=invoice.pk,
                amount_refunded_minor=refunded,
                refunded_on=(paid_at + datetime.timedelta(days=2)).date(),
            )
    invoice.refresh_from_db()
    return invoice


def _payout(freelancer: Freelancer) -> StripePayout | None:
    """A Stripe payout of the 'paid-out' invoice (less Stripe's fee) and the bank remittance that
    carried it to the freelancer's dollar account."""
    account = DollarAccount.objects.filter(freelancer=freelancer, currency="USD").first()
    if account is None:
        return None
    StripeAccount.objects.get_or_create(
        freelancer=freelancer,
        defaults={"account_id": f"acct_demo{freelancer.pk:06d}", "payout_account": account},
    )
    now = timezone.now()
    arrival = now - datetime.timedelta(days=14)
    amount = Decimal("776.50")  # 800.00 less Stripe's fee
    Receipt.objects.get_or_create(
        source=Receipt.Source.BANK,
        bank=account.bank,
        reference=f"DEMO-STRIPE-PAYOUT-{freelancer.pk:04d}",
        defaults={
            "iban": account.iban,
            "account": account,
            "freelancer": freelancer,
            "amount": amount,
            "currency": "USD",
            "usd_amount": amount,
            "pkr_rate": Decimal("278.500000"),
            "value_date": (arrival + datetime.timedelta(days=1)).date(),
            "purpose_code": PurposeCode.objects.get(code="9184"),
            "remitter_name": "Stripe Payments Europe Ltd",
            "remitter_country": "IE",
        },
    )
    payout, _ = stripe_payout_record(
        payout={
            "id": f"po_demo_{freelancer.pk:06d}",
            "object": "payout",
            "amount": int(amount * 100),
            "currency": "usd",
            "arrival_date": int(arrival.timestamp()),
            "created": int((now - datetime.timedelta(days=15)).timestamp()),
            "status": "paid",
        },
        account=f"acct_demo{freelancer.pk:06d}",
        livemode=False,
        paid_at=arrival,
    )
    return payout
