"""API for freelancers: their incentives (every scheme: qualified or not, why, how much, the
receipts that counted) and their PKR payout account. Freelancers only."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from payments.models import IncentiveScheme, PayoutAccount
from payments.selectors_incentives import freelancer_incentives
from payments.services.incentives import payout_account_set


class IsFreelancer(permissions.BasePermission):
    message = "Only a registered freelancer can see incentives."

    def has_permission(self, request, view) -> bool:
        return bool(
            request.user
            and request.user.is_authenticated
            and getattr(request.user, "freelancer", None) is not None
        )


class ReceiptOut(serializers.Serializer):
    reference = serializers.CharField()
    value_date = serializers.DateField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    currency = serializers.CharField()
    retained_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    purpose_code = serializers.CharField()
    converted_usd = serializers.DecimalField(max_digits=18, decimal_places=2)
    converted_pkr = serializers.DecimalField(max_digits=18, decimal_places=2)


class SchemeOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=IncentiveScheme.Kind.choices)
    fiscal_year = serializers.CharField()
    status = serializers.ChoiceField(choices=IncentiveScheme.Status.choices)
    rate_percent = serializers.DecimalField(max_digits=9, decimal_places=4)
    basis = serializers.ChoiceField(choices=IncentiveScheme.Basis.choices)
    min_proceeds_usd = serializers.DecimalField(max_digits=18, decimal_places=2)
    growth_required_percent = serializers.DecimalField(
        max_digits=9, decimal_places=4, allow_null=True
    )
    cap_per_freelancer_pkr = serializers.DecimalField(
        max_digits=18, decimal_places=2, allow_null=True
    )


class FiguresOut(serializers.Serializer):
    receipts_counted = serializers.IntegerField()
    proceeds_usd = serializers.DecimalField(max_digits=18, decimal_places=2)
    proceeds_pkr = serializers.DecimalField(max_digits=18, decimal_places=2)
    previous_proceeds_usd = serializers.DecimalField(max_digits=18, decimal_places=2)
    growth_percent = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    basis_pkr = serializers.DecimalField(max_digits=18, decimal_places=2, required=False)
    raw_amount_pkr = serializers.DecimalField(max_digits=18, decimal_places=2, required=False)
    capped_amount_pkr = serializers.DecimalField(max_digits=18, decimal_places=2, required=False)
    awarded_amount_pkr = serializers.DecimalField(max_digits=18, decimal_places=2, required=False)


class IncentiveOut(serializers.Serializer):
    scheme = SchemeOut()
    provisional = serializers.BooleanField(help_text="computed, not yet approved")
    qualified = serializers.BooleanField()
    reason_code = serializers.CharField(help_text="exclusion reason; empty when qualified")
    reason = serializers.CharField()
    figures = FiguresOut(allow_null=True)
    payout_status = serializers.CharField(help_text='"", "in disbursement" or "paid"')
    receipts = ReceiptOut(many=True)


class IncentiveListOut(serializers.Serializer):
    results = IncentiveOut(many=True)


def _figures(item: dict):
    return item["entitlement"] or item["exclusion"]


class IncentiveListApi(APIView):
    permission_classes = [IsFreelancer]

    @extend_schema(responses=IncentiveListOut, summary="My incentives, scheme by scheme")
    def get(self, request):
        items = freelancer_incentives(freelancer=request.user.freelancer)
        data = [{**item, "figures": _figures(item)} for item in items]
        return Response(IncentiveListOut({"results": data}).data)


class PayoutAccountApi(APIView):
    """The freelancer's PKR-linked account that incentives are paid into."""

    permission_classes = [IsFreelancer]

    class InputSerializer(serializers.Serializer):
        iban = serializers.CharField(max_length=34)
        account_title = serializers.CharField(max_length=200)

    class OutputSerializer(serializers.Serializer):
        iban = serializers.CharField()
        account_title = serializers.CharField()
        updated_at = serializers.DateTimeField()

    @extend_schema(responses=OutputSerializer, summary="My payout account")
    def get(self, request):
        account = PayoutAccount.objects.filter(freelancer=request.user.freelancer).first()
        if account is None:
            return Response({"detail": "No payout account yet."}, status=404)
        return Response(self.OutputSerializer(account).data)

    @extend_schema(
        request=InputSerializer, responses=OutputSerializer, summary="Set my payout account"
    )
    def put(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            account = payout_account_set(freelancer=request.user.freelancer, **data.validated_data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict)
        return Response(self.OutputSerializer(account).data)
