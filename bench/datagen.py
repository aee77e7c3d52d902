"""Synthetic national-scale data, loaded with COPY into the portal's real tables.

Deterministic: the same seed and sizes give the same rows. Rows are generated as COPY text in large
chunks (no numpy): every value that can be is precomputed once (IBANs, amount strings, dates) and a
row is one ``%`` format. Before loading, the tables' indexes, unique/primary keys and foreign
keys are dropped (their definitions are kept) and rebuilt after the load, then the tables are
VACUUM ANALYZEd.

Columns the generator does not know (a feature added a field) get the field's default, NULL when
nullable, or a neutral value of its type, so the generator keeps working as the schema grows.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import multiprocessing
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

from bench import common

BANK_LETTERS = ["BNCH", "HABB", "MUCB", "UNIL", "ALFH"]
UNMATCHED_SHARE = 0.10  # receipts to IBANs the portal does not know
STRIPE_SHARE = 0.01  # receipts from Stripe (never counted: the bank remittance carries them)
REVERSED_SHARE = 0.01
NON_IT_SHARE = 0.04  # receipts under a purpose code that is not IT/ITeS
NON_USD_SHARE = 0.15
RETAINED_SHARE = 0.30  # receipts of which half was kept in dollars
NON_IT_CODE = ("9999", "Bench: other business services", "other")
COUNTRIES = ["US", "US", "US", "GB", "GB", "AE", "DE", "CA", "AU", "SA", "NL", "SG"]
PROVINCES = [
    "punjab",
    "punjab",
    "punjab",
    "sindh",
    "sindh",
    "khyber_pakhtunkhwa",
    "islamabad",
    "balochistan",
    "gilgit_baltistan",
    "azad_kashmir",
]
STATUSES = (
    ["approved"] * 70
    + ["submitted"] * 10
    + ["draft"] * 10
    + ["changes_requested"] * 3
    + ["rejected"] * 4
    + ["suspended"] * 3
)
CITIES = ["Lahore", "Karachi", "Islamabad", "Peshawar", "Quetta", "Multan", "Faisalabad"]
# One password hash for every bench user: "bench-password" is never used to sign in (the admin
# benchmark uses force_login), so an unusable password keeps the load fast.
UNUSABLE_PASSWORD = "!bench-unusable-password"
CHUNK = 200_000


@dataclass(frozen=True)
class Dataset:
    """What was loaded; stored in bench_dataset so a later run can reuse the database."""

    freelancers: int
    receipts: int
    first_day: str  # ISO date, inclusive
    last_day: str  # ISO date, inclusive
    seed: int = common.SEED
    version: int = 3

    @property
    def days(self) -> list[datetime.date]:
        first = datetime.date.fromisoformat(self.first_day)
        last = datetime.date.fromisoformat(self.last_day)
        return [first + datetime.timedelta(n) for n in range((last - first).days + 1)]


# --- Values ---------------------------------------------------------------------------------------


def iban(bank_letters: str, account: int) -> str:
    """A Pakistani IBAN with correct ISO 7064 mod 97-10 check digits (fast path of stdnum's)."""
    bban = f"{bank_letters}{account:016d}"
    digits = "".join(str(int(c, 36)) for c in bban + "PK00")
    return f"PK{98 - int(digits) % 97:02d}{bban}"


_IBAN_CACHE: dict[int, list[str]] = {}


def freelancer_ibans(n: int) -> list[str]:
    """The IBAN of each freelancer's account (index = freelancer id), computed once."""
    if n not in _IBAN_CACHE:
        _IBAN_CACHE[n] = [""] + [
            iban(BANK_LETTERS[i % len(BANK_LETTERS)], i) for i in range(1, n + 1)
        ]
    return _IBAN_CACHE[n]


def cnic(n: int) -> str:
    """Unique 13-digit CNIC for freelancer number n (accepted by stdnum's pk.cnic)."""
    region = ("35202", "42101", "61101", "17301", "54400", "37405")[n % 6]
    return f"{region}{n:07d}{1 + n % 9}"


def cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


def copy_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def fallback_value(field) -> Callable[[int], str] | str:
    """COPY text for a column the generator does not know: default, NULL, or a neutral value."""
    if field.null:
        return "\\N"
    if field.has_default():
        value = field.get_default()
        if callable(value):
            value = value()
        return _copy_text(value)
    internal = field.get_internal_type()
    if field.unique:
        if internal == "UUIDField":
            return lambda i: str(uuid.UUID(int=i))
        return lambda i: f"bench-{field.column}-{i}"
    if internal in {"CharField", "TextField", "SlugField", "EmailField", "URLField"}:
        return ""
    if internal in {"BooleanField"}:
        return "f"
    if internal in {"DateTimeField"}:
        return "2024-01-01 00:00:00+00"
    if internal in {"DateField"}:
        return "2024-01-01"
    if internal in {"JSONField"}:
        return "{}"
    if internal.endswith("IntegerField") or internal in {"DecimalField", "FloatField"}:
        return "0"
    raise RuntimeError(
        f"bench.datagen cannot fill {field.model.__name__}.{field.name} ({internal}, NOT NULL, "
        "no default): teach bench/datagen.py about it"
    )


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, datetime.datetime | datetime.date | decimal.Decimal | uuid.UUID):
        return copy_escape(str(value))
    if isinstance(value, dict | list):
        return copy_escape(json.dumps(value))
    return copy_escape(str(value))


class RowTemplate:
    """Builds one table's COPY lines from the generator's known columns plus fallbacks."""

    def __init__(self, model, known: list[str]):
        self.table = model._meta.db_table
        self.columns: list[str] = []
        parts: list[str] = []
        self.per_row: list[Callable[[int], str]] = []
        fields = [f for f in model._meta.concrete_fields]
        missing = set(known) - {f.column for f in fields}
        if missing:
            raise RuntimeError(f"{self.table} has no column(s) {sorted(missing)}")
        order = {c: i for i, c in enumerate(known)}
        self.known_order: list[str] = []
        for f in fields:
            self.columns.append(f.column)
            if f.column in order:
                parts.append("%s")
                self.known_order.append(f.column)
                continue
            value = fallback_value(f)
            if callable(value):
                parts.append("%s")
                self.per_row.append(value)
                self.known_order.append(f"__fallback_{len(self.per_row) - 1}")
            else:
                parts.append(value.replace("%", "%%"))
        self.template = "\t".join(parts)
        self.position = {c: i for i, c in enumerate(self.known_order)}

    def reorder(self, known: list[str]) -> Callable[[tuple], tuple]:
        """A function turning a tuple in ``known`` order into the template's %s order."""
        index = [
            known.index(c) if not c.startswith("__fallback_") else None for c in self.known_order
        ]
        if index == list(range(len(known))) and not self.per_row:
            return lambda values: values
        fallbacks = self.per_row

        def arrange(values: tuple) -> tuple:
            out = []
            k = 0
            for i in index:
                if i is None:
                    out.append(fallbacks[k](values[0]))
                    k += 1
                else:
                    out.append(values[i])
            return tuple(out)

        return arrange

    def copy_sql(self) -> str:
        cols = ", ".join(f'"{c}"' for c in self.columns)
        return f'COPY "{self.table}" ({cols}) FROM STDIN'


def copy_rows(conn, template: RowTemplate, known: list[str], rows: Iterable[tuple]) -> int:
    """COPY rows (tuples in ``known`` order, first item the id) in chunks of text."""
    arrange = template.reorder(known)
    fmt = template.template
    count = 0
    with conn.cursor() as cur, cur.copy(template.copy_sql()) as copy:
        buf: list[str] = []
        for values in rows:
            buf.append(fmt % arrange(values))
            if len(buf) >= CHUNK:
                copy.write("\n".join(buf) + "\n")
                count += len(buf)
                buf.clear()
        if buf:
            copy.write("\n".join(buf) + "\n")
            count += len(buf)
    return count


def copy_parallel(
    db_name: str,
    template: RowTemplate,
    known: list[str],
    rows: Callable[[int, int], Iterable[tuple]],
    start: int,
    stop: int,
    workers: int | None = None,
) -> int:
    """COPY ids [start, stop) from ``workers`` forked processes, each on its own connection.

    Rows are deterministic per chunk of ids, so the split does not change the data.
    """
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    total = stop - start
    if workers == 1 or total < 4 * CHUNK:
        with common.admin_connect(db_name, autocommit=False) as conn:
            count = copy_rows(conn, template, known, rows(start, stop))
            conn.commit()
        return count
    per = -(-total // workers // CHUNK) * CHUNK  # whole chunks per worker
    ctx = multiprocessing.get_context("fork")
    procs = []
    for k in range(workers):
        lo, hi = start + k * per, min(stop, start + (k + 1) * per)
        if lo >= hi:
            break
        proc = ctx.Process(target=_copy_worker, args=(db_name, template, known, rows, lo, hi))
        proc.start()
        procs.append(proc)
    for proc in procs:
        proc.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"a COPY worker failed (exit codes {failed})")
    return total


def _copy_worker(db_name, template, known, rows, lo, hi) -> None:
    with common.admin_connect(db_name, autocommit=False) as conn:
        copy_rows(conn, template, known, rows(lo, hi))
        conn.commit()


# --- Dropping and rebuilding indexes and constraints ----------------------------------------------


def _saved_definitions(conn, tables: list[str]) -> dict[str, list[str]]:
    """The DDL to rebuild the tables' keys, indexes and the foreign keys touching them."""
    oids = [f'"{t}"' for t in tables]
    rows = conn.execute(
        """
        SELECT c.conname, c.conrelid::regclass::text, c.contype, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.contype IN ('p', 'u', 'f')
          AND (c.conrelid = ANY(%(oids)s::regclass[]) OR c.confrelid = ANY(%(oids)s::regclass[]))
        """,
        {"oids": oids},
    ).fetchall()
    keys = [(n, t, d) for n, t, ty, d in rows if ty in "pu" and t.strip('"') in tables]
    fks = [(n, t, d) for n, t, ty, d in rows if ty == "f"]
    constraint_names = {n for n, _, _ in keys}
    indexes = conn.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
        """,
        [tables],
    ).fetchall()
    return {
        "drop_fk": [f'ALTER TABLE {t} DROP CONSTRAINT "{n}"' for n, t, _ in fks],
        "drop_key": [f'ALTER TABLE {t} DROP CONSTRAINT "{n}"' for n, t, _ in keys],
        "drop_index": [f'DROP INDEX "{n}"' for n, _ in indexes if n not in constraint_names],
        "add_key": [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for n, t, d in keys],
        "add_index": [d for n, d in indexes if n not in constraint_names],
        "add_fk": [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for n, t, d in fks],
    }


def _run(conn, statements: list[str], log: Callable[[str], None] | None = None) -> None:
    for sql in statements:
        start = time.perf_counter()
        conn.execute(sql)
        if log:
            log(f"  {time.perf_counter() - start:6.1f}s  {sql[:110]}")


# --- Row generators -------------------------------------------------------------------------------


def _freelancer_rows(n: int, rng: random.Random) -> Iterator[tuple]:
    statuses = [rng.choice(STATUSES) for _ in range(997)]
    base = datetime.datetime(2023, 1, 1, 9, 0, tzinfo=datetime.UTC)
    for i in range(1, n + 1):
        status = statuses[i % 997]
        created = base + datetime.timedelta(minutes=i % 500_000)
        submitted = "\\N" if status == "draft" else str(created + datetime.timedelta(days=1))
        approved = status in ("approved", "suspended")
        yield (
            i,
            i,
            f"Bench Freelancer {i}",
            cnic(i),
            f"{1970 + i % 35}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            f"+92300{i:07d}",
            f"House {i % 900}, Street {i % 70}",
            CITIES[i % len(CITIES)],
            PROVINCES[i % len(PROVINCES)],
            status,
            f"PSEB-F-2023-{i:07d}" if approved else "\\N",
            submitted,
            str(created + datetime.timedelta(days=3)) if approved else "\\N",
            "2099-01-01" if approved else "\\N",
            str(created),
            str(created),
        )


FREELANCER_COLUMNS = [
    "id",
    "user_id",
    "full_name",
    "cnic",
    "date_of_birth",
    "mobile",
    "address",
    "city",
    "province",
    "status",
    "registration_number",
    "submitted_at",
    "approved_at",
    "expires_on",
    "created_at",
    "updated_at",
]
USER_COLUMNS = [
    "id",
    "password",
    "last_login",
    "is_superuser",
    "username",
    "first_name",
    "last_name",
    "email",
    "is_staff",
    "is_active",
    "date_joined",
]


def _user_rows(n: int) -> Iterator[tuple]:
    for i in range(1, n + 1):
        yield (
            i,
            UNUSABLE_PASSWORD,
            "\\N",
            "f",
            f"bench{i}",
            "Bench",
            f"Freelancer {i}",
            f"bench{i}@example.pk",
            "f",
            "t",
            "2023-01-01 09:00:00+00",
        )


ACCOUNT_COLUMNS = [
    "id",
    "iban",
    "currency",
    "holder_cnic",
    "bank_id",
    "freelancer_id",
    "opened_on",
    "closed_on",
    "created_at",
]
RECEIPT_COLUMNS = [
    "id",
    "source",
    "bank_id",
    "reference",
    "iban",
    "account_id",
    "freelancer_id",
    "amount",
    "currency",
    "usd_amount",
    "pkr_rate",
    "value_date",
    "purpose_code_id",
    "retained_amount",
    "tax_withheld_pkr",
    "remitter_name",
    "remitter_country",
    "reversed_on",
    "reversal_reason",
    "created_at",
]


class ReceiptFactory:
    """Receipt rows from precomputed pools; each freelancer has a size and a growth rate."""

    def __init__(self, ds: Dataset, bank_ids: list[int], it_codes: list[int], non_it_code: int):
        rng = random.Random(ds.seed)
        self.ds = ds
        self.bank_ids = bank_ids
        self.it_codes = it_codes
        self.non_it_code = non_it_code
        # Amount ladder: 400 geometric steps from USD 20 to about USD 20,000 (in cents).
        self.ladder = [int(2000 * 1.0174**k) for k in range(400)]
        self.usd = [cents(c) for c in self.ladder]
        self.half = [cents(c // 2) for c in self.ladder]
        # EUR at 1.08 USD: amount in EUR, usd_amount the bank's USD equivalent.
        self.eur = [cents(max(1, int(c / 1.08))) for c in self.ladder]
        self.eur_half = [cents(max(1, int(c / 1.08)) // 2) for c in self.ladder]
        # Per freelancer: a base step (skewed: most small, a few large) and a growth shift.
        n = ds.freelancers
        self.base = [min(330, int(rng.betavariate(2, 5) * 400)) for _ in range(n + 1)]
        self.growth = [rng.choice((-20, -10, 0, 5, 10, 15, 25, 40)) for _ in range(n + 1)]
        self.days = [d.isoformat() for d in ds.days]
        self.created = [f"{d} 10:00:00+05" for d in self.days]
        self.split_day = len(self.days) // 2
        self.reversed_on = [(d + datetime.timedelta(days=3)).isoformat() for d in ds.days]
        self.unmatched_ibans = [iban("ZZZZ", 9_000_000 + k) for k in range(50_000)]
        self.ibans = freelancer_ibans(n)
        self.tax = [cents(c // 100) for c in self.ladder]

    def rows(self, start: int, stop: int, day_index: Callable[[random.Random], int] | None = None):
        """Receipts with ids [start, stop): deterministic per chunk of CHUNK ids."""
        for chunk_start in range(start, stop, CHUNK):
            rng = random.Random(self.ds.seed * 1_000_003 + chunk_start)
            yield from self._chunk(rng, chunk_start, min(stop, chunk_start + CHUNK), day_index)

    def _chunk(self, rng: random.Random, start: int, stop: int, day_index):
        # Hot loop (tens of millions of rows): only random() calls, list lookups and one tuple.
        n_free = self.ds.freelancers
        n_days = len(self.days)
        banks = self.bank_ids
        n_banks = len(banks)
        it_codes = self.it_codes
        n_codes = len(it_codes)
        base, growth, split = self.base, self.growth, self.split_day
        usd, half, eur, eur_half, ladder_tax = (
            self.usd,
            self.half,
            self.eur,
            self.eur_half,
            self.tax,
        )
        days, created, reversed_days = self.days, self.created, self.reversed_on
        ibans, unmatched = self.ibans, self.unmatched_ibans
        non_it = self.non_it_code
        countries = COUNTRIES
        n_countries = len(countries)
        rnd = rng.random
        null = "\\N"
        for rid in range(start, stop):
            r = rnd()
            fid = int(rnd() * n_free) + 1
            d = day_index(rng) if day_index else int(rnd() * n_days)
            step = base[fid] + int(rnd() * 51) - 25 + (growth[fid] if d >= split else 0)
            step = 0 if step < 0 else (399 if step > 399 else step)
            if r < UNMATCHED_SHARE:
                account = freelancer = null
                account_iban = unmatched[rid % 50_000]
            else:
                account = freelancer = fid
                account_iban = ibans[fid]
            retained = r > 1 - RETAINED_SHARE
            r2 = rnd()
            if r2 < NON_USD_SHARE:
                amount, currency, rate = eur[step], "EUR", "301.250000"
                retained_amount = eur_half[step] if retained else "0.00"
            else:
                amount, currency, rate = usd[step], "USD", "278.500000"
                retained_amount = half[step] if retained else "0.00"
            r3 = rnd()
            reversed_on = reversed_days[d] if r3 < REVERSED_SHARE else null
            yield (
                rid,
                "stripe" if r3 > 1 - STRIPE_SHARE else "bank",
                banks[fid % n_banks],
                f"R{rid:011d}",
                account_iban,
                account,
                freelancer,
                amount,
                currency,
                usd[step],
                rate,
                days[d],
                non_it if r2 > 1 - NON_IT_SHARE else it_codes[rid % n_codes],
                retained_amount,
                "0.00" if retained else ladder_tax[step],
                f"Client {rid % 9973}",
                countries[rid % n_countries],
                reversed_on,
                "" if reversed_on is null else "recalled by remitter",
                created[d],
            )


# --- Loading --------------------------------------------------------------------------------------

LOADED_TABLES = [
    "auth_user",
    "freelancers_freelancer",
    "freelancers_freelancer_categories",
    "payments_dollaraccount",
    "payments_receipt",
]


def stored_dataset(db_name: str) -> Dataset | None:
    if not common.database_exists(db_name):
        return None
    with common.admin_connect(db_name) as conn:
        exists = conn.execute("SELECT to_regclass('bench_dataset')").fetchone()[0]
        if not exists:
            return None
        row = conn.execute("SELECT params FROM bench_dataset").fetchone()
    return Dataset(**row[0]) if row else None


def ensure_dataset(db_name: str, ds: Dataset, reload: bool = False, log=print) -> bool:
    """Make ``db_name`` hold exactly ``ds`` (migrated schema + data). Returns True if loaded now.

    Must be called after ``common.setup_django(db_name)`` (it uses the models to find columns).
    """
    if not reload and stored_dataset(db_name) == ds:
        log(f"reusing {db_name}: {asdict(ds)}")
        migrate(log)
        return False
    log(f"loading {db_name}: {asdict(ds)}")
    common.recreate_database(db_name)
    migrate(log)
    load(db_name, ds, log)
    return True


def migrate(log=print) -> None:
    from django.core.management import call_command
    from django.db import connections

    start = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    connections.close_all()
    log(f"  migrate: {time.perf_counter() - start:.1f}s")


def reference_ids(conn) -> tuple[list[int], list[int], int]:
    """Bench banks (created if missing), IT purpose-code ids, and the non-IT code's id."""
    for k, letters in enumerate(BANK_LETTERS):
        conn.execute(
            "INSERT INTO payments_bank (code, name, enabled, created_at)"
            " VALUES (%s, %s, true, now())"
            " ON CONFLICT (code) DO NOTHING",
            [f"BENCH{k}" if k else "BENCH", f"Bench bank {letters}"],
        )
    bank_ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM payments_bank WHERE code LIKE 'BENCH%%' ORDER BY code"
        )
    ]
    code, description, category = NON_IT_CODE
    conn.execute(
        "INSERT INTO payments_purposecode (code, description, category, is_it, retired)"
        " VALUES (%s, %s, %s, false, false) ON CONFLICT (code) DO NOTHING",
        [code, description, category],
    )
    it_codes = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM payments_purposecode WHERE is_it AND NOT retired ORDER BY code"
        )
    ]
    non_it = conn.execute("SELECT id FROM payments_purposecode WHERE code = %s", [code]).fetchone()[
        0
    ]
    return bank_ids, it_codes, non_it


def load(db_name: str, ds: Dataset, log=print) -> None:
    from django.contrib.auth import get_user_model

    from freelancers.models import Freelancer
    from payments.models import DollarAccount, Receipt

    total = time.perf_counter()
    with common.admin_connect(db_name) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        bank_ids, it_codes, non_it = reference_ids(conn)
        defs = _saved_definitions(conn, LOADED_TABLES)
        with conn.transaction():
            _run(conn, defs["drop_fk"] + defs["drop_key"] + defs["drop_index"])

        n = ds.freelancers
        rng = random.Random(ds.seed)
        steps: list[tuple[str, Callable[[], int]]] = [
            (
                "auth_user",
                lambda: copy_rows(
                    conn, RowTemplate(get_user_model(), USER_COLUMNS), USER_COLUMNS, _user_rows(n)
                ),
            ),
            (
                "freelancers_freelancer",
                lambda: copy_rows(
                    conn,
                    RowTemplate(Freelancer, FREELANCER_COLUMNS),
                    FREELANCER_COLUMNS,
                    _freelancer_rows(n, rng),
                ),
            ),
            ("freelancers_freelancer_categories", lambda: _load_categories(conn, n)),
            (
                "payments_dollaraccount",
                lambda: copy_rows(
                    conn,
                    RowTemplate(DollarAccount, ACCOUNT_COLUMNS),
                    ACCOUNT_COLUMNS,
                    (
                        (
                            i,
                            iban(BANK_LETTERS[i % len(BANK_LETTERS)], i),
                            "USD",
                            cnic(i),
                            bank_ids[i % len(bank_ids)],
                            i,
                            "2022-07-01",
                            "\\N",
                            "2022-07-01 10:00:00+05",
                        )
                        for i in range(1, n + 1)
                    ),
                ),
            ),
            (
                "payments_receipt",
                lambda: copy_parallel(
                    db_name,
                    RowTemplate(Receipt, RECEIPT_COLUMNS),
                    RECEIPT_COLUMNS,
                    ReceiptFactory(ds, bank_ids, it_codes, non_it).rows,
                    1,
                    ds.receipts + 1,
                ),
            ),
        ]
        for table, step in steps:
            start = time.perf_counter()
            with conn.transaction():
                rows = step()
            log(f"  COPY {table}: {rows:,} rows in {time.perf_counter() - start:.1f}s")
        start = time.perf_counter()
        _run(conn, defs["add_key"] + defs["add_index"], log)
        _run(conn, defs["add_fk"], log)
        log(f"  keys, indexes, foreign keys: {time.perf_counter() - start:.1f}s")
        for table in LOADED_TABLES:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        start = time.perf_counter()
        for table in LOADED_TABLES:
            # A table the data set leaves empty (the ingestion benchmark's receipts) stays as
            # migrate leaves it, never analyzed, as in a deployment. Statistics saying "0 rows"
            # made each connection's cached plans scan it sequentially as the run filled it:
            # PostgreSQL CPU per delivery grew from 1.5 to 5.7 ms over 6,000 deliveries
            # (bench/RESULTS.md, fourth session).
            if conn.execute(f"SELECT EXISTS (SELECT FROM {table})").fetchone()[0]:  # noqa: S608
                conn.execute(f"VACUUM (ANALYZE) {table}")
        log(f"  VACUUM ANALYZE: {time.perf_counter() - start:.1f}s")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_dataset (params jsonb NOT NULL)")
        conn.execute("DELETE FROM bench_dataset")
        conn.execute("INSERT INTO bench_dataset VALUES (%s)", [json.dumps(asdict(ds))])
    log(f"  loaded in {time.perf_counter() - total:.1f}s")


def _load_categories(conn, n: int) -> int:
    ids = [r[0] for r in conn.execute("SELECT id FROM freelancers_servicecategory ORDER BY id")]
    if not ids:
        return 0

    def rows():
        k = 0
        for i in range(1, n + 1):
            for j in range(1 + i % 2):
                k += 1
                yield f"{k}\t{i}\t{ids[(i + j * 3) % len(ids)]}"

    count = 0
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY freelancers_freelancer_categories (id, freelancer_id, servicecategory_id)"
            " FROM STDIN"
        ) as copy,
    ):
        buf: list[str] = []
        for line in rows():
            buf.append(line)
            if len(buf) >= CHUNK:
                copy.write("\n".join(buf) + "\n")
                count += len(buf)
                buf.clear()
        if buf:
            copy.write("\n".join(buf) + "\n")
            count += len(buf)
    return count
