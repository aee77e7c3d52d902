from django.urls import path

from payments import apis_banks, views_banks, webhooks

urlpatterns = [
    path("api/v1/webhooks/banks/<str:bank_code>/", webhooks.bank_webhook, name="bank-webhook"),
    path("earnings/", views_banks.earnings_index, name="earnings"),
    path("earnings/<str:month>/", views_banks.earnings_month, name="earnings-month"),
    path("earnings/<str:month>/csv/", views_banks.earnings_month_csv, name="earnings-month-csv"),
    path("earnings/<str:month>/pdf/", views_banks.earnings_month_pdf, name="earnings-month-pdf"),
    path(
        "api/v1/earnings/accounts/",
        apis_banks.EarningsAccountsApi.as_view(),
        name="api-earnings-accounts",
    ),
    path(
        "api/v1/earnings/months/",
        apis_banks.EarningsMonthsApi.as_view(),
        name="api-earnings-months",
    ),
    path(
        "api/v1/earnings/months/<str:month>/",
        apis_banks.EarningsStatementApi.as_view(),
        name="api-earnings-statement",
    ),
]
