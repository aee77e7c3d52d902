"""Prepared statements for the few hot statements that run on every webhook delivery.

Django's PostgreSQL backend binds parameters on the client (psycopg's ``ClientCursor``), so
PostgreSQL parses and plans every statement each time it runs. For a statement that runs on every
delivery that planning is a third of its cost (the one-statement remittance insert: about 0.6 ms
of 2 ms, bench/RESULTS.md). ``fetch_prepared`` runs such a statement through a server-side binding
psycopg cursor with ``prepare=True``: psycopg prepares it once per connection and reuses the plan.
Database errors are Django's, and the statement shows in ``connection.queries`` when queries are
logged (tests count them), as any other; on SQLite ``fetch_prepared`` is a plain query, so a
caller with portable SQL needs no branch. ``DB_PREPARED_STATEMENTS=false`` (config/settings/base.py,
for a transaction-pooling PgBouncer older than 1.21) turns preparing off; the statements then run
as they are.
"""

import threading
import time
from typing import Any

from django.db import connection


def fetch_prepared(sql: str, params: dict[str, Any] | list[Any]) -> list[tuple]:
    """Run ``sql`` (``%s`` or ``%(name)s`` placeholders) with ``params`` and return its rows (an
    empty list for a statement that returns none). Prepared on PostgreSQL; elsewhere (SQLite) it
    runs through Django's cursor as any query."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    import psycopg

    connection.ensure_connection()
    start = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        rows = cursor.fetchall() if cursor.description else []
    _log([sql], start, "prepared")
    return rows


def fetch_prepared_batch(
    statements: list[tuple[str, dict[str, Any] | list[Any]]], *, commit: bool = False
) -> list[list]:
    """Run ``statements`` in order in one round trip (psycopg's pipeline mode; inside a
    transaction its BEGIN goes in the same round trip) and return each one's rows. Each is
    prepared as in ``fetch_prepared``; an error in one raises after the batch, as Django's
    error, and the statements after it did not run. PostgreSQL only.

    ``commit=True`` (from a caller whose ``transaction.atomic`` block holds nothing else) ends
    the batch with COMMIT, in the same round trip, when that block is the outermost one and
    commits on exit: when it exits, Django's commit finds nothing left to commit (psycopg skips
    it) and runs the ``on_commit`` callbacks as usual. In a savepoint (an enclosing transaction,
    as in the tests) nothing is committed and the enclosing block decides. After an error the
    transaction is not committed, and the block rolls it back."""
    import psycopg

    if commit and not connection.in_atomic_block:
        raise RuntimeError("commit=True needs a transaction.atomic block")
    commit = commit and not connection.savepoint_ids and connection.commit_on_exit
    connection.ensure_connection()
    start = time.monotonic()
    raw = connection.connection
    with connection.wrap_database_errors:
        cursors = [psycopg.Cursor(raw) for _ in statements]
        try:
            with raw.pipeline():
                for cursor, (sql, params) in zip(cursors, statements, strict=True):
                    cursor.execute(sql, params, prepare=True)
                if commit:
                    raw.execute("COMMIT")
            results = [cursor.fetchall() if cursor.description else [] for cursor in cursors]
        finally:
            for cursor in cursors:
                cursor.close()
    _log([sql for sql, _ in statements] + ["COMMIT"] * commit, start, "prepared, batched")
    return results


def fetch_in_snapshot(
    statements: list[tuple[str, dict[str, Any] | list[Any]]],
    *,
    workers: int,
    settings: dict[str, str] | None = None,
    inherit: tuple[str, ...] = (),
) -> list[list[tuple]]:
    """Run read-only ``statements`` at once on ``workers`` connections of their own that all
    read THIS transaction's snapshot (``pg_export_snapshot``, imported with ``SET TRANSACTION
    SNAPSHOT`` in a read-only repeatable-read transaction), each taking the next statement when
    done; return each statement's rows, in order. PostgreSQL only.

    The results are those of one statement run here, except that the other connections do not
    see this transaction's own uncommitted writes: call it only from a transaction that has
    written nothing they must read (row locks are fine). ``settings`` are set for each
    connection's transaction (``set_config(..., true)``), after the settings named in
    ``inherit``, which take this transaction's current values (for example the ``work_mem`` a
    caller set with ``SET LOCAL``). Parameters are bound on the server.
    The first error stops the other connections after their current statement and is raised
    here as Django's error (``OperationalError`` when a connection cannot be opened)."""
    import psycopg
    from psycopg import sql as psql

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_export_snapshot(),"
            " ARRAY(SELECT current_setting(name) FROM unnest(%s::text[]) AS name)",
            [list(inherit)],
        )
        snapshot, inherited = cursor.fetchone()
    settings = {**dict(zip(inherit, inherited, strict=True)), **(settings or {})}
    results: list[list[tuple] | None] = [None] * len(statements)
    errors: list[BaseException] = []
    lock = threading.Lock()
    pending = list(range(len(statements)))

    def work() -> None:
        own = connection.copy()
        try:
            with own.wrap_database_errors:
                own.ensure_connection()
                raw = own.connection
                raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                raw.execute(psql.SQL("SET TRANSACTION SNAPSHOT {}").format(psql.Literal(snapshot)))
                for name, value in settings.items():
                    raw.execute("SELECT set_config(%s, %s, true)", [name, value])
                while True:
                    with lock:
                        if errors or not pending:
                            break
                        index = pending.pop(0)
                    with psycopg.Cursor(raw) as cursor:
                        cursor.execute(*statements[index])
                        results[index] = cursor.fetchall() if cursor.description else []
                raw.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 (raised in the caller's thread)
            with lock:
                errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=work) for _ in range(min(workers, len(statements)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]


def _log(statements: list[str], start: float, how: str) -> None:
    """Show statements run past Django's cursor in ``connection.queries`` when it logs them."""
    if connection.queries_logged:
        elapsed = f"{time.monotonic() - start:.3f}"
        connection.queries_log.extend(
            {"sql": f"{sql} -- {how}", "time": elapsed} for sql in statements
        )
