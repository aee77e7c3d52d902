"""The ingestion benchmark's verdicts: which loads carry which targets (no servers needed)."""

from bench import common, ingest


def load(rps: float, p99_ms: float, errors: int = 0) -> dict:
    return {
        "rps": rps,
        "p50_us": 20_000,
        "p99_us": p99_ms * 1000,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": errors, "timeout": 0},
        "wrapped": False,
    }


def test_a_slow_peer_or_baseline_is_reported_but_misses_no_target():
    report = common.Report("ingest", enforce_targets=True)
    ingest.add_load_rows(report, "baseline", load(1500, 120), None)
    ingest.add_load_rows(report, "dj-stripe peer", load(80, 420), None)
    assert report.missed() == []
    assert report.exit_code() == 0
    latencies = [r for r in report.rows if r.metric.endswith("latency p50 / p99")]
    assert [r.value for r in latencies] == ["20.0 / 120.0 ms", "20.0 / 420.0 ms"]


def test_the_webhook_misses_on_p99_throughput_or_errors():
    report = common.Report("ingest", enforce_targets=True)
    ingest.add_load_rows(report, "webhook unique", load(900, 99), 1500)
    assert report.missed() == []
    ingest.add_load_rows(report, "webhook slow", load(800, 101, errors=2), 1500)
    assert {r.metric for r in report.missed()} == {
        "webhook slow: latency p50 / p99",
        "webhook slow: errors (socket + non-2xx)",
        "webhook slow: throughput vs baseline",
    }
    assert report.exit_code() == 2


def test_errors_in_the_peer_are_a_missed_target():
    report = common.Report("ingest", enforce_targets=True)
    ingest.add_load_rows(report, "dj-stripe peer", load(80, 50, errors=1), None)
    assert [r.metric for r in report.missed()] == ["dj-stripe peer: errors (socket + non-2xx)"]
