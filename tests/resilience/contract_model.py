"""A small in-memory model of the bank-webhook contract, served over HTTP from a thread.

It exists to test the suite's own tools (generator, sender, resolver, reconciliation) without the
portal: if the generator's expectations disagree with a straightforward reading of the contract,
this model shows it. It validates only what the generator can get wrong; the portal's validation
is attacked by the fuzz tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPTIONAL_DEFAULTS = {"retained_amount": "0", "tax_withheld_pkr": "0"}
DECIMAL_FIELDS = {"amount", "usd_amount", "pkr_rate", "retained_amount", "tax_withheld_pkr"}


def canonical(event_type: str, data: dict) -> dict:
    out = {}
    for key, value in data.items():
        if key in DECIMAL_FIELDS:
            value = Decimal(value).normalize()
        elif key == "cnic":
            value = re.sub(r"\D", "", value)
        out[key] = value
    if event_type == "remittance.credited":
        for key, default in OPTIONAL_DEFAULTS.items():
            out.setdefault(key, Decimal(default).normalize())
        if data["currency"] == "USD":
            out.setdefault("usd_amount", Decimal(data["amount"]).normalize())
    return out


class ContractModel:
    def __init__(self, banks: dict[str, list[str]]):
        self.banks = banks
        self.lock = threading.Lock()
        self.events: dict[tuple[str, str], tuple[str, dict]] = {}
        self.receipts: dict[tuple[str, str], dict] = {}
        self.accounts: dict[str, dict] = {}
        self.closed: dict[str, str] = {}
        self.reversed: dict[tuple[str, str], str] = {}
        self.requests = 0

    def handle(self, bank: str, headers, body: bytes) -> tuple[int, dict]:
        self.requests += 1
        if bank not in self.banks:
            return 404, {"error": "unknown_bank"}
        if len(body) > 64 * 1024:
            return 413, {"error": "too_large"}
        header = headers.get("X-Bank-Signature") or ""
        parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
        if not parts or parts[0][0] != "t" or not parts[0][1].isdigit():
            return 401, {"error": "signature", "detail": "malformed"}
        t = int(parts[0][1])
        if abs(time.time() - t) > 300:
            return 401, {"error": "signature", "detail": "stale"}
        digests = [v.lower() for k, v in parts[1:] if k == "v1"]
        good = any(
            hmac.compare_digest(
                d, hmac.new(s.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
            )
            for d in digests
            for s in self.banks[bank]
        )
        if not good:
            return 401, {"error": "signature", "detail": "mismatch"}
        event = json.loads(body)
        event_id, event_type = event["id"], event["type"]
        data = canonical(event_type, event["data"])
        with self.lock:
            seen = self.events.get((bank, event_id))
            if seen is not None:
                if seen == (event_type, data):
                    return 200, {"status": "duplicate", "id": event_id}
                return 409, {"error": "conflict", "detail": "id"}
            if event_type == "remittance.credited":
                key = (bank, data["reference"])
                if key in self.receipts:
                    if self.receipts[key] == data:
                        return 200, {"status": "duplicate", "id": event_id}
                    return 409, {"error": "conflict", "detail": "reference"}
                self.receipts[key] = data
            elif event_type == "account.opened":
                held = self.accounts.get(data["iban"])
                if held is not None:
                    if held["cnic"] == data["cnic"]:
                        return 200, {"status": "duplicate", "id": event_id}
                    return 409, {"error": "conflict", "detail": "iban"}
                self.accounts[data["iban"]] = {**data, "bank": bank}
            elif event_type == "account.closed":
                self.closed[data["iban"]] = data["closed_on"]
            elif event_type == "remittance.reversed":
                key = (bank, data["reference"])
                if key in self.reversed:
                    return 200, {"status": "duplicate", "id": event_id}
                self.reversed[key] = data["reversed_on"]
            self.events[(bank, event_id)] = (event_type, data)
        return 201, {"status": "accepted", "id": event_id}


def serve(model: ContractModel) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's naming
            match = re.fullmatch(r"/api/v1/webhooks/banks/([A-Z0-9]{2,12})/", self.path)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if match is None:
                status, payload = 404, {"error": "unknown_bank"}
            else:
                status, payload = model.handle(match.group(1), self.headers, body)
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
