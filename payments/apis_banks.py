"""Earnings API: the signed-in freelancer's own accounts and statements, nobody else's."""

import datetime

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from freelancers.models import Freelancer
from payments.selectors_banks import freelancer_accounts, freelancer_months, freelancer_statement

MONEY = {"max_digits": 18, "decimal_places": 2}


def _freelancer(request) -> Freelancer:
    try:
        return request.user.freelancer
    except Freelancer.DoesNotExist as exc:
        raise PermissionDenied("Only a registered freelancer has earnings.") from exc


class AccountSerializer(serializers.Serializer):
    iban = serializers.CharField()
    bank = serializers.CharField(source="bank.code")
    currency = serializers.CharField()
    opened_on = serializers.DateField()
    closed_on = serializers.DateField(allow_null=True)


class TotalsSerializer(serializers.Serializer):
    receipts = serializers.IntegerField()
    usd_received = serializers.DecimalField(**MONEY)
    usd_retained = serializers.DecimalField(**MONEY)
    usd_converted = serializers.DecimalField(**MONEY)
    pkr_converted = serializers.DecimalField(**MONEY)
    tax_withheld_pkr = serializers.DecimalField(**MONEY)


class MonthSerializer(TotalsSerializer):
    month = serializers.CharField()


class LineSerializer(serializers.Serializer):
    reference = serializers.CharField()
    value_date = serializers.DateField()
    bank = serializers.CharField()
    amount = serializers.DecimalField(**MONEY)
    currency = serializers.CharField()
    usd_amount = serializers.DecimalField(**MONEY)
    retained_usd = serializers.DecimalField(**MONEY)
    converted_usd = serializers.DecimalField(**MONEY)
    pkr_rate = serializers.DecimalField(max_digits=18, decimal_places=6)
    converted_pkr = serializers.DecimalField(**MONEY)
    tax_withheld_pkr = serializers.DecimalField(**MONEY)
    purpose_code = serializers.CharField()
    remitter_country = serializers.CharField()
    reversed_on = serializers.DateField(allow_null=True)


class StatementSerializer(serializers.Serializer):
    month = serializers.CharField()
    totals = TotalsSerializer()
    receipts = LineSerializer(many=True)


class EarningsAccountsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=AccountSerializer(many=True), summary="My dollar accounts")
    def get(self, request):
        accounts = freelancer_accounts(freelancer=_freelancer(request))
        return Response({"results": AccountSerializer(accounts, many=True).data})


class EarningsMonthsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MonthSerializer(many=True), summary="My totals per month")
    def get(self, request):
        months = freelancer_months(freelancer=_freelancer(request))
        rows = [{"month": f"{month:%Y-%m}", **vars(totals)} for month, totals in months]
        return Response({"results": MonthSerializer(rows, many=True).data})


class EarningsStatementApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=StatementSerializer, summary="My statement for one month (YYYY-MM)")
    def get(self, request, month: str):
        freelancer = _freelancer(request)
        try:
            start = datetime.datetime.strptime(month, "%Y-%m").date()
        except ValueError as exc:
            raise ValidationError({"month": ["Must be a month, YYYY-MM."]}) from exc
        statement = freelancer_statement(freelancer=freelancer, month=start)
        data = {"month": month, "totals": vars(statement.totals), "receipts": statement.lines}
        return Response(StatementSerializer(data).data)
