"""API: a freelancer's own invoices (/api/v1/invoices/). Thin: parse, call a service, render."""

import stripe
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from freelancers.models import Freelancer, ServiceCategory
from payments.models import Invoice, PurposeCode
from payments.models.stripe import INVOICE_CURRENCIES
from payments.services.invoices import InvoiceError, invoice_create, invoice_send, invoice_void


class IsApprovedFreelancer(BasePermission):
    message = "Invoices are for approved freelancers."

    def has_permission(self, request, view) -> bool:
        freelancer = getattr(request.user, "freelancer", None)
        return freelancer is not None and freelancer.status == Freelancer.Status.APPROVED


class InvoiceOutputSerializer(serializers.ModelSerializer):
    number = serializers.CharField(read_only=True)
    purpose_code = serializers.CharField(source="purpose_code.code")
    service_category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    pay_url = serializers.SerializerMethodField()
    in_transit = serializers.BooleanField(read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "client_name",
            "client_email",
            "client_country",
            "description",
            "amount",
            "currency",
            "service_category",
            "purpose_code",
            "due_date",
            "status",
            "amount_refunded",
            "pay_url",
            "in_transit",
            "sent_at",
            "paid_at",
            "voided_at",
            "created_at",
        ]

    def get_pay_url(self, invoice: Invoice) -> str | None:
        if invoice.status == Invoice.Status.DRAFT:
            return None
        return self.context["request"].build_absolute_uri(f"/pay/{invoice.public_token}/")


class InvoiceInputSerializer(serializers.Serializer):
    client_name = serializers.CharField(max_length=200)
    client_email = serializers.EmailField()
    client_country = serializers.CharField(min_length=2, max_length=2)
    description = serializers.CharField(max_length=2000)
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, min_value=0)
    currency = serializers.ChoiceField(choices=INVOICE_CURRENCIES)
    purpose_code = serializers.SlugRelatedField(
        slug_field="code", queryset=PurposeCode.objects.filter(retired=False)
    )
    service_category = serializers.SlugRelatedField(
        slug_field="slug", queryset=ServiceCategory.objects.all(), required=False, allow_null=True
    )
    due_date = serializers.DateField()


def _invoice_error(exc: InvoiceError) -> ValidationError:
    return ValidationError({exc.field or "non_field_errors": [exc.message]})


class InvoiceListCreateApi(generics.ListAPIView):
    """GET: the freelancer's own invoices, newest first (limit/offset pages). POST: a draft."""

    permission_classes = [IsAuthenticated, IsApprovedFreelancer]
    serializer_class = InvoiceOutputSerializer

    def get_queryset(self):
        return (
            Invoice.objects.filter(freelancer=self.request.user.freelancer)
            .select_related("purpose_code", "service_category")
            .order_by("-id")
        )

    @extend_schema(request=InvoiceInputSerializer, responses={201: InvoiceOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = InvoiceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            invoice = invoice_create(
                freelancer=request.user.freelancer, **serializer.validated_data
            )
        except InvoiceError as exc:
            raise _invoice_error(exc) from exc
        return Response(
            InvoiceOutputSerializer(invoice, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class _OwnInvoiceApi(APIView):
    permission_classes = [IsAuthenticated, IsApprovedFreelancer]

    def _invoice(self, request: Request, pk: int) -> Invoice:
        return get_object_or_404(Invoice, pk=pk, freelancer=request.user.freelancer)

    def _render(self, request: Request, invoice: Invoice) -> Response:
        invoice.refresh_from_db()
        return Response(InvoiceOutputSerializer(invoice, context={"request": request}).data)


class InvoiceDetailApi(_OwnInvoiceApi):
    @extend_schema(responses=InvoiceOutputSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return self._render(request, self._invoice(request, pk))


class InvoiceSendApi(_OwnInvoiceApi):
    @extend_schema(request=None, responses=InvoiceOutputSerializer)
    def post(self, request: Request, pk: int) -> Response:
        invoice = self._invoice(request, pk)
        try:
            invoice = invoice_send(invoice=invoice)
        except InvoiceError as exc:
            raise _invoice_error(exc) from exc
        except stripe.StripeError as exc:
            raise ValidationError({"stripe": [exc.user_message or "Stripe refused."]}) from exc
        return self._render(request, invoice)


class InvoiceVoidApi(_OwnInvoiceApi):
    @extend_schema(request=None, responses=InvoiceOutputSerializer)
    def post(self, request: Request, pk: int) -> Response:
        invoice = self._invoice(request, pk)
        try:
            invoice = invoice_void(invoice=invoice)
        except InvoiceError as exc:
            raise _invoice_error(exc) from exc
        except stripe.StripeError as exc:
            raise ValidationError({"stripe": [exc.user_message or "Stripe refused."]}) from exc
        return self._render(request, invoice)
