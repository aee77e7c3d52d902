"""Bench settings: the production settings, served over plain HTTP on 127.0.0.1.

Only what a benchmark needs differs from production: a fixed throwaway SECRET_KEY (the process
refuses to start in production without one), no HTTPS redirect (there is no TLS proxy in front of
gunicorn here), 127.0.0.1 as the only host, and ``bench.urls`` (the portal's URLs plus the bare
baseline webhook the ingestion benchmark compares against).
"""

import os

os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench")

from config.settings.production import *  # noqa: E402, F403

SECURE_SSL_REDIRECT = False
ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
ROOT_URLCONF = "bench.urls"
# The HMAC secret of the bare baseline view (the same secret the bench bank gets).
BENCH_BASELINE_SECRET = os.environ.get("BENCH_BASELINE_SECRET", "bench-bank-secret")
# Cookies over plain HTTP on 127.0.0.1 (the admin page benchmark signs in with the test client).
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
