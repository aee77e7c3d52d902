"""The freelancer's incentives page: every scheme, qualified or not and why, with the receipts
that counted, and the form for the PKR payout account."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from payments.models import PayoutAccount
from payments.selectors_incentives import freelancer_incentives
from payments.services.incentives import payout_account_set


class PayoutAccountForm(forms.Form):
    iban = forms.CharField(label="IBAN of your PKR account", max_length=34)
    account_title = forms.CharField(label="Account title", max_length=200)


def _freelancer(request):
    freelancer = getattr(request.user, "freelancer", None)
    if freelancer is None:
        raise PermissionDenied("Only a registered freelancer has incentives.")
    return freelancer


@login_required
@require_http_methods(["GET", "POST"])
def incentives_overview(request):
    freelancer = _freelancer(request)
    account = PayoutAccount.objects.filter(freelancer=freelancer).first()
    initial = {"iban": account.iban, "account_title": account.account_title} if account else {}
    form = PayoutAccountForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            payout_account_set(freelancer=freelancer, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, "Your payout account was saved.")
            return redirect("incentives")
    return render(
        request,
        "payments/incentives/overview.html",
        {
            "items": freelancer_incentives(freelancer=freelancer),
            "account": account,
            "form": form,
        },
    )
