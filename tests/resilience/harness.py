"""Real processes for the resilience suite: Redis, a PostgreSQL database, gunicorn, Celery.

Everything here is started by the suite itself, as child processes in their own process groups,
so a fault can be injected by process id (SIGKILL a worker, stop Redis) without touching anything
else on the machine. Output of every process goes to a log file that the tests read afterwards
(CNICs and secrets must never appear there).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; raise TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})"
    )


class ManagedProcess:
    """A child process in its own process group, its output appended to ``log_path``."""

    def __init__(self, name: str, argv: list[str], *, env: dict, log_path: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole process group (the main process and its pool children) at once."""
        self.signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)
        self.kills += 1

    def stop(self, timeout: float = 30) -> None:
        """Ask politely (SIGTERM), then SIGKILL whatever is left of the group."""
        if not self.running():
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.proc.wait(timeout=30)
        # Pool children that outlived their parent die with the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class RedisServer(ManagedProcess):
    """A private redis-server (default port 6390), without persistence: a restart loses its queue,
    exactly as a crashed Redis without AOF would."""

    def __init__(self, *, port: int, log_dir: Path):
        argv = [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            "/tmp",
        ]
        super().__init__("redis", argv, env=dict(os.environ), log_path=log_dir / "redis.log")
        self.port = port
        self.outages = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        super().start()
        wait_until(self.ping, timeout=20, what=f"redis on {self.port}")

    def outage_stop(self) -> None:
        """Stop Redis abruptly (SIGKILL: no goodbye to clients, queue contents lost)."""
        self.kill()
        self.outages += 1
        wait_until(lambda: not self.ping(), timeout=10, what="redis to go down")


@dataclass
class LiveDatabase:
    """A PostgreSQL database of its own, created (from a migrated template) for the suite."""

    server_url: str  # postgres://user@host:port  (no database name)
    name: str
    app_names: list[str] = field(default_factory=list)

    @classmethod
    def from_database_url(cls, database_url: str, name: str) -> LiveDatabase:
        parts = urllib.parse.urlsplit(database_url)
        server = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        return cls(server_url=server, name=name)

    def dsn(self, dbname: str | None = None) -> str:
        parts = urllib.parse.urlsplit(self.server_url)
        return urllib.parse.urlunsplit(
            ("postgresql", parts.netloc, "/" + (dbname or self.name), "", "")
        )

    def url(self, application_name: str) -> str:
        """The DATABASE_URL for one of our processes; the application name lets a test find (and
        terminate) exactly that process's backends."""
        return f"{self.dsn()}?application_name={application_name}"

    def _admin(self):
        return psycopg.connect(self.dsn("postgres"), autocommit=True)

    def drop(self, name: str | None = None) -> None:
        name = name or self.name
        with self._admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    def create(self, template: str | None = None) -> None:
        self.drop()
        with self._admin() as conn:
            if template:
                conn.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{template}"')
            else:
                conn.execute(f'CREATE DATABASE "{self.name}"')

    def query(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, sql: str, params: tuple | dict = ()):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def backend_pids(self, application_name: str) -> list[int]:
        return [
            row[0]
            for row in self.query(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                (self.name, application_name),
            )
        ]

    def terminate(self, application_name: str) -> int:
        """pg_terminate_backend every connection the named process holds; returns how many."""
        rows = self.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s",
            (self.name, application_name),
        )
        return sum(1 for (ok,) in rows if ok)


@dataclass
class HttpResponse:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    def cookies(self) -> list[str]:
        return [value for key, value in self.headers.get("_set_cookie", [])]


def http_request(
    base_url: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 30,
) -> HttpResponse:
    """One request on a fresh connection (http.client, no cookie jar, no redirects)."""
    parts = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        hdrs["_set_cookie"] = [(k, v) for k, v in resp.getheaders() if k.lower() == "set-cookie"]
        return HttpResponse(resp.status, hdrs, data)
    finally:
        conn.close()


class PortalStack:
    """gunicorn + Celery worker + beat against one live database and the private Redis."""

    WEB_APP = "resil_web"
    WORKER_APP = "resil_worker"
    CLI_APP = "resil_cli"

    def __init__(self, *, db: LiveDatabase, redis: RedisServer, log_dir: Path, tag: str):
        self.db = db
        self.redis = redis
        self.log_dir = log_dir
        self.tag = tag
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.secret_key = "resilience-test-secret-key-" + "x7Kq2Lp9" * 6
        self.web = ManagedProcess(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--worker-class",
                "gthread",
                "--workers",
                os.environ.get("RESILIENCE_WEB_WORKERS", "4"),
                "--threads",
                "4",
                "--timeout",
                "120",
                "--graceful-timeout",
                "5",
                "--no-control-socket",
                "--access-logfile",
                "-",
                "--error-logfile",
                "-",
            ],
            env=self.env(self.WEB_APP),
            log_path=log_dir / f"{tag}-gunicorn.log",
        )
        self.worker = self._new_worker("worker")
        self.beat = ManagedProcess(
            "beat",
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(log_dir / f"{tag}-beat-schedule"),
            ],
            env=self.env(self.WORKER_APP),
            log_path=log_dir / f"{tag}-beat.log",
        )
        self.extra_workers: list[ManagedProcess] = []

    def env(self, application_name: str) -> dict:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "PYTEST_", "DATABASE_URL", "REDIS_URL"))
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.production",
                "SECRET_KEY": self.secret_key,
                "SECURE_SSL_REDIRECT": "false",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DATABASE_URL": self.db.url(application_name),
                "REDIS_URL": self.redis.url,
                "CONN_MAX_AGE": "60",
                "DEBUG": "false",
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                "PRIVATE_MEDIA_ROOT": str(self.log_dir / f"{self.tag}-media"),
                "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
            }
        )
        return env

    def _new_worker(self, name: str) -> ManagedProcess:
        return ManagedProcess(
            name,
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "-Q",
                "default,batch",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{name}-{self.tag}@%h",
            ],
            env=self.env(self.WORKER_APP),
            log_path=self.log_dir / f"{self.tag}-{name}.log",
        )

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self, *, worker: bool = True, beat: bool = False) -> None:
        self.web.start()
        self.wait_healthy()
        if worker:
            self.start_worker()
        if beat:
            self.beat.start()

    def stop(self) -> None:
        for proc in [self.beat, *self.extra_workers, self.worker, self.web]:
            proc.stop()

    def wait_healthy(self, timeout: float = 60) -> None:
        wait_until(
            lambda: self.get("/healthz").status == 200,
            timeout=timeout,
            what="gunicorn /healthz",
        )

    def start_worker(self) -> None:
        self.worker.start()
        wait_until(self.worker_ready, timeout=60, what="celery worker ready")

    def worker_ready(self) -> bool:
        # Celery logs "celery@<name> ready." once per start; the log file is appended across
        # restarts, so count them.
        return self.worker.log_text().count(" ready.") >= self.worker.starts

    def kill_worker(self) -> None:
        self.worker.kill()

    def add_worker(self, name: str) -> ManagedProcess:
        proc = self._new_worker(name)
        proc.start()
        wait_until(lambda: " ready." in proc.log_text(), timeout=60, what=f"{name} ready")
        self.extra_workers.append(proc)
        return proc

    # --- talking to it --------------------------------------------------------------------------
    def get(self, path: str, headers: dict | None = None, timeout: float = 30) -> HttpResponse:
        return http_request(self.base_url, "GET", path, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs) -> HttpResponse:
        return http_request(self.base_url, method, path, **kwargs)

    def manage(
        self, *args: str, check: bool = True, timeout: float = 600, stdin: str | None = None
    ):
        """Run ``manage.py`` against the live database (production settings, as an operator
        would), its output kept in the CLI log too."""
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env(self.CLI_APP),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
        )
        with open(self.log_dir / f"{self.tag}-cli.log", "a") as log:
            # Only the command's name: its arguments carry the suite's own secrets and CNICs.
            log.write(f"$ manage.py {args[0]} ...\n{result.stdout}{result.stderr}\n")
        if check and result.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def shell(self, code: str, *, timeout: float = 600) -> str:
        """Run Python in ``manage.py shell`` against the live database; returns its stdout."""
        return self.manage("shell", "--no-startup", "-c", code, timeout=timeout).stdout

    def shell_async(self, code: str) -> subprocess.Popen:
        """Start ``manage.py shell -c code`` without waiting (to act while it runs)."""
        return subprocess.Popen(
            [PYTHON, "manage.py", "shell", "--no-startup", "-c", code],
            cwd=ROOT,
            env=self.env(self.CLI_APP),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def tick_beat(self) -> list[str]:
        """Send every CELERY_BEAT_SCHEDULE task once, as beat would at its next tick (the schedule
        intervals are minutes; the suite does not wait for the clock)."""
        out = self.shell(
            "import json\n"
            "from django.conf import settings\n"
            "from config.celery import app\n"
            "sent = []\n"
            "for entry in settings.CELERY_BEAT_SCHEDULE.values():\n"
            "    app.send_task(entry['task'], args=entry.get('args', ()),"
            " kwargs=entry.get('kwargs', {}), **entry.get('options', {}))\n"
            "    sent.append(entry['task'])\n"
            "print(json.dumps(sent))\n"
        )
        return json.loads(out.strip().splitlines()[-1])

    def logs(self) -> dict[str, str]:
        return {path.name: path.read_text(errors="replace") for path in self.log_dir.glob("*.log")}


CSRF_TOKEN = "ResilienceCsrfToken0123456789abc"  # 32 characters from Django's alphabet


def session_headers(session_key: str | None) -> dict:
    """Headers of a browser holding this session (None: anonymous) and a CSRF cookie, so that
    unsafe methods pass Django's CSRF check over plain HTTP."""
    cookie = f"csrftoken={CSRF_TOKEN}"
    if session_key:
        cookie += f"; sessionid={session_key}"
    return {"Cookie": cookie, "X-CSRFToken": CSRF_TOKEN}


def create_session(stack: PortalStack, username: str, *, otp: bool = False) -> str:
    """A logged-in session for an existing user, written straight to the session store (no
    login form, so the login throttle and the second factor are tested separately). With
    ``otp`` the session is also marked as verified with a confirmed TOTP device, as after the
    admin's second-factor step."""
    out = stack.shell(
        "from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY,"
        " HASH_SESSION_KEY\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        f"user = get_user_model().objects.get(username={username!r})\n"
        "session = SessionStore()\n"
        "session[SESSION_KEY] = str(user.pk)\n"
        "session[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "session[HASH_SESSION_KEY] = user.get_session_auth_hash()\n"
        f"if {otp!r}:\n"
        "    from django_otp.plugins.otp_totp.models import TOTPDevice\n"
        "    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()\n"
        "    if device is None:\n"
        "        device = TOTPDevice.objects.create(user=user, name='resilience', confirmed=True)\n"
        "    session['otp_device_id'] = device.persistent_id\n"
        "session.create()\n"
        "print(session.session_key)\n"
    )
    return out.strip().splitlines()[-1]


def create_user(
    stack: PortalStack, username: str, password: str, *, staff=False, superuser=False, perms=()
) -> None:
    """A user with the given flags and permissions ("app_label.codename")."""
    stack.shell(
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.auth.models import Permission\n"
        f"user = get_user_model().objects.create_user({username!r}, {username + '@example.pk'!r},"
        f" {password!r}, is_staff={staff!r}, is_superuser={superuser!r})\n"
        f"for name in {list(perms)!r}:\n"
        "    app_label, codename = name.split('.')\n"
        "    user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label,"
        " codename=codename))\n"
    )
