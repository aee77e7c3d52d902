"""A stand-in for the Stripe API on 127.0.0.1, for the dj-stripe peer (stdlib only).

dj-stripe re-fetches the object of a payment event from Stripe's API before storing it (and looks
up the account of the API key once); this serves those GETs from Stripe's own fixtures
(shared/fixtures/stripe/fixtures3.json), with the requested id. Usage:
    python fake_stripe.py <port> <fixtures3.json>
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

RESOURCES: dict = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        parts = [p for p in urlparse(self.path).path.split("/") if p][1:]  # drop "v1"
        if parts == ["account"]:
            return self._send(200, RESOURCES["account"])
        if len(parts) == 1:
            return self._send(
                200, {"object": "list", "data": [], "has_more": False, "url": self.path}
            )
        *kind, object_id = parts
        name = ".".join(kind)
        name = name[:-1] if name.endswith("s") else name
        if name not in RESOURCES:
            return self._send(404, {"error": {"type": "invalid_request_error", "message": name}})
        return self._send(200, {**RESOURCES[name], "id": object_id})


def main() -> None:
    port, fixtures = int(sys.argv[1]), sys.argv[2]
    with open(fixtures) as f:
        RESOURCES.update(json.load(f)["resources"])
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
