"""Freshness: time from a webhook's 201 to the published monthly figure that includes it.

    .venv/bin/python -m bench.freshness [--size small|full] [--duration S]

gunicorn (bench settings) and a real Celery worker (``celery -A config worker -B`` on Redis db 7)
run while wrk posts unique remittances (this month) from 32 connections. Meanwhile a prober posts
one remittance every --interval seconds into last month (only probes go there, numbered, so
"published receipts >= k" means probe k is included) and polls ``/api/v1/statistics/monthly/``.
Reported: p50/p95/max of 201 -> published (target: p95 under 60 s). Checked (exit 1 when wrong):
every probe answered 201, last month's published figure ends equal to the probes' sum to the
cent, and this month's published figure ends equal to the bare SQL over the receipts stored.
"""

from __future__ import annotations

import datetime
import http.client
import json
import random
import sys
import threading
import time
from decimal import Decimal
from urllib.parse import urlencode

from bench import common, datagen, ingest, payloads

DB = common.db_name("portal_bench_fresh")


def get_month(port: int, month: str) -> dict | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "GET", "/api/v1/statistics/monthly/?" + urlencode({"from": month, "to": month})
        )
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        rows = json.loads(body)["results"]
        return rows[0] if rows else None
    finally:
        conn.close()


def bare_month(month_start: datetime.date) -> tuple[Decimal, int]:
    with common.admin_connect(DB) as conn:
        row = conn.execute(
            """
            SELECT coalesce(sum(r.usd_amount), 0), count(*) FROM payments_receipt r
            JOIN payments_purposecode p ON p.id = r.purpose_code_id
            WHERE r.source = 'bank' AND r.reversed_on IS NULL AND p.is_it
              AND date_trunc('month', r.value_date) = %s
            """,
            [month_start],
        ).fetchone()
    return Decimal(row[0]), row[1]


class Prober:
    """Posts numbered probes into ``month_start``'s month and records when each got published."""

    def __init__(
        self,
        port: int,
        month_start: datetime.date,
        interval: float,
        freelancers: int,
        base: int = 0,
    ):
        self.port = port
        self.run = f"{int(time.time())}"  # references unique across runs on the same data
        self.base = base  # receipts the month already had published before the first probe
        self.month = month_start.strftime("%Y-%m")
        self.value_date = month_start + datetime.timedelta(days=9)
        self.interval = interval
        self.freelancers = freelancers
        self.sent: list[float] = []  # time of the 201 of probe k+1
        self.statuses: list[int] = []
        self.amounts: list[int] = []
        self.published: dict[int, float] = {}
        self.stop_sending = threading.Event()
        self.stop_polling = threading.Event()
        self.lock = threading.Lock()

    def send_loop(self) -> None:
        rng = random.Random(99)
        k = 0
        while not self.stop_sending.is_set():
            k += 1
            cents = 100_000 + k
            reference = f"probe-{self.run}-{k:06d}"
            body = payloads.remittance(
                rng,
                f"evt-{reference}",
                reference,
                datagen.iban("ZZZZ", 7_000_000 + k),
                self.value_date,
                cents,
            )
            status = ingest.post(
                self.port,
                ingest.REAL_PATH,
                body,
                {"X-Bank-Signature": payloads.sign(payloads.BANK_SECRET, body)},
            )
            with self.lock:
                self.statuses.append(status)
                if status == 201:
                    self.sent.append(time.monotonic())
                    self.amounts.append(cents)
            self.stop_sending.wait(self.interval)

    def poll_loop(self) -> None:
        while not self.stop_polling.is_set():
            row = get_month(self.port, self.month)
            now = time.monotonic()
            if row:
                with self.lock:
                    for k in range(min(row["receipts"] - self.base, len(self.sent))):
                        self.published.setdefault(k, now)
            self.stop_polling.wait(0.25)

    def all_published(self) -> bool:
        with self.lock:
            return len(self.published) >= len(self.sent)

    def latencies(self) -> list[float]:
        return [self.published[k] - t for k, t in enumerate(self.sent) if k in self.published]


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between probes")
    parser.add_argument(
        "--on-statistics-data",
        action="store_true",
        help="run on the statistics data set (loaded by bench.statistics at this size) and probe"
        " June 2026, a month of a fiscal year holding a third of its receipts, so every refresh"
        " recomputes a busy month and fiscal year (the receipts it records there are removed at the"
        " end)",
    )
    args = parser.parse_args(argv)
    size = common.size_of(args, "stats_receipts")
    duration = max(size["duration"], 20)
    report = common.make_report("freshness", args)
    account_freelancers = min(size["freelancers"], 50_000)

    global DB
    if args.on_statistics_data:
        from bench import statistics

        DB = common.dataset_db(statistics.DB_BASE, args.size)
        common.setup_django(DB)
        ds = datagen.Dataset(
            freelancers=size["freelancers"],
            receipts=size["stats_receipts"],
            first_day=statistics.FIRST_DAY,
            last_day=statistics.LAST_DAY,
        )
        if datagen.stored_dataset(DB) is None:
            datagen.ensure_dataset(DB, ds)
        report.notes.append(f"on the statistics data set ({datagen.stored_dataset(DB)})")
    else:
        # A fresh database with accounts and the bench bank, as for ingestion.
        common.setup_django(DB)
        ds = datagen.Dataset(
            freelancers=account_freelancers,
            receipts=0,
            first_day="2026-01-01",
            last_day="2026-01-01",
        )
        datagen.ensure_dataset(DB, ds, reload=True)
    env = common.bench_env(DB)
    common.manage(
        ["add_bank", payloads.BANK_CODE, "--name", "Bench bank", "--secret", payloads.BANK_SECRET],
        env,
        stdout=sys.stderr,
    )
    import redis

    redis.Redis.from_url(common.REDIS_URL).flushdb()
    with common.admin_connect(DB) as conn:
        published = conn.execute(
            "SELECT EXISTS (SELECT FROM registry_statisticsperiod WHERE current_id IS NOT NULL)"
        ).fetchone()[0]
    # The statistics data set as its benchmark left it has its figures (a refresh is enough); a
    # set just loaded has none, and the probes' month must start from its published figure.
    common.manage(
        ["aggregate_statistics"] + ([] if published else ["--full"]),
        env,
        stdout=sys.stderr,
    )

    today = payloads.karachi_today()
    this_month = today.replace(day=1)
    last_month = (this_month - datetime.timedelta(days=1)).replace(day=1)
    if args.on_statistics_data:
        last_month = datetime.date(2026, 6, 1)
    port = common.free_port()
    logs = common.logs_dir()
    worker_cmd = [
        common.PYTHON, "-m", "celery", "-A", "config", "worker", "-B",
        "-Q", "default,batch", "--concurrency", "2", "--loglevel", "WARNING",
        "--schedule", str(logs / "celerybeat-schedule"),
    ]  # fmt: skip
    with (
        common.process(
            common.gunicorn_cmd("config.wsgi:application", port), env, logs / "gunicorn-fresh.log"
        ),
        common.process(worker_cmd, env, logs / "celery-fresh.log"),
    ):
        common.wait_http(f"http://127.0.0.1:{port}/healthz")
        before = get_month(port, last_month.strftime("%Y-%m"))
        base, base_total = (before["receipts"], Decimal(before["total_usd"])) if before else (0, 0)
        prober = Prober(port, last_month, args.interval, account_freelancers, base)
        plan = payloads.build_plan(
            logs / "fresh.txt", f"fresh{int(time.time())}", ingest.MAX_RATE * (duration + 5),
            ingest.WRK_THREADS, 0.0,
            account_freelancers, seed=21,
        )  # fmt: skip
        sender = threading.Thread(target=prober.send_loop, daemon=True)
        poller = threading.Thread(target=prober.poll_loop, daemon=True)
        sender.start()
        poller.start()
        try:
            load = ingest.run_wrk(ingest.ingest_url(port), plan, args.connections, duration)
        finally:
            prober.stop_sending.set()
            sender.join(timeout=60)
        deadline = time.monotonic() + 180
        while not prober.all_published() and time.monotonic() < deadline:
            time.sleep(0.5)
        prober.stop_polling.set()
        poller.join(timeout=60)
        settled = ingest.settle(port, ingest.REAL_PATH, plan, load, args.connections, DB)

        lat = prober.latencies()
        unpublished = len(prober.sent) - len(lat)
        report.add(
            "load during probes",
            f"{load['rps']:.0f} req/s for {duration}s, {args.connections} connections",
        )
        report.add(
            "probes (201 -> published)", f"{len(prober.sent)} sent, {unpublished} never published"
        )
        if lat:
            p95 = common.percentile(lat, 95)
            report.add(
                "freshness p50 / p95 / max",
                f"{common.percentile(lat, 50):.1f} / {p95:.1f} / {max(lat):.1f} s",
                "p95 < 60 s",
                p95 < 60 and unpublished == 0,
            )
        report.check(
            all(s == 201 for s in prober.statuses), f"probe answers: {prober.statuses[:10]}..."
        )
        bad = {k: v for k, v in load["statuses"].items() if k not in ("200", "201")}
        report.check(
            not bad and all(k in (200, 201) for k in settled),
            f"load answers other than 200/201: {bad} {settled}",
        )

        # Eventually consistent: wait (bounded) until this month's figure equals the bare SQL.
        expected_probe = base_total + Decimal(sum(prober.amounts)) / 100
        deadline = time.monotonic() + 180
        while True:
            bare = bare_month(this_month)
            row = get_month(port, this_month.strftime("%Y-%m"))
            probe_row = get_month(port, last_month.strftime("%Y-%m"))
            current_ok = row is not None and (Decimal(row["total_usd"]), row["receipts"]) == bare
            probes_ok = probe_row is not None and Decimal(probe_row["total_usd"]) == expected_probe
            if (current_ok and probes_ok) or time.monotonic() > deadline:
                break
            time.sleep(1)
        report.check(
            current_ok,
            f"this month published {row and (row['total_usd'], row['receipts'])}, bare SQL {bare}",
        )
        report.check(
            probes_ok,
            f"last month published {probe_row and probe_row['total_usd']}, "
            f"probes sum {expected_probe}",
        )
    if args.on_statistics_data:
        # Leave the statistics data set as loaded: the statistics benchmark times against it.
        with common.admin_connect(DB) as conn:
            removed = statistics.restore_dataset(conn, env, ds)
        statistics.flush_redis()
        report.notes.append(f"removed the {removed:,} receipts this run recorded on that data set")
    return common.finish(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
