"""The statistics benchmark's own correctness check, run at a tiny size on PostgreSQL.

The benchmark compares the published monthly figures with a bare SQL GROUP BY to the cent; these
tests prove that comparison passes on correct figures and fails (exit 1) on a wrong one. They use
their own bench database (portal_bench_stats_smoke) on the server of DATABASE_URL.
"""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]


SMOKE_SUFFIX = "_smoke"
# What bench.common.dataset_db names the tiny statistics data set with BENCH_DB_SUFFIX set.
SMOKE_DB = f"portal_bench_stats_tiny{SMOKE_SUFFIX}"
SMOKE_RECEIPTS = 5000


def server() -> dict[str, str]:
    """The PostgreSQL server of DATABASE_URL, where the bench keeps its smoke data set."""
    url = urlparse(os.environ["DATABASE_URL"])
    return {
        "host": url.hostname or "127.0.0.1",
        "port": str(url.port or 5432),
        "user": url.username or "postgres",
    }


def run_statistics_bench(*extra: str) -> subprocess.CompletedProcess:
    pg = server()
    env = {
        **os.environ,
        "BENCH_PG_HOST": pg["host"],
        "BENCH_PG_PORT": pg["port"],
        "BENCH_PG_USER": pg["user"],
        "BENCH_DB_SUFFIX": SMOKE_SUFFIX,
        # No Redis: the bench must not touch the Redis database the test session's worker uses.
        "BENCH_REDIS_URL": "",
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.statistics",
            "--size",
            "tiny",
            "--freelancers",
            "500",
            "--receipts",
            str(SMOKE_RECEIPTS),
            "--no-peer",
            *extra,
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.postgres
def test_statistics_bench_passes_when_published_figures_equal_the_bare_query():
    result = run_statistics_bench("--day-runs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "full rebuild: months checked to the cent" in result.stdout
    # Every day's figures are checked; the table reports it once.
    assert result.stdout.count("incremental: months checked to the cent") == 1
    # Two days timed, each added and removed: the verdict line names both runs.
    day = next(line for line in result.stdout.splitlines() if "incremental after one day" in line)
    runs = day.partition("(best of ")[2].partition(";")[0].split(", ")
    assert len(runs) == 2 and "median" in day, day
    assert "WRONG" not in result.stderr


@pytest.mark.postgres
def test_statistics_bench_exits_1_when_a_receipt_changes_behind_the_portals_back():
    result = run_statistics_bench("--corrupt-after-rebuild", "--no-incremental")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "published monthly figures differ from the bare SQL" in result.stderr


@pytest.mark.postgres
def test_statistics_bench_starts_from_its_data_set_as_loaded():
    """Receipts recorded on the data set since it was loaded (``bench.freshness
    --on-statistics-data`` records its load there) are removed before anything is timed."""
    assert run_statistics_bench("--no-incremental").returncode == 0  # the data set exists
    with psycopg.connect(**server(), dbname=SMOKE_DB, autocommit=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE extra AS SELECT * FROM payments_receipt WHERE id = 1;"
            f" UPDATE extra SET id = {SMOKE_RECEIPTS + 1}, reference = reference || '-x';"
            " INSERT INTO payments_receipt SELECT * FROM extra"
        )
        result = run_statistics_bench("--no-incremental")
        count, last = conn.execute("SELECT count(*), max(id) FROM payments_receipt").fetchone()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removed 1 receipts recorded after the data set was loaded" in result.stdout
    assert (count, last) == (SMOKE_RECEIPTS, SMOKE_RECEIPTS)
