"""The ingestion peer: dj-stripe (from PyPI, in the throwaway peer venv) receiving signed Stripe
events on the same gunicorn settings as the portal.

At run time ``make_project.py`` writes a minimal project into a temporary directory; it gets its
own database (portal_bench_djstripe), one ``WebhookEndpoint`` with a known secret, and a
stand-in Stripe API on 127.0.0.1 (``fake_stripe.py``) serving Stripe's fixtures, because
dj-stripe re-fetches each event's object from the API before storing it. wrk replays
``payment_intent.succeeded`` events (envelope: shared/fixtures/stripe/event_envelope.fixtures3.json
with type payment_intent.succeeded and data.object the payment_intent fixture, unique ids), signed
``Stripe-Signature: t=...,v1=...``. Checked: every answer is 200 and dj-stripe stored one Event per
event answered.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import common, payloads, peers

DB = common.db_name("portal_bench_djstripe")
HERE = Path(__file__).resolve().parent
FIXTURES = common.ROOT.parent / "shared" / "fixtures" / "stripe"
SECRET = "whsec_bench_peer_secret"
ENDPOINT_UUID = "6f1c2a8e-5b7d-4c3e-9a10-2b4d6e8f0a12"
SETUP = f"""
from djstripe.models import WebhookEndpoint
WebhookEndpoint.objects.update_or_create(
    id="we_bench",
    defaults=dict(
        livemode=False, secret={SECRET!r}, url="http://127.0.0.1/stripe/webhook/",
        api_version="2024-06-20", enabled_events=["*"], status="enabled",
        djstripe_uuid={ENDPOINT_UUID!r}, djstripe_validation_method="verify_signature",
        djstripe_tolerance=300, metadata={{}},
    ),
)
"""


def fixtures_dir() -> Path:
    for candidate in (FIXTURES, Path("/work/shared/fixtures/stripe")):
        if (candidate / "fixtures3.json").exists():
            return candidate
    raise FileNotFoundError("shared/fixtures/stripe/fixtures3.json not found")


def stripe_sign(body: bytes, timestamp: int) -> str:
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _wait_port(port: int, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the dj-stripe peer did not listen on {port}")


def build_plan(path: Path, count: int, threads: int, prefix: str) -> payloads.Plan:
    fixtures = fixtures_dir()
    envelope = json.loads((fixtures / "event_envelope.fixtures3.json").read_text())
    intent = json.loads((fixtures / "payment_intent.fixtures3.json").read_text())
    stamp = int(time.time())
    lines: list[list[tuple[str, str, bytes]]] = [[] for _ in range(threads)]
    out = []
    for i in range(count):
        event = copy.deepcopy(envelope)
        obj = dict(
            intent, id=f"pi_{prefix}{i:09d}", status="succeeded", amount_received=intent["amount"]
        )
        event.update(
            id=f"evt_{prefix}{i:09d}",
            type="payment_intent.succeeded",
            created=stamp,
            api_version="2024-06-20",
            data={"object": obj},
        )
        body = json.dumps(event, separators=(",", ":")).encode()
        line = (event["id"], stripe_sign(body, stamp), body)
        lines[i % threads].append(line)
        out.append(line[1] + "\t" + body.decode())
    path.write_text("\n".join(out) + "\n")
    return payloads.Plan(path=path, threads=threads, lines=lines)


def run(connections: int, duration: int, report: common.Report) -> dict | None:
    """Run the peer under the same load; add its rows to ``report``; return the wrk result."""
    from bench import ingest

    python = peers.peer_python()
    logs = common.logs_dir()
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-djstripe-"))
    try:
        common.recreate_database(DB)
        api_port, port = common.free_port(), common.free_port()
        subprocess.run(
            [python, str(HERE / "make_project.py"), str(tmp), common.db_url(DB), str(api_port)],
            check=True,
        )
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(tmp),
            "DJANGO_SETTINGS_MODULE": "peerproj.settings",
        }
        subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=tmp, env=env, check=True)
        subprocess.run([python, "manage.py", "shell", "-c", SETUP], cwd=tmp, env=env, check=True)
        api_cmd = [
            python,
            str(HERE / "fake_stripe.py"),
            str(api_port),
            str(fixtures_dir() / "fixtures3.json"),
        ]
        gunicorn = common.gunicorn_cmd("peerproj.wsgi:application", port, python=python)
        with (
            common.process(api_cmd, env, logs / "fake-stripe.log", cwd=tmp),
            common.process(gunicorn, env, logs / "gunicorn-djstripe.log", cwd=tmp),
        ):
            url = f"http://127.0.0.1:{port}/stripe/webhook/{ENDPOINT_UUID}/"
            common.wait_http(f"http://127.0.0.1:{api_port}/v1/account")
            warm = build_plan(logs / "djstripe-warm.txt", 200, ingest.WRK_THREADS, "warm")
            _wait_port(port)
            ingest.run_wrk(url, warm, connections, 2, header="Stripe-Signature")
            count = ingest.MAX_RATE * (duration + 5)
            plan = build_plan(logs / "djstripe.txt", count, ingest.WRK_THREADS, "main")
            result = ingest.run_wrk(url, plan, connections, duration, header="Stripe-Signature")
        ingest.add_load_rows(report, "dj-stripe peer", result, None)
        statuses = {int(k): v for k, v in result["statuses"].items()}
        with common.admin_connect(DB) as conn:
            events = conn.execute(
                "SELECT count(*) FROM djstripe_event WHERE id LIKE 'evt_main%%'"
            ).fetchone()[0]
        answered = statuses.get(200, 0)
        report.check(
            set(statuses) <= {200},
            f"dj-stripe peer answered {statuses} (see {logs / 'gunicorn-djstripe.log'})",
        )
        sent = sum(min(t["sent"], t["available"]) for t in result["threads"])
        report.check(
            answered <= events <= sent,
            f"dj-stripe peer stored {events} events for {answered} answers 200",
        )
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
