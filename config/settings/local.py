"""Development and demo: DEBUG on; SQLite and eager Celery unless DATABASE_URL/REDIS_URL are set."""

import os

os.environ.setdefault("DEBUG", "true")

from config.settings.base import *  # noqa: E402,F403
from config.settings.base import DEBUG  # noqa: E402

if not SECRET_KEY:  # noqa: F405
    if not DEBUG:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "django-insecure-development-only-key-never-used-in-production"
