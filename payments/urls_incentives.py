from django.urls import path

from payments import apis_incentives, views_incentives

urlpatterns = [
    path("incentives/", views_incentives.incentives_overview, name="incentives"),
    path("api/v1/incentives/", apis_incentives.IncentiveListApi.as_view(), name="api-incentives"),
    path(
        "api/v1/incentives/payout-account/",
        apis_incentives.PayoutAccountApi.as_view(),
        name="api-incentives-payout-account",
    ),
]
