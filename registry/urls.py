from django.urls import path

from registry import apis, views

app_name = "registry"

urlpatterns = [
    path(
        "api/v1/statistics/monthly/",
        apis.MonthlyStatisticsApi.as_view(),
        name="statistics-monthly",
    ),
    path(
        "api/v1/statistics/fiscal-years/",
        apis.FiscalYearStatisticsApi.as_view(),
        name="statistics-fiscal-years",
    ),
    path(
        "api/v1/statistics/registrations/",
        apis.RegistrationStatisticsApi.as_view(),
        name="statistics-registrations",
    ),
    path("statistics/", views.statistics_page, name="statistics"),
]
