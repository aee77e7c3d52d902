from django.urls import include, path

urlpatterns = [
    path("", include("payments.urls_banks")),
    path("", include("payments.urls_stripe")),
    path("", include("payments.urls_incentives")),
]
