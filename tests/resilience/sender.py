"""Send deliveries the way a bank does: many connections at once, retrying 5xx and time-outs.

A bank retries for days; this sender retries a delivery on 5xx, connection errors and time-outs
(with capped exponential back-off, re-signing each attempt with a fresh timestamp) until it gets a
2xx or 4xx, or until ``give_up_after`` seconds have passed for that delivery (then the run fails:
something stayed down).
"""

from __future__ import annotations

import http.client
import queue
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.resilience.bankgen import Delivery, unix_now


@dataclass
class SendReport:
    deliveries: int = 0
    attempts: int = 0
    server_errors: int = 0  # 5xx answers that were retried
    connection_errors: int = 0  # resets, refused connections and time-outs that were retried
    gave_up: int = 0
    statuses: Counter = field(default_factory=Counter)
    server_error_bodies: list[bytes] = field(default_factory=list)
    seconds: float = 0.0


def send_all(
    base_url: str,
    deliveries: list[Delivery],
    *,
    secrets: dict[str, list[str]],
    wrong_secret: str,
    connections: int = 16,
    give_up_after: float = 600.0,
    timeout: float = 30.0,
    progress: Callable[[int], None] | None = None,
) -> SendReport:
    """Deliver everything from ``connections`` threads, each with its own keep-alive
    connection. Fills in ``status``/``response``/``attempts`` on each delivery. ``progress`` is
    called (from the sending threads) with the number of deliveries finished so far."""
    parts = urllib.parse.urlsplit(base_url)
    work: queue.Queue[Delivery] = queue.Queue()
    for delivery in deliveries:
        work.put(delivery)
    report = SendReport(deliveries=len(deliveries))
    lock = threading.Lock()
    done = [0]

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def deliver(conn_holder: list, delivery: Delivery) -> None:
        started = time.monotonic()
        backoff = 0.05
        while True:
            delivery.attempts += 1
            headers = {"Content-Type": "application/json"}
            header = delivery.signature_header(
                secrets.get(delivery.bank, ["no-secret"]), wrong_secret, unix_now()
            )
            if header is not None:
                headers["X-Bank-Signature"] = header
            path = f"/api/v1/webhooks/banks/{delivery.bank}/"
            try:
                conn = conn_holder[0]
                conn.request("POST", path, body=delivery.body, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn_holder[0] = connect()
                if resp.status < 500:
                    delivery.status = resp.status
                    delivery.response = body
                    return
                delivery.server_errors += 1
                with lock:
                    if len(report.server_error_bodies) < 20:
                        report.server_error_bodies.append(body[:500])
            except (OSError, http.client.HTTPException):
                delivery.connection_errors += 1
                conn_holder[0].close()
                conn_holder[0] = connect()
            if time.monotonic() - started > give_up_after:
                delivery.status = None
                return
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def run() -> None:
        holder = [connect()]
        try:
            while True:
                try:
                    delivery = work.get_nowait()
                except queue.Empty:
                    return
                deliver(holder, delivery)
                with lock:
                    done[0] += 1
                    finished = done[0]
                if progress is not None:
                    progress(finished)
        finally:
            holder[0].close()

    started = time.monotonic()
    threads = [threading.Thread(target=run, name=f"bank-conn-{i}") for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.monotonic() - started
    for delivery in deliveries:
        report.attempts += delivery.attempts
        report.server_errors += delivery.server_errors
        report.connection_errors += delivery.connection_errors
        report.statuses[delivery.status] += 1
        if delivery.status is None:
            report.gave_up += 1
    return report
