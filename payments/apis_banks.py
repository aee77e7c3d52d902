"""Earnings API: the signed-in freelancer's own accounts and statements, nobody else's."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from payments.selectors_banks import (
    freelancer_accounts,
    freelancer_months,
    freelancer_statement,
    month_from_text,
)
from payments.views_banks import signed_in_freelancer

MONEY = {"max_digits": 18, "decimal_places": 2}


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

    @extend_schema(
        responses=inline_serializer(
            "EarningsAccountList", fields={"results": AccountSerializer(many=True)}
        ),
        summary="My dollar accounts",
        operation_id="v1_earnings_accounts_list",
    )
    def get(self, request):
        accounts = freelancer_accounts(freelancer=signed_in_freelancer(request))
        return Response({"results": AccountSerializer(accounts, many=True).data})


class EarningsMonthsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=inline_serializer(
            "EarningsMonthList", fields={"results": MonthSerializer(many=True)}
        ),
        summary="My totals per month",
        operation_id="v1_earnings_months_list",
    )
    def get(self, request):
        months = freelancer_months(freelancer=signed_in_freelancer(request))
        rows = [{"month": f"{month:%Y-%m}", **vars(totals)} for month, totals in months]
        return Response({"results": MonthSerializer(rows, many=True).data})


class EarningsStatementApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=StatementSerializer, summary="My statement for one month (YYYY-MM)")
    def get(self, request, month: str):
        freelancer = signed_in_freelancer(request)
        start = month_from_text(month)
        if start is None:
            raise ValidationError({"month": ["Must be a month, YYYY-MM."]})
        statement = freelancer_statement(freelancer=freelancer, month=start)
        data = {"month": month, "totals": vars(statement.totals), "receipts": statement.lines}
        return Response(StatementSerializer(data).data)
