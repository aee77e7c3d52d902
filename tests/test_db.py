"""config.db: hot statements prepared once per connection, a batch in one message (PostgreSQL)."""

import datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction

from config.db import fetch_bound, fetch_prepared, fetch_prepared_batch, retry_if_stale

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"), reason="PostgreSQL"
    ),
]

# Every kind of value the webhook's statements bind, with characters that need quoting.
VALUES = {
    "number": 9_007_199_254_740_993,
    "money": Decimal("1250.05"),
    "text": "O'Brien \\ 50% $1 ☕",
    "day": datetime.date(2024, 2, 29),
    "moment": datetime.datetime(2024, 6, 30, 23, 59, 59, 123456, tzinfo=datetime.UTC),
    "flag": True,
    "nothing": None,
}
SQL = (
    "SELECT %(number)s::bigint, %(money)s::numeric, %(text)s::text, %(day)s::date,"
    " %(moment)s::timestamptz, %(flag)s::boolean, %(nothing)s::text, %(number)s::bigint + 1,"
    " '100%%'"
)
EXPECTED = [(*VALUES.values(), VALUES["number"] + 1, "100%")]


@pytest.fixture(params=["prepared", "inlined"])
def preparing(request, monkeypatch):
    connection.ensure_connection()
    if request.param == "inlined":  # DB_PREPARED_STATEMENTS=false
        monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    return request.param


def test_values_come_back_as_they_went_in(preparing):
    assert fetch_prepared(SQL, VALUES) == EXPECTED
    assert fetch_prepared(SQL, {**VALUES, "nothing": "x"})[0][6] == "x"
    assert fetch_prepared("SELECT %s::int + %s::int", [2, 3]) == [(5,)]


def test_a_batch_runs_in_order_and_returns_each_statements_rows(preparing):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE batch_probe (n int)")
    with transaction.atomic():
        rows = fetch_prepared_batch(
            [
                ("INSERT INTO batch_probe VALUES (%s), (%s)", [1, 2]),
                ("SELECT count(*) FROM batch_probe", []),
                (SQL, VALUES),
            ]
        )
    assert rows == [[], [(2,)], EXPECTED]


def test_an_error_raises_as_djangos_and_stops_the_batch(preparing):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE batch_probe (n int PRIMARY KEY)")
    with pytest.raises(DatabaseError):
        with transaction.atomic():
            fetch_prepared_batch(
                [
                    ("INSERT INTO batch_probe VALUES (%s)", [1]),
                    ("INSERT INTO batch_probe VALUES (%s)", [1]),
                    ("INSERT INTO batch_probe VALUES (%s)", [2]),
                ]
            )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM batch_probe")
        assert cursor.fetchone() == (0,)


@pytest.mark.django_db(transaction=True)
def test_statements_deallocated_under_the_connection_are_prepared_again():
    assert fetch_prepared(SQL, VALUES) == EXPECTED
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(DatabaseError, match="does not exist"):
        fetch_prepared(SQL, VALUES)
    assert fetch_prepared(SQL, VALUES) == EXPECTED


@pytest.mark.django_db(transaction=True)
def test_a_committing_batch_commits_in_its_own_message():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE batch_commit_probe (n int)")
    try:
        with transaction.atomic():
            fetch_prepared_batch([("INSERT INTO batch_commit_probe VALUES (%s)", [7])], commit=True)
            # Committed already: another connection sees the row before the block exits.
            other = connection.copy()
            with other.cursor() as cursor:
                cursor.execute("SELECT n FROM batch_commit_probe")
                assert cursor.fetchall() == [(7,)]
            other.close()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE batch_commit_probe")


def test_sql_with_a_dollar_parameter_of_its_own_is_refused():
    with pytest.raises(ValueError, match=r"\$<digit>"):
        fetch_prepared("SELECT $1::int", [1])


def test_fetch_bound_binds_large_arrays_and_returns_rows():
    ids = list(range(1, 20_001))
    assert fetch_bound("SELECT cardinality(%s::bigint[]), %s::text", [ids, "O'Brien"]) == [
        (20_000, "O'Brien")
    ]
    assert fetch_bound(SQL, VALUES) == EXPECTED
    with pytest.raises(DatabaseError), transaction.atomic():
        fetch_bound("SELECT 1 / %s::int", [0])


def test_fetch_bound_never_makes_psycopg_deallocate_the_prepared_statements():
    """psycopg answers a rollback with DEALLOCATE ALL once it has prepared a statement itself
    (a query run ``prepare_threshold`` times): that would drop ``fetch_prepared``'s too."""
    fetch_prepared("SELECT %s::int + 1", [1])
    with transaction.atomic():
        for _ in range(10):
            fetch_bound("SELECT %s::int", [1])
        transaction.set_rollback(True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql")
        assert cursor.fetchone() == (0,)  # nothing prepared by the protocol (psycopg)
    assert fetch_prepared("SELECT %s::int + 1", [1]) == [(2,)]


@pytest.mark.django_db(transaction=True)
def test_retry_if_stale_raises_an_error_of_a_working_connection_without_running_again():
    connection.ensure_connection()
    connection.health_check_done = False  # a kept connection, at a new request's first use
    pid = connection.connection.info.backend_pid
    runs = []

    def work():
        runs.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 1")
            try:
                cursor.execute("SELECT pg_sleep(1)")
            finally:
                cursor.execute("RESET statement_timeout")

    with pytest.raises(OperationalError, match="statement timeout"):
        retry_if_stale(work)
    assert runs == [1]  # a cancelled statement is not a broken connection: no second run
    assert connection.connection.info.backend_pid == pid
