"""Shared plumbing for the benchmarks: sizes, databases, servers, timing and the result table.

Every benchmark talks only to 127.0.0.1, uses PostgreSQL databases whose names start with
``portal_bench`` and Redis database 7 (override with BENCH_REDIS_URL), and stops every process it
starts (each in its own process group, killed in ``finally``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DB_PREFIX = "portal_bench"
PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
# Empty BENCH_REDIS_URL: no Redis, Celery runs tasks eagerly (the smoke test uses that).
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
SEED = 20240701

# --- Sizes ----------------------------------------------------------------------------------------
# "full" is the national scale; "small" is what `make bench` runs by default.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {
        "freelancers": 2_000,
        "stats_receipts": 30_000,
        "incentive_receipts": 40_000,
        "duration": 3,
    },
    "small": {
        "freelancers": 20_000,
        "stats_receipts": 300_000,
        "incentive_receipts": 400_000,
        "duration": 10,
    },
    "medium": {
        "freelancers": 200_000,
        "stats_receipts": 2_000_000,
        "incentive_receipts": 4_000_000,
        "duration": 30,
    },
    "full": {
        "freelancers": 1_000_000,
        "stats_receipts": 10_000_000,
        "incentive_receipts": 20_000_000,
        "duration": 30,
    },
}


def add_size_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size",
        choices=sorted(SIZES),
        default=os.environ.get("BENCH_SIZE", "small"),
        help="data size profile (default: small; 'full' is the issue's national scale)",
    )
    parser.add_argument("--freelancers", type=int, help="override the profile's freelancer count")
    parser.add_argument("--receipts", type=int, help="override the profile's receipt count")
    parser.add_argument("--duration", type=int, help="override the load duration (seconds)")
    parser.add_argument(
        "--enforce-targets",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="exit 2 when a performance target is missed (default: only at --size full)",
    )
    parser.add_argument(
        "--reload", action="store_true", help="drop and regenerate the data set even if present"
    )


def size_of(args: argparse.Namespace, receipts_key: str) -> dict[str, int]:
    profile = dict(SIZES[args.size])
    if args.freelancers:
        profile["freelancers"] = args.freelancers
    if args.receipts:
        profile[receipts_key] = args.receipts
    if args.duration:
        profile["duration"] = args.duration
    return profile


# --- Environment and databases --------------------------------------------------------------------


def db_name(base: str) -> str:
    """A bench database name; BENCH_DB_SUFFIX keeps parallel users (the smoke test) apart."""
    name = base + os.environ.get("BENCH_DB_SUFFIX", "")
    check_db_name(name)
    return name


def dataset_db(base: str, size: str) -> str:
    """The database of a loaded data set: one per size, so a small run keeps the full data."""
    return db_name(base if size == "small" else f"{base}_{size}")


def db_url(name: str) -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def check_db_name(name: str) -> None:
    if not name.startswith(DB_PREFIX) or not name.replace("_", "").isalnum():
        raise ValueError(f"bench databases must be named {DB_PREFIX}*: {name!r}")


def bench_env(db_name: str, **extra: str) -> dict[str, str]:
    """The environment of every process the benchmarks start (servers, workers, commands)."""
    check_db_name(db_name)
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": db_url(db_name),
            "REDIS_URL": REDIS_URL,
            "PYTHONPATH": str(ROOT),
            "PYTHONHASHSEED": "0",
        }
    )
    env.update(extra)
    return env


def setup_django(db_name: str, **extra: str) -> None:
    """Point this process at ``db_name`` with the bench settings and set Django up."""
    os.environ.update(bench_env(db_name, **extra))
    import django

    django.setup()


def admin_connect(dbname: str = "postgres", autocommit: bool = True):
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=autocommit
    )


def database_exists(name: str) -> bool:
    check_db_name(name)
    with admin_connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def recreate_database(name: str) -> None:
    """Drop (if present) and create one of our own bench databases."""
    check_db_name(name)
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    check_db_name(name)
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(args: list[str], env: dict[str, str], check: bool = True, **kwargs):
    return subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=check, **kwargs
    )


# --- Processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process group we started, then SIGKILL whatever is left."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> Iterator:
    """Start ``cmd`` in its own process group; always stop the whole group on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop_process_group(proc)


def gunicorn_workers() -> int:
    return int(os.environ.get("BENCH_GUNICORN_WORKERS", 2 * (os.cpu_count() or 1) + 1))


def gunicorn_class() -> str:
    return os.environ.get("BENCH_GUNICORN_CLASS", "sync")


def gunicorn_cmd(wsgi: str, port: int, python: str = PYTHON) -> list[str]:
    """One set of gunicorn settings for every server under test (ours, baseline, peer):
    gunicorn's recommended 2 x cores + 1 sync workers unless BENCH_GUNICORN_* say otherwise."""
    return [
        python,
        "-m",
        "gunicorn",
        wsgi,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(gunicorn_workers()),
        "--worker-class",
        gunicorn_class(),
        "--backlog",
        "2048",
        "--log-level",
        "warning",
        "--timeout",
        "120",
    ]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - 127.0.0.1 only
                resp.read()
                return
        except Exception as exc:  # noqa: BLE001 - retry until the server is up
            last = exc
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up in {timeout}s: {last}")


def logs_dir() -> Path:
    path = Path(os.environ.get("BENCH_LOG_DIR", "/tmp/portal-bench-logs"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- Timing ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def timer() -> Iterator[dict]:
    out: dict = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["s"] = time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


# --- Results --------------------------------------------------------------------------------------


@dataclass
class Row:
    benchmark: str
    metric: str
    value: str
    target: str = ""
    ok: bool | None = None  # None: informational


@dataclass
class Report:
    """Figures, target verdicts and correctness failures of one benchmark run."""

    name: str
    enforce_targets: bool = False
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, metric: str, value: str, target: str = "", ok: bool | None = None) -> None:
        self.rows.append(Row(self.name, metric, value, target, ok))

    def check(self, condition: bool, message: str) -> bool:
        """A correctness check: a wrong figure makes the benchmark exit 1."""
        if not condition:
            self.errors.append(message)
        return condition

    def missed(self) -> list[Row]:
        return [r for r in self.rows if r.ok is False]

    def exit_code(self) -> int:
        if self.errors:
            return 1
        if self.enforce_targets and self.missed():
            return 2
        return 0

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "rows": [r.__dict__ for r in self.rows],
            "errors": self.errors,
            "notes": self.notes,
            "enforce_targets": self.enforce_targets,
        }


def print_table(rows: list[Row], out=sys.stdout) -> None:
    headers = ("benchmark", "metric", "value", "target", "verdict")
    table = [
        (
            r.benchmark,
            r.metric,
            r.value,
            r.target,
            {True: "ok", False: "MISSED", None: ""}[r.ok],
        )
        for r in rows
    ]
    widths = [
        max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line, file=out)
    print("-" * len(line), file=out)
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)), file=out)


def finish(report: Report, json_out: str | None = None) -> int:
    """Print the table, the errors and the verdict; write JSON if asked; return the exit code."""
    print()
    print_table(report.rows)
    for note in report.notes:
        print(f"note: {note}")
    for error in report.errors:
        print(f"WRONG: {error}", file=sys.stderr)
    code = report.exit_code()
    if report.errors:
        print(f"{report.name}: FAILED - figures are wrong (exit 1)", file=sys.stderr)
    elif report.missed():
        verdict = "exit 2" if report.enforce_targets else "not enforced at this size"
        print(f"{report.name}: targets missed ({verdict})")
    else:
        print(f"{report.name}: all checks passed")
    if json_out:
        Path(json_out).write_text(json.dumps(report.to_json(), indent=2))
    return code


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    add_size_arguments(parser)
    parser.add_argument("--json", help="also write the results as JSON to this file")
    return parser


def make_report(name: str, args: argparse.Namespace) -> Report:
    enforce = args.enforce_targets if args.enforce_targets is not None else args.size == "full"
    return Report(name=name, enforce_targets=enforce)


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
