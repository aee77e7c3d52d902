import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.logging import mask_cnic_text
from config.settings.base import env_bool


def _run(args, **env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_a_secret_key():
    out = _run(["check"], DJANGO_SETTINGS_MODULE="config.settings.production")
    assert out.returncode != 0
    assert "SECRET_KEY" in out.stderr


def test_check_deploy_is_clean_with_production_settings():
    out = _run(
        ["check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="x" * 20 + "a-long-random-production-secret-" + "y" * 20,
        ALLOWED_HOSTS="portal.example.pk",
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_env_bool_is_strict(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "yes")
    assert env_bool("SOME_FLAG", False) is True
    monkeypatch.setenv("SOME_FLAG", "off")
    assert env_bool("SOME_FLAG", True) is False
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured):
        env_bool("SOME_FLAG", False)


def test_cnics_are_masked_in_log_text():
    assert mask_cnic_text("holder 35202-1234567-1 and 4210112345673") == (
        "holder 35202-*******-1 and 42101-*******-3"
    )
    assert mask_cnic_text("order 12345") == "order 12345"
