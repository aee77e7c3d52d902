"""Create the throwaway dj-stripe project of the ingestion peer in a directory (run at bench time).

    python make_project.py <directory> <database url> <fake Stripe API port>

Writes a minimal Django project (settings, urls, wsgi, manage.py) whose only app is dj-stripe,
on PostgreSQL, with the common middleware stack, DEBUG off and persistent connections like the
portal's production settings. Nothing it writes is committed.
"""

import sys
from pathlib import Path
from urllib.parse import urlparse

SETTINGS = """
SECRET_KEY = "bench-djstripe-peer-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "djstripe",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "peerproj.urls"
WSGI_APPLICATION = "peerproj.wsgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": %(name)r,
                         "USER": %(user)r, "HOST": %(host)r, "PORT": %(port)r,
                         "CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "Asia/Karachi"
STRIPE_LIVE_MODE = False
STRIPE_TEST_SECRET_KEY = "sk_test_benchpeer0000000000000000"
STRIPE_API_HOST = "http://127.0.0.1:%(api_port)d"
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"level": "ERROR", "handlers": ["console"]}}
"""
URLS = """
from django.urls import include, path

urlpatterns = [path("stripe/", include("djstripe.urls", namespace="djstripe"))]
"""
WSGI = """
import os
from django.core.wsgi import get_wsgi_application
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproj.settings")
application = get_wsgi_application()
"""
MANAGE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproj.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""


def main() -> None:
    directory, db, api_port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    package = directory / "peerproj"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    url = urlparse(db)
    values = {
        "name": url.path.lstrip("/"),
        "user": url.username or "postgres",
        "host": url.hostname or "127.0.0.1",
        "port": str(url.port or 5432),
        "api_port": api_port,
    }
    (package / "settings.py").write_text(SETTINGS % values)
    (package / "urls.py").write_text(URLS)
    (package / "wsgi.py").write_text(WSGI)
    (directory / "manage.py").write_text(MANAGE)


if __name__ == "__main__":
    main()
