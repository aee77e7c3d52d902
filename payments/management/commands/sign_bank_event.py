import json
import uuid

from django.core.management.base import BaseCommand, CommandError

from payments.demo import make_iban
from payments.services.bank_webhooks import karachi_today, signature_header_for


class Command(BaseCommand):
    help = (
        "Print a curl command that posts a signed sample remittance.credited event to the bank "
        "webhook (signatures are valid for 300 seconds). For trying the webhook by hand."
    )

    def add_arguments(self, parser):
        parser.add_argument("code", help="bank code, e.g. HBL")
        parser.add_argument("--secret", required=True, help="one of the bank's active secrets")
        parser.add_argument("--iban", default=make_iban("HABB", 10_000))
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--body", help="a JSON event to sign instead of the sample")

    def handle(self, *args, code, secret, iban, url, body, **options):
        if body:
            try:
                json.loads(body)
            except ValueError as exc:
                raise CommandError(f"--body is not JSON: {exc}") from exc
        else:
            event_id = f"evt_{uuid.uuid4().hex[:16]}"
            body = json.dumps(
                {
                    "id": event_id,
                    "type": "remittance.credited",
                    "created": f"{karachi_today()}T09:00:00+05:00",
                    "data": {
                        "reference": f"FT{uuid.uuid4().hex[:12].upper()}",
                        "iban": iban,
                        "amount": "1250.00",
                        "currency": "USD",
                        "pkr_rate": "278.50",
                        "value_date": str(karachi_today()),
                        "purpose_code": "9182",
                        "retained_amount": "250.00",
                        "tax_withheld_pkr": "2785.00",
                        "remitter": {"name": "Acme Inc", "country": "US"},
                    },
                },
                separators=(",", ":"),
            )
        header = signature_header_for(secret=secret, body=body.encode())
        self.stdout.write(
            f"curl -i -X POST {url}/api/v1/webhooks/banks/{code}/ "
            f"-H 'Content-Type: application/json' -H 'X-Bank-Signature: {header}' "
            f"--data-raw '{body}'"
        )
