"""Correctly signed bank webhook bodies (contract: shared/contract/bank-webhooks.md)."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from bench import datagen

BANK_CODE = "BENCH"
BANK_SECRET = "bench-bank-secret"
IT_CODES = ["9102", "9181", "9182", "9183", "9184", "9185"]
COUNTRIES = ["US", "GB", "AE", "DE", "CA", "AU", "SA", "NL"]


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """``X-Bank-Signature``: t=<unix>,v1=<hex HMAC-SHA256 of "<t>." + body>."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def karachi_today() -> datetime.date:
    return datetime.datetime.now(ZoneInfo("Asia/Karachi")).date()


@dataclass
class Event:
    reference: str
    body: bytes


def remittance(
    rng: random.Random,
    event_id: str,
    reference: str,
    iban: str,
    value_date: datetime.date,
    amount_cents: int | None = None,
) -> bytes:
    cents = amount_cents if amount_cents is not None else rng.randrange(5_000, 500_000)
    amount = f"{cents // 100}.{cents % 100:02d}"
    data = {
        "reference": reference,
        "iban": iban,
        "amount": amount,
        "currency": "USD",
        "pkr_rate": "278.50",
        "value_date": value_date.isoformat(),
        "purpose_code": IT_CODES[rng.randrange(len(IT_CODES))],
        "remitter": {"name": f"Client {rng.randrange(1000)}", "country": rng.choice(COUNTRIES)},
    }
    if rng.random() < 0.2:
        data["retained_amount"] = f"{cents // 200}.{(cents // 2) % 100:02d}"
    event = {
        "id": event_id,
        "type": "remittance.credited",
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": data,
    }
    return json.dumps(event, separators=(",", ":")).encode()


@dataclass
class Plan:
    """What each wrk thread sends, in order: lines[thread] = [(reference, signature, body)]."""

    path: Path
    threads: int
    lines: list[list[tuple[str, str, bytes]]]

    def sent(self, per_thread_sent: dict[int, int]) -> list[tuple[str, str, bytes]]:
        out = []
        for t, lines in enumerate(self.lines):
            out.extend(lines[: min(len(lines), per_thread_sent.get(t, 0))])
        return out

    def maybe_unsent(self, per_thread_sent: dict[int, int], n: int) -> list[tuple[str, str, bytes]]:
        """Requests wrk generated that may not have reached the server: each thread's last ``n``
        (in flight when wrk stopped) and first one (wrk calls request() once on thread 0's
        Lua state to verify the script, and that request is never sent)."""
        out = []
        for t, lines in enumerate(self.lines):
            k = min(len(lines), per_thread_sent.get(t, 0))
            out.extend(lines[:1] if k else [])
            out.extend(lines[max(1, k - n) : k])
        return out


def build_plan(
    path: Path,
    run_id: str,
    count: int,
    threads: int,
    redelivery_share: float,
    freelancers: int,
    secret: str = BANK_SECRET,
    seed: int = 1,
) -> Plan:
    """``count`` requests for ``threads`` wrk threads; a share are redeliveries of earlier events.

    A redelivery repeats an event the same thread sent earlier, byte for byte (same id, same
    body, same signature), as a bank retrying a delivery does. 70% of remittances go to IBANs
    of loaded freelancers' accounts, the rest to accounts the portal does not know.
    """
    rng = random.Random(seed)
    today = karachi_today()
    ibans = datagen.freelancer_ibans(freelancers) if freelancers else [""]
    stamp = int(time.time())
    lines: list[list[tuple[str, str, bytes]]] = [[] for _ in range(threads)]
    file_lines = []
    n = 0
    for i in range(count):
        t = i % threads
        own = lines[t]
        if own and rng.random() < redelivery_share:
            line = own[rng.randrange(len(own))]
        else:
            n += 1
            reference = f"{run_id}-{n:08d}"
            if freelancers and rng.random() < 0.7:
                iban = ibans[rng.randrange(1, freelancers + 1)]
            else:
                iban = datagen.iban("ZZZZ", 8_000_000 + n)
            body = remittance(rng, f"evt-{reference}", reference, iban, today)
            line = (reference, sign(secret, body, stamp), body)
        own.append(line)
        file_lines.append(line[1] + "\t" + line[2].decode())
    path.write_text("\n".join(file_lines) + "\n")
    return Plan(path=path, threads=threads, lines=lines)
