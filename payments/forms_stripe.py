"""Forms for the invoice portal; validation of business rules stays in the services."""

from decimal import Decimal

from django import forms

from freelancers.models import ServiceCategory
from payments.models import Invoice, PurposeCode


class InvoiceForm(forms.ModelForm):
    amount = forms.DecimalField(max_digits=18, decimal_places=2, min_value=Decimal("0.01"))
    purpose_code = forms.ModelChoiceField(
        queryset=PurposeCode.objects.filter(retired=False, is_it=True),
        help_text="The central bank purpose code for the service.",
    )
    service_category = forms.ModelChoiceField(
        queryset=ServiceCategory.objects.all(), required=False
    )

    class Meta:
        model = Invoice
        fields = [
            "client_name",
            "client_email",
            "client_country",
            "description",
            "amount",
            "currency",
            "service_category",
            "purpose_code",
            "due_date",
        ]
        widgets = {
            "due_date": forms.DateInput(attrs={"type": "date"}),
            "description": forms.Textarea(attrs={"rows": 3}),
            "client_country": forms.TextInput(attrs={"maxlength": 2, "placeholder": "US"}),
        }
