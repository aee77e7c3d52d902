"""The harness itself: real processes come up, faults can be injected, and the portal recovers
from each without a manual step (health endpoint only; the feature tests build on this)."""

import threading
import time

import pytest

from tests.resilience.harness import wait_until

pytestmark = pytest.mark.resilience


def test_gunicorn_serves_healthz_with_database_and_redis_up(stack):
    response = stack.get("/healthz")
    assert response.status == 200, response.body
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert stack.db.backend_pids(stack.WEB_APP), "gunicorn holds no database connection"


def test_redis_outage_reports_unavailable_then_recovers_by_itself(stack):
    stack.redis.outage_stop()
    try:
        down = stack.get("/healthz")
        assert down.status == 503
        assert down.json()["checks"]["redis"].startswith("down")
        assert down.json()["checks"]["database"] == "ok"
    finally:
        stack.redis.start()
    wait_until(lambda: stack.get("/healthz").status == 200, timeout=30, what="healthz after redis")


def run_task_roundtrip(stack, timeout: int = 60) -> str:
    """Send a built-in task through the broker and wait for the worker's result."""
    out = stack.shell(
        "from config.celery import app\n"
        "result = app.send_task('celery.backend_cleanup')\n"
        f"result.get(timeout={timeout})\n"
        "print('roundtrip', result.state)\n"
    )
    return out.strip().splitlines()[-1]


def test_worker_killed_with_sigkill_is_restarted_and_consumes_again(stack):
    assert run_task_roundtrip(stack) == "roundtrip SUCCESS"
    old_pid = stack.worker.pid
    stack.kill_worker()
    assert not stack.worker.running()
    stack.start_worker()
    assert stack.worker.pid != old_pid
    assert run_task_roundtrip(stack) == "roundtrip SUCCESS"


def test_database_connections_dropped_under_requests_recover_without_restart(stack):
    stop = threading.Event()
    statuses: list[int] = []
    errors: list[str] = []

    def hammer():
        while not stop.is_set():
            try:
                statuses.append(stack.get("/healthz", timeout=10).status)
            except OSError as exc:  # a request cut off mid-way is what we inject
                errors.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    terminated = 0
    try:
        for _ in range(5):
            time.sleep(0.3)
            terminated += stack.db.terminate(stack.WEB_APP)
    finally:
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join()
    assert terminated > 0, "no gunicorn backend was connected to terminate"
    assert statuses, errors
    # Every request after the faults is answered from a fresh connection, with no restart.
    for _ in range(20):
        assert stack.get("/healthz").status == 200
    assert stack.web.running()
