"""Settings shared by every environment. Values come from the environment (django-environ).

Parsing is strict: a boolean that is neither true nor false is an error, and every secret may be
read from ``NAME_FILE`` instead of ``NAME`` (Docker/Kubernetes secrets).
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean strictly: an unknown spelling is a configuration error, not false."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is neither true nor false")


def env_secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from NAME, or from the file named by NAME_FILE."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "simple_history",
    "axes",
    "freelancers",
    "payments",
    "registry",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
# SQLite is the embedded default (the demo); PostgreSQL in production. On SQLite every write
# transaction starts with BEGIN IMMEDIATE and waits up to 20 s for the lock, so concurrent webhook
# deliveries queue instead of failing with "database is locked".
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Covering indexes (INCLUDE columns) are a PostgreSQL optimisation; SQLite builds the same
    # index without them, which is all the embedded default needs.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # The webhook's hot statements are prepared once per connection (config/db.py); Django's own
    # queries are bound on the client and never prepared whatever this says. The statements are
    # SQL-level (PREPARE/EXECUTE, kept by the server connection), so behind a transaction-pooling
    # PgBouncer, of any version, set DB_PREPARED_STATEMENTS=false.
    if env_bool("DB_PREPARED_STATEMENTS", True):
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery -------------------------------------------------------------------------
REDIS_URL = env_secret("REDIS_URL") or None

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
# Without Redis, tasks run in the calling process (the demo and the SQLite test run).
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
# A task is acknowledged only after it ran, so a worker killed mid-task leaves it on the queue;
# every task is therefore written to be safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged task after the visibility timeout: longer than any batch job.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600, "socket_connect_timeout": 2}
# With Redis down, publishing gives up within about a second instead of holding a web request;
# the work stays in the database and the periodic sweeps enqueue it again.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# The Redis result backend would otherwise retry 20 times a second apart when a task is sent
# while Redis is down, holding the request that enqueued it for 20 s.
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    },
    "socket_connect_timeout": 2,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "Asia/Karachi"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# Two queues: quick follow-up work, and heavy batch jobs (aggregation, incentive runs), so each can
# get its own workers on its own machines.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (Queue("default"), Queue("batch"))
CELERY_TASK_ROUTES = {
    "registry.tasks.*": {"queue": "batch"},
    "payments.tasks.incentives.incentive_*": {"queue": "batch"},
}
# Safety nets: periodic sweeps that pick up work whose on-commit task never ran.
# Each app adds its own entries in its AppConfig.ready().
CELERY_BEAT_SCHEDULE: dict = {}
# payments (banks): link accounts/receipts left unlinked, apply unapplied reversals; prune the log
# of rejected webhook deliveries.
CELERY_BEAT_SCHEDULE["payments-banks-link-sweep"] = {
    "task": "payments.tasks.banks_link_sweep",
    "schedule": 600.0,
}
CELERY_BEAT_SCHEDULE["payments-bank-deliveries-prune"] = {
    "task": "payments.tasks.bank_deliveries_prune",
    "schedule": 24 * 3600.0,
}
BANK_WEBHOOK_REJECTED_RETENTION_DAYS = env.int("BANK_WEBHOOK_REJECTED_RETENTION_DAYS", default=30)
# The full statistics rebuild on PostgreSQL runs in this many slices at once, each on a
# connection of its own reading one shared snapshot (registry/rebuild.py): about the database
# server's cores.
STATISTICS_REBUILD_WORKERS = env.int("STATISTICS_REBUILD_WORKERS", default=2)
CELERY_BEAT_SCHEDULE["incentive-compute-sweep"] = {
    "task": "payments.tasks.incentives.incentive_sweep",
    "schedule": 600.0,
}
CELERY_BEAT_SCHEDULE["stripe-events-sweep"] = {
    "task": "payments.tasks.stripe_events_sweep",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["stripe-payouts-match-sweep"] = {
    "task": "payments.tasks.stripe_payouts_match_sweep",
    "schedule": 3600.0,
}

# --- Auth ---------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# Login lockout: 5 failures for one username from one address lock it for an hour.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 1
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "freelancers/locked_out.html"
# Staff sign in to the admin with a password and a TOTP code (django-otp; freelancers.admin_site).
ADMIN_OTP_REQUIRED = env_bool("ADMIN_OTP_REQUIRED", True)

# --- I18N ---------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "Asia/Karachi"
USE_I18N = True
USE_TZ = True

# --- Static and private media -------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    # Uploaded documents are private: stored outside any served directory, read only through
    # views that check permissions. There is deliberately no MEDIA_URL route.
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": env.str("PRIVATE_MEDIA_ROOT", default=str(BASE_DIR / "private_media"))
        },
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024

# --- Email --------------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@pseb.example.pk")
if os.environ.get("EMAIL_URL"):
    vars().update(env.email_url("EMAIL_URL"))

# --- Stripe -------------------------------------------------------------------------------------
STRIPE_API_KEY = env_secret("STRIPE_API_KEY", "") or ""
STRIPE_WEBHOOK_SECRET = env_secret("STRIPE_WEBHOOK_SECRET", "") or ""
STRIPE_LIVEMODE = env_bool("STRIPE_LIVEMODE", False)
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")

# --- DRF and OpenAPI ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"anon": "1200/min", "user": "2400/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Freelancer registration and payments portal API",
    "DESCRIPTION": "Freelancer registration, bank and Stripe webhooks, earnings, incentives and "
    "national IT-export statistics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status" field with their own choices: name each enum explicitly.
    "ENUM_NAME_OVERRIDES": {
        "ApplicationStatusEnum": "freelancers.models.Freelancer.Status",
        "InvoiceStatusEnum": "payments.models.stripe.Invoice.Status",
        "IncentiveSchemeStatusEnum": "payments.models.incentives.IncentiveScheme.Status",
    },
}

# --- Security defaults common to all environments ------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Logging: CNICs are masked by a filter on every handler -------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_pii": {"()": "config.logging.MaskPIIFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["mask_pii"],
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
