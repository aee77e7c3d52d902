"""Inbound HTTP from banks: a thin view over payments.services.bank_webhooks."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from payments.services.bank_webhooks import MAX_BODY_BYTES, bank_delivery_receive


@csrf_exempt
def bank_webhook(request: HttpRequest, bank_code: str) -> JsonResponse:
    """POST /api/v1/webhooks/banks/<bank_code>/ (contract: bank-webhooks.md)."""
    if request.method != "POST":
        response = JsonResponse({"error": "method_not_allowed"}, status=405)
        response["Allow"] = "POST"
        return response
    try:
        content_length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        content_length = 0
    # Read at most one byte more than the limit straight from the stream: a large body is never
    # held in memory (request.body would read all of it).
    too_large = content_length > MAX_BODY_BYTES
    body = None if too_large else request.read(MAX_BODY_BYTES + 1)
    result = bank_delivery_receive(
        bank_code=bank_code,
        body=body,
        content_length=content_length,
        signature_header=request.META.get("HTTP_X_BANK_SIGNATURE", ""),
        content_type=request.META.get("CONTENT_TYPE", ""),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        remote_addr=request.META.get("REMOTE_ADDR", ""),
    )
    return JsonResponse(result.body, status=result.status)
