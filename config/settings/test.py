"""Test settings: fast hashing, mail kept in memory, Celery eager.

With REDIS_URL set, the tests that use the ``celery_worker_session`` fixture send their tasks
through Redis to a real worker; all others run tasks eagerly, so no test leaves work on the broker.
"""

import os

os.environ.setdefault("DEBUG", "false")

from config.settings.base import *  # noqa: E402,F403

SECRET_KEY = SECRET_KEY or "test-only-secret-key"  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["*"]
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
STORAGES["default"]["OPTIONS"]["location"] = str(BASE_DIR / ".test-media")  # noqa: F405
# A file, not SQLite's in-memory database, so tests with several threads or connections see one
# database and SQLite's real locking, as in the demo.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}  # noqa: F405
# Other apps' admin tests sign in without a TOTP device; tests/freelancers switch it back on.
ADMIN_OTP_REQUIRED = False
CELERY_TASK_ALWAYS_EAGER = True
