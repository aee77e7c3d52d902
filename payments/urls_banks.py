from django.urls import path

from payments import webhooks

urlpatterns = [
    path("api/v1/webhooks/banks/<str:bank_code>/", webhooks.bank_webhook, name="bank-webhook"),
]
