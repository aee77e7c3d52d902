"""Web portal: a freelancer's invoices, and the client's public payment page."""

import stripe
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from freelancers.models import Freelancer
from payments.forms_stripe import InvoiceForm
from payments.models import Invoice
from payments.selectors_stripe import invoices_in_transit_totals
from payments.services.invoices import (
    InvoiceError,
    invoice_create,
    invoice_send,
    invoice_void,
    stripe_configured,
)


def _approved_freelancer(request: HttpRequest) -> Freelancer:
    freelancer = getattr(request.user, "freelancer", None)
    if freelancer is None or freelancer.status != Freelancer.Status.APPROVED:
        raise PermissionDenied("Invoices are for approved freelancers.")
    return freelancer


@login_required
def invoice_list(request: HttpRequest) -> HttpResponse:
    freelancer = _approved_freelancer(request)
    form = InvoiceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invoice = invoice_create(freelancer=freelancer, **form.cleaned_data)
        except InvoiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"{invoice.number} created as a draft.")
            return redirect("invoices:invoice-detail", pk=invoice.pk)
    invoices = (
        Invoice.objects.filter(freelancer=freelancer)
        .select_related("payout__bank_receipt")
        .order_by("-id")[:200]
    )
    return render(
        request,
        "payments/stripe/invoice_list.html",
        {
            "invoices": invoices,
            "form": form,
            "stripe_configured": stripe_configured(),
            "in_transit": invoices_in_transit_totals(freelancer=freelancer),
        },
    )


def _own_invoice(request: HttpRequest, pk: int) -> Invoice:
    freelancer = _approved_freelancer(request)
    return get_object_or_404(
        Invoice.objects.select_related("payout__bank_receipt", "purpose_code"),
        pk=pk,
        freelancer=freelancer,
    )


@login_required
def invoice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = _own_invoice(request, pk)
    return render(
        request,
        "payments/stripe/invoice_detail.html",
        {
            "invoice": invoice,
            "pay_url": request.build_absolute_uri(f"/pay/{invoice.public_token}/"),
            "stripe_configured": stripe_configured(),
        },
    )


@login_required
@require_POST
def invoice_send_view(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = _own_invoice(request, pk)
    try:
        invoice_send(invoice=invoice)
    except InvoiceError as exc:
        messages.error(request, exc.message)
    except stripe.StripeError as exc:
        messages.error(request, f"Stripe refused: {exc.user_message or 'please try again.'}")
    else:
        messages.success(request, f"{invoice.number} is open; send the client the payment link.")
    return redirect("invoices:invoice-detail", pk=pk)


@login_required
@require_POST
def invoice_void_view(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = _own_invoice(request, pk)
    try:
        invoice_void(invoice=invoice)
    except InvoiceError as exc:
        messages.error(request, exc.message)
    except stripe.StripeError as exc:
        messages.error(request, f"Stripe refused: {exc.user_message or 'please try again.'}")
    else:
        messages.success(request, f"{invoice.number} is void.")
    return redirect("invoices:invoice-detail", pk=pk)


def invoice_pay(request: HttpRequest, token: str) -> HttpResponse:
    """The client's page: the invoice and the Stripe button (no sign-in; the token is the key)."""
    invoice = get_object_or_404(
        Invoice.objects.select_related("freelancer").exclude(status=Invoice.Status.DRAFT),
        public_token=token,
    )
    return render(
        request,
        "payments/stripe/pay.html",
        {
            "invoice": invoice,
            "stripe_configured": stripe_configured(),
            "just_paid": request.GET.get("paid") == "1",
        },
    )


@require_POST
def invoice_pay_checkout(request: HttpRequest, token: str) -> HttpResponse:
    """The Stripe button: go to the invoice's Checkout Session (a fresh one if it expired)."""
    invoice = get_object_or_404(Invoice, public_token=token, status=Invoice.Status.OPEN)
    if not stripe_configured():
        messages.error(request, "Card payment is not available: Stripe is not configured.")
        return redirect("invoices:invoice-pay", token=token)
    try:
        invoice = invoice_send(invoice=invoice)
    except (InvoiceError, stripe.StripeError):
        messages.error(request, "Card payment is unavailable right now; please try again later.")
        return redirect("invoices:invoice-pay", token=token)
    if not invoice.checkout_url:
        return redirect("invoices:invoice-pay", token=token)
    return redirect(invoice.checkout_url)
