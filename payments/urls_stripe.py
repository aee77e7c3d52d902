"""Stripe and invoices: the webhook, the invoice API, the portal pages and the client's page."""

from django.urls import path

from payments import apis_stripe, views_stripe, webhooks_stripe

app_name = "invoices"

urlpatterns = [
    path("api/v1/webhooks/stripe/", webhooks_stripe.stripe_webhook, name="stripe-webhook"),
    path("api/v1/invoices/", apis_stripe.InvoiceListCreateApi.as_view(), name="api-invoices"),
    path(
        "api/v1/invoices/<int:pk>/",
        apis_stripe.InvoiceDetailApi.as_view(),
        name="api-invoice-detail",
    ),
    path(
        "api/v1/invoices/<int:pk>/send/",
        apis_stripe.InvoiceSendApi.as_view(),
        name="api-invoice-send",
    ),
    path(
        "api/v1/invoices/<int:pk>/void/",
        apis_stripe.InvoiceVoidApi.as_view(),
        name="api-invoice-void",
    ),
    path("invoices/", views_stripe.invoice_list, name="invoice-list"),
    path("invoices/<int:pk>/", views_stripe.invoice_detail, name="invoice-detail"),
    path("invoices/<int:pk>/send/", views_stripe.invoice_send_view, name="invoice-send"),
    path("invoices/<int:pk>/void/", views_stripe.invoice_void_view, name="invoice-void"),
    path("pay/<str:token>/", views_stripe.invoice_pay, name="invoice-pay"),
    path(
        "pay/<str:token>/checkout/", views_stripe.invoice_pay_checkout, name="invoice-pay-checkout"
    ),
]
