"""Where a bank webhook delivery's time goes, without HTTP: CPU per delivery in this process and in
its PostgreSQL backend, and the time of each SQL statement.

    .venv/bin/python -m bench.ingest_cpu [--deliveries 2000] [--freelancers 50000]

Calls ``bank_delivery_receive`` for new, correctly signed ``remittance.credited`` events one after
another, each after Django's request-start connection handling (``close_old_connections``), on a
fresh bench database (the ingestion benchmark's, ``bench.ingest.prepare_database``)
and prints wall time, this process's CPU (``time.process_time``) and the backend's CPU (from
``/proc/<pid>/stat``: PostgreSQL runs on this machine) per delivery, then each statement's share
(Django's execute wrapper; prepared statements included). Every answer must be 201 and every
delivery must leave one receipt (exit 1 otherwise). A diagnostic for bench/RESULTS.md, not a
target: the ingestion benchmark (``bench.ingest``) is the one that counts.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import time

from bench import payloads
from bench.ingest import prepare_database


def backend_cpu(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--freelancers", type=int, default=50_000)
    args = parser.parse_args(argv)
    prepare_database(args.freelancers)
    from django.db import close_old_connections, connection

    from payments.models import Receipt
    from payments.services.bank_webhooks import bank_delivery_receive

    with connection.cursor() as cursor:
        cursor.execute("SELECT iban FROM payments_dollaraccount ORDER BY id LIMIT 1000")
        ibans = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    rng = random.Random(20261125)
    n = args.deliveries
    value_date = payloads.karachi_today()
    bodies = [
        payloads.remittance(rng, f"cpu-{i}", f"CPU{i:08d}", ibans[i % len(ibans)], value_date)
        for i in range(n + 50)
    ]
    statements: dict[str, float] = collections.defaultdict(float)

    def timed(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements[" ".join(sql.split())[:70]] += time.perf_counter() - start

    def deliver(body: bytes) -> None:
        # As each request starts: the connection is kept (CONN_MAX_AGE) and, with
        # CONN_HEALTH_CHECKS, checked again at the request's first use unless the code skips it.
        close_old_connections()
        result = bank_delivery_receive(
            bank_code=payloads.BANK_CODE,
            body=body,
            content_length=len(body),
            signature_header=payloads.sign(payloads.BANK_SECRET, body),
        )
        if result.status != 201:
            raise SystemExit(f"expected 201, got {result.status} {result.body}")

    for body in bodies[:50]:  # warm up: connection, prepared statements, kept bank
        deliver(body)
    wall, cpu, pg = time.perf_counter(), time.process_time(), backend_cpu(pid)
    with connection.execute_wrapper(timed):
        for body in bodies[50:]:
            deliver(body)
    wall, cpu, pg = (
        time.perf_counter() - wall,
        time.process_time() - cpu,
        backend_cpu(pid) - pg,
    )
    if connection.connection.info.backend_pid != pid:
        raise SystemExit("the connection was replaced during the run: backend CPU not measured")
    stored = Receipt.objects.filter(reference__startswith="CPU").count()
    print(f"{n:,} deliveries, {os.cpu_count()} cores")
    print(f"per delivery: wall {wall / n * 1e3:.2f} ms, Python CPU {cpu / n * 1e3:.2f} ms,")
    print(f"              PostgreSQL backend CPU {pg / n * 1e3:.2f} ms")
    for sql, seconds in sorted(statements.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / n * 1e3:6.3f} ms  {sql}")
    if stored != n + 50:
        print(f"FAILED: {stored} receipts stored for {n + 50} deliveries")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
