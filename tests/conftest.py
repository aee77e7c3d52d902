"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL + Redis when
DATABASE_URL and REDIS_URL are set; tests that depend on one of them are marked and skipped
elsewhere."""

import importlib
import os

import pytest
from django.conf import settings
from django.db import connection

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql"))
HAS_REDIS = bool(os.environ.get("REDIS_URL"))


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    skip_redis = pytest.mark.skip(reason="needs Redis and a Celery worker (set REDIS_URL)")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not HAS_REDIS:
            item.add_marker(skip_redis)


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(scope="session")
def _celery_worker_thread(django_db_setup, django_db_blocker):
    """A real Celery worker thread consuming from Redis, sharing this process's test database."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    with django_db_blocker.unblock():
        with start_worker(
            app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            queues=["default", "batch"],
            shutdown_timeout=30,
        ) as worker:
            yield worker


@pytest.fixture
def celery_worker_session(_celery_worker_thread):
    """Send tasks through Redis to the real worker for this test only.

    Every other test runs tasks eagerly (test settings), so no task from one test is left on the
    broker to run later against another test's data or during its teardown.
    """
    from celery.result import allow_join_result

    from config import celery as celery_module
    from config.celery import app

    app.conf.task_always_eager = False
    # A debounced task published in an earlier test is not this test's to wait for.
    celery_module._debounce_due.clear()
    try:
        # The test waits on results from the worker thread in this process, which Celery forbids
        # inside a worker unless allowed explicitly.
        with allow_join_result():
            yield _celery_worker_thread
    finally:
        app.conf.task_always_eager = True
        _wait_until_worker_idle(app)
        celery_module._debounce_due.clear()


def _wait_until_worker_idle(app, timeout: float = 60.0) -> None:
    """Let follow-up tasks the test enqueued finish, then drop what is left on the broker, so
    the worker does not touch the database while the test's teardown flushes it."""
    import time

    from celery.worker import state

    def idle() -> bool:
        return not state.active_requests and not state.reserved_requests

    deadline = time.monotonic() + timeout
    for _ in range(2):
        time.sleep(0.5)
        while not idle() and time.monotonic() < deadline:
            time.sleep(0.1)
        app.control.purge()


@pytest.fixture(autouse=True)
def _forget_bank_credentials():
    """Banks are kept per process for a few seconds (payments.services.banks): a test's rolled
    back banks must not answer the next test's deliveries."""
    from payments.services.banks import bank_credentials_forget

    bank_credentials_forget()
    yield
    bank_credentials_forget()


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Reference rows seeded by data migrations (purpose codes, service categories, staff groups).

    Transactional tests end with a flush that empties every table, data-migration rows included;
    the tests that run after them get the rows back here, as a migrated database would have them.
    """
    if request.node.get_closest_marker("django_db") is None:
        return
    request.getfixturevalue("_django_db_helper")
    from django.contrib.auth.models import Group, Permission

    from freelancers.models import ServiceCategory
    from payments.models import PurposeCode

    if not PurposeCode.objects.exists():
        seed_codes = importlib.import_module("payments.migrations.0002_seed_purpose_codes")
        for code, description, category in seed_codes.CODES:
            PurposeCode.objects.create(
                code=code, description=description, category=category, is_it=True
            )
    if not ServiceCategory.objects.exists():
        seed_categories = importlib.import_module(
            "freelancers.migrations.0002_seed_service_categories"
        )
        for slug, name, is_it in seed_categories.CATEGORIES:
            ServiceCategory.objects.create(slug=slug, name=name, is_it=is_it)
    if not Group.objects.exists():
        seed_groups = importlib.import_module("freelancers.migrations.0004_staff_groups")
        for name, codenames in seed_groups.GROUPS.items():
            group = Group.objects.create(name=name)
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label="freelancers", codename__in=codenames
                )
            )
