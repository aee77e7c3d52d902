"""Fixtures of the resilience suite: real processes against real PostgreSQL and Redis.

Selected only with ``-m resilience`` (``make test-resilience``); skipped, not failed, unless
DATABASE_URL points at PostgreSQL and ``redis-server`` is installed. The suite never uses the
database named in DATABASE_URL itself: it creates ``<name>_rt`` (migrated once, used as a
template) and a fresh ``<name>_<module>`` per test module, and starts its own Redis on
RESILIENCE_REDIS_PORT (6390), so it can stop and start Redis without disturbing anyone.

Environment:
  RESILIENCE_EVENTS      unique bank events in the load run (default 5000; CI uses 1000)
  RESILIENCE_REDIS_PORT  port of the private redis-server (default 6390)
  RESILIENCE_LOG_DIR     where process logs go (default: a pytest temporary directory)
  RESILIENCE_KEEP_DB     "1" keeps the databases afterwards for a post-mortem
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from tests.resilience.harness import PYTHON, ROOT, LiveDatabase, PortalStack, RedisServer

DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://"))
HAS_REDIS_SERVER = shutil.which("redis-server") is not None
REDIS_PORT = int(os.environ.get("RESILIENCE_REDIS_PORT", "6390"))


def pytest_collection_modifyitems(config, items):
    reason = None
    if not ON_POSTGRES:
        reason = "resilience suite needs PostgreSQL (DATABASE_URL=postgres://...)"
    elif not HAS_REDIS_SERVER:
        reason = "resilience suite needs redis-server installed"
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("resilience") is not None:
            item.add_marker(skip)


def events_size() -> int:
    return int(os.environ.get("RESILIENCE_EVENTS", "5000"))


def _base_name() -> str:
    name = urllib.parse.urlsplit(DATABASE_URL).path.lstrip("/") or "portal"
    return name[:40]


@pytest.fixture(scope="session")
def resilience_log_dir(tmp_path_factory) -> Path:
    configured = os.environ.get("RESILIENCE_LOG_DIR")
    if configured:
        path = Path(configured)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path
    return tmp_path_factory.mktemp("resilience-logs")


@pytest.fixture(scope="session")
def redis_server(resilience_log_dir):
    server = RedisServer(port=REDIS_PORT, log_dir=resilience_log_dir)
    if server.ping():
        pytest.fail(
            f"something already listens on 127.0.0.1:{REDIS_PORT}; the resilience suite needs "
            "that port for a Redis of its own (set RESILIENCE_REDIS_PORT)"
        )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def template_database(resilience_log_dir):
    """A migrated database that each module's fresh database is copied from (fast)."""
    db = LiveDatabase.from_database_url(DATABASE_URL, f"{_base_name()}_rt")
    db.create()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))},
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "resilience-migrate-only-" + "k" * 40,
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": db.url("resil_migrate"),
    }
    env.pop("REDIS_URL", None)
    for args in (["migrate", "--noinput"], ["collectstatic", "--noinput", "--verbosity", "0"]):
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        (resilience_log_dir / "setup.log").open("a").write(result.stdout + result.stderr)
        assert result.returncode == 0, f"manage.py {args} failed:\n{result.stderr[-4000:]}"
    yield db
    if os.environ.get("RESILIENCE_KEEP_DB") != "1":
        db.drop()


def make_stack(request, template_database, redis_server, log_dir, *, beat=False) -> PortalStack:
    tag = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:20]
    db = LiveDatabase.from_database_url(DATABASE_URL, f"{_base_name()}_{tag}")
    db.create(template=template_database.name)
    stack = PortalStack(db=db, redis=redis_server, log_dir=log_dir, tag=tag)
    if not redis_server.running():
        redis_server.start()
    stack.start(worker=True, beat=beat)
    return stack


@pytest.fixture(scope="module")
def stack(request, template_database, redis_server, resilience_log_dir):
    """gunicorn (4 gthread workers x 4 threads, production settings) and a Celery worker
    (-Q default,batch) on a fresh database copied from the template, for one test module."""
    portal = make_stack(request, template_database, redis_server, resilience_log_dir)
    yield portal
    portal.stop()
    if os.environ.get("RESILIENCE_KEEP_DB") != "1":
        portal.db.drop()


def feature_present(module: str) -> bool:
    """Whether a feature branch has been merged (its module exists in the worktree)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def require_feature(module: str, what: str) -> None:
    if not feature_present(module):
        pytest.skip(f"{what} is not merged yet ({module} missing)")
