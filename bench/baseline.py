"""The bare baseline of the ingestion benchmark: check the HMAC, insert one row, answer 201.

It reads the same ``X-Bank-Signature: t=<unix>,v1=<hex>`` header as the contract and signs
``<t>.`` + body with HMAC-SHA256, so its cost is the floor any real webhook pays on the same
server settings: Django's middleware, one HMAC, one INSERT and its commit.
"""

import hashlib
import hmac
import json
import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS bench_baseline_receipt (
    id bigserial PRIMARY KEY,
    event_id varchar(64) NOT NULL,
    body text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)
"""


def _signature_ok(header: str, body: bytes) -> bool:
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    digests = [v.lower() for k, v in parts if k == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not digests:
        return False
    if abs(time.time() - int(stamps[0])) > 300:
        return False
    key = settings.BENCH_BASELINE_SECRET.encode()
    expected = hmac.new(key, stamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, d) for d in digests)


@csrf_exempt
@require_POST
def baseline_webhook(request: HttpRequest) -> JsonResponse:
    body = request.body
    if not _signature_ok(request.headers.get("X-Bank-Signature", ""), body):
        return JsonResponse({"error": "signature"}, status=401)
    try:
        event_id = str(json.loads(body)["id"])[:64]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "invalid"}, status=400)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_baseline_receipt (event_id, body) VALUES (%s, %s)",
            [event_id, body.decode("utf-8", "replace")],
        )
    return JsonResponse({"status": "accepted", "id": event_id}, status=201)
