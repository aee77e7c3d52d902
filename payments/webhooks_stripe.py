"""POST /api/v1/webhooks/stripe/: Stripe's signed events, stored before they are trusted."""

import json
import logging

import stripe
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.services.stripe_events import (
    InvalidEvent,
    stripe_event_apply,
    stripe_event_store,
    stripe_signature_verify,
)

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 512 * 1024  # Stripe events are far smaller


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Verify the signature (400 and nothing stored when it fails), store the event once by id,
    apply it, and answer 200. An application error is kept on the stored event for the sweep and
    the admin replay; Stripe gets 200 because the event is durably stored."""
    if len(request.body) > MAX_BODY_BYTES:
        return JsonResponse({"error": "too_large"}, status=413)
    try:
        stripe_signature_verify(
            payload=request.body,
            header=request.headers.get("Stripe-Signature"),
            secret=settings.STRIPE_WEBHOOK_SECRET,
        )
    except stripe.SignatureVerificationError as exc:
        logger.warning(
            "stripe webhook rejected: %s (%d bytes from %s)",
            str(exc)[:200],
            len(request.body),
            request.META.get("REMOTE_ADDR"),
        )
        return JsonResponse({"error": "signature", "detail": str(exc)[:200]}, status=400)
    try:
        body = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "invalid", "fields": {"body": ["Not JSON."]}}, status=400)
    try:
        event, created = stripe_event_store(body=body)
    except InvalidEvent as exc:
        return JsonResponse({"error": "invalid", "fields": exc.fields}, status=400)
    event = stripe_event_apply(event_pk=event.pk)
    return JsonResponse(
        {
            "status": event.status,
            "id": event.event_id,
            "duplicate": not created,
            "verdict": event.verdict,
        },
        status=200,
    )
