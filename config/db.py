"""Prepared statements for the few hot statements that run on every webhook delivery.

Django's PostgreSQL backend binds parameters on the client (psycopg's ``ClientCursor``), so
PostgreSQL parses and plans every statement each time it runs. For a statement that runs on every
delivery that planning is a third of its cost (the one-statement remittance insert: about 0.6 ms
of 2 ms, bench/RESULTS.md). ``fetch_prepared`` and ``fetch_prepared_batch`` prepare such a
statement once per connection (SQL ``PREPARE``) and run it with ``EXECUTE``, a batch of them in
one message and one round trip. Database errors are Django's, and the statements show in
``connection.queries`` when queries are logged (tests count them), as any other; on SQLite
``fetch_prepared`` is a plain query, so a caller with portable SQL needs no branch.
``DB_PREPARED_STATEMENTS=false`` (config/settings/base.py, for a transaction-pooling PgBouncer,
which does not carry SQL-level prepared statements from one transaction to the next) turns
preparing off; the statements then run as they are, their values inlined.
"""

import functools
import itertools
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)
T = TypeVar("T")


def fetch_prepared(sql: str, params: dict[str, Any] | list[Any]) -> list[tuple]:
    """Run ``sql`` (``%s`` or ``%(name)s`` placeholders) with ``params`` and return its rows (an
    empty list for a statement that returns none). Prepared on PostgreSQL (a batch of one,
    ``fetch_prepared_batch``); elsewhere (SQLite) it runs through Django's cursor as any query."""
    if connection.vendor != "postgresql":
        return _fetch_plain(sql, params)
    return fetch_prepared_batch([(sql, params)])[0]


def _fetch_plain(sql: str, params: dict[str, Any] | list[Any]) -> list[tuple]:
    """``sql`` through Django's cursor, as any query (SQLite)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def fetch_bound(sql: str, params: dict[str, Any] | list[Any]) -> list[tuple]:
    """Run ``sql`` once with ``params`` bound on the server, in binary, and return its rows (an
    empty list for a statement that returns none): for a statement with large array parameters
    (a day's ~20,000 stale-mark ids), which would cost more as SQL text than the statement
    itself (quoted in Python, parsed by the server). Not prepared: PostgreSQL plans it with the
    values it got, so an ``= ANY(array)`` is hashed. Elsewhere (SQLite) a plain query."""
    if connection.vendor != "postgresql":
        return _fetch_plain(sql, params)
    import psycopg

    connection.ensure_connection()
    start = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        # Never prepared by psycopg either: a connection where psycopg has prepared something
        # gets DEALLOCATE ALL from it after a rollback, which would drop this module's statements.
        cursor.execute(sql, params, binary=True, prepare=False)
        rows = cursor.fetchall() if cursor.description else []
    _log([sql], start, "bound")
    return rows


def fetch_prepared_batch(
    statements: list[tuple[str, dict[str, Any] | list[Any]]], *, commit: bool = False
) -> list[list]:
    """Run ``statements`` in order in one round trip and return each one's rows.

    The batch goes to PostgreSQL as ONE message of the simple query protocol (a BEGIN when the
    caller's transaction has not started yet, one ``EXECUTE`` per statement, and the COMMIT when
    asked), so the server wakes once per batch, not once per statement as in psycopg's pipeline
    mode, which flushes every statement separately. Each statement is prepared once per
    connection with SQL ``PREPARE``, declaring the parameter types psycopg itself would send,
    and its parameters travel as literals quoted by psycopg (``Transformer.as_literal``); with
    prepared statements turned off (``DB_PREPARED_STATEMENTS=false``) each statement is sent
    whole, its values inlined the same way. An error in one statement raises, as Django's error,
    and the statements after it did not run. PostgreSQL only.

    ``commit=True`` (from a caller whose ``transaction.atomic`` block holds nothing else) ends
    the batch with COMMIT, in the same round trip, when that block is the outermost one and
    commits on exit: when it exits, Django's commit finds nothing left to commit (psycopg skips
    it) and runs the ``on_commit`` callbacks as usual. In a savepoint (an enclosing transaction,
    as in the tests) nothing is committed and the enclosing block decides. After an error the
    transaction is not committed, and the block rolls it back."""
    from psycopg import adapt, pq
    from psycopg import errors as pg_errors
    from psycopg.generators import execute

    if commit and not connection.in_atomic_block:
        raise RuntimeError("commit=True needs a transaction.atomic block")
    commit = commit and not connection.savepoint_ids and connection.commit_on_exit
    connection.ensure_connection()
    start = time.monotonic()
    raw = connection.connection
    with connection.wrap_database_errors:
        state = _states.get(raw)
        if state is None:
            state = _states[raw] = _ConnectionState(adapt.Transformer(raw), {})
        transformer = state.transformer
        parts = [_executable(raw, state, sql, params) for sql, params in statements]
        # psycopg opens a transaction lazily, before a connection's first statement in it; this
        # message goes past psycopg, so it says BEGIN itself.
        first = 0
        if not raw.autocommit and raw.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            parts.insert(0, b"BEGIN")
            first = 1
        if commit:
            parts.append(b"COMMIT")
        raw.pgconn.send_query(b"; ".join(parts))
        results = raw.wait(execute(raw.pgconn))
        for result in results:
            if result.status == pq.ExecStatus.FATAL_ERROR:
                error = pg_errors.error_from_result(result, encoding=raw.info.encoding)
                if isinstance(error, pg_errors.InvalidSqlStatementName):
                    # Something deallocated the connection's statements (DISCARD ALL,
                    # DEALLOCATE ALL): prepare them anew next time.
                    state.prepared.clear()
                raise error
        rows = []
        for result in results[first : first + len(statements)]:
            if result.status != pq.ExecStatus.TUPLES_OK:
                rows.append([])
                continue
            transformer.set_pgresult(result)
            rows.append(transformer.load_rows(0, result.ntuples, tuple))
    how = "prepared, batched" if len(statements) > 1 or commit else "prepared"
    _log([sql for sql, _ in statements] + ["COMMIT"] * commit, start, how)
    return rows


# psycopg placeholders: %(name)s, %s, and %% for a literal %.
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")


@dataclass
class _ConnectionState:
    """What a psycopg connection keeps for its batches: a Transformer (as a psycopg cursor keeps
    its own, so its dumpers stay cached) and, per (sql, parameter types), the name of the SQL
    statement prepared for it."""

    transformer: Any
    prepared: dict[tuple, bytes]


_states: "weakref.WeakKeyDictionary[Any, _ConnectionState]" = weakref.WeakKeyDictionary()
_statement_numbers = itertools.count(1)


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> tuple[str, tuple[str, ...] | int]:
    """``sql`` with psycopg's placeholders as ``$1``, ``$2``...; and the parameter names in that
    order (``%(name)s``), or how many there are (``%s``). A ``$`` and a digit already in ``sql``
    would be read as a parameter, by ``PREPARE`` and by the inlining alike: refused."""
    if re.search(r"\$\d", sql):
        raise ValueError("SQL for fetch_prepared must not contain $<digit> outside placeholders")
    names: dict[str, int] = {}
    count = 0

    def number(match: re.Match) -> str:
        nonlocal count
        if match.group(0) == "%%":
            return "%"
        name = match.group(1)
        if name is None:
            count += 1
            return f"${count}"
        return f"${names.setdefault(name, len(names) + 1)}"

    text = _PLACEHOLDER.sub(number, sql)
    return text, tuple(names) if names else count


def _executable(
    raw, state: _ConnectionState, sql: str, params: dict[str, Any] | list[Any]
) -> bytes:
    """``sql`` with ``params`` as one statement of a simple-query message: ``EXECUTE`` of the
    connection's prepared statement for it (prepared here first, in a round trip of its own, the
    first time), or the statement itself with its values inlined when preparing is off."""
    transformer = state.transformer
    text, order = _numbered(sql)
    values = [params[name] for name in order] if isinstance(order, tuple) else list(params)
    literals = [b"NULL" if value is None else transformer.as_literal(value) for value in values]
    if raw.prepare_threshold is None:
        return re.sub(rb"\$(\d+)", lambda m: literals[int(m.group(1)) - 1], text.encode())
    from psycopg.adapt import PyFormat

    transformer.dump_sequence(values, [PyFormat.AUTO] * len(values))
    key = (sql, transformer.types)
    name = state.prepared.get(key)
    if name is None:
        # Never reused in this process, so a statement deallocated alone cannot collide.
        name = f"portal_batch_{next(_statement_numbers)}".encode()
        types = ", ".join(_type_name(transformer, oid) for oid in transformer.types)
        declared = f" ({types})" if values else ""
        raw.execute(f"PREPARE {name.decode()}{declared} AS {text}")
        state.prepared[key] = name
    if not values:
        return b"EXECUTE " + name
    return b"EXECUTE " + name + b"(" + b", ".join(literals) + b")"


def _type_name(transformer, oid: int) -> str:
    """The SQL name of the type psycopg would send a parameter as (``unknown``: inferred)."""
    info = transformer.adapters.types.get(oid) if oid else None
    if info is None:
        return "unknown"
    return f"{info.name}[]" if oid == info.array_oid else info.name


def retry_if_stale(work: Callable[[], T]) -> T:
    """Run ``work`` on the request's persistent connection without Django's health check first,
    and once more on a new connection if that one turns out to be broken.

    With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before a request's first query on a
    connection kept from an earlier request: a round trip that, on the bank webhook, cost more
    wall time than the delivery's own statement (bench/RESULTS.md). ``work`` runs instead as if
    the check had passed; when it fails with a connection error (a server restart, an idle
    connection cut by a firewall), the broken connection is closed and ``work`` runs once more on
    a new one. ``work`` must therefore be safe to run twice: open and end its own transaction
    (nothing of a broken one is committed, or, if the COMMIT got through before the connection
    broke, the second run finds what the first stored) and report what it found. Inside a
    transaction, on a new connection or with the check off or done, ``work`` simply runs."""
    if (
        connection.connection is None
        or connection.in_atomic_block
        or not connection.health_check_enabled
        or connection.health_check_done
    ):
        return work()
    connection.health_check_done = True
    kept = connection.connection
    try:
        return work()
    except (OperationalError, InterfaceError):
        # Django may have replaced the broken connection already (an atomic block's exit closes
        # a connection its rollback failed on, and opens a new one to restore autocommit).
        if connection.connection is kept and connection.is_usable():
            raise  # not the connection: a real error, for the caller
        logger.warning("database connection was broken; reconnecting and running again")
        if connection.connection is kept:
            connection.close()
        return work()


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
    caller set with ``SET LOCAL``). Parameters are bound on the server, in binary.
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
                # One round trip: the transaction, its snapshot and its settings.
                setup = [
                    psql.SQL("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
                    psql.SQL("SET TRANSACTION SNAPSHOT {}").format(psql.Literal(snapshot)),
                    *(
                        psql.SQL("SELECT set_config({}, {}, true)").format(
                            psql.Literal(name), psql.Literal(value)
                        )
                        for name, value in settings.items()
                    ),
                ]
                raw.execute(psql.SQL("; ").join(setup))
                while True:
                    with lock:
                        if errors or not pending:
                            break
                        index = pending.pop(0)
                    with psycopg.Cursor(raw) as cursor:
                        # Binary: the parameters include arrays of thousands of numbers.
                        cursor.execute(*statements[index], binary=True)
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
