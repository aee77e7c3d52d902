"""Production settings as deployed: secure cookies, HSTS, no debug output, login brute force
locked out by django-axes; all observed on the wire from gunicorn."""

import re
import urllib.parse

import pytest

from tests.resilience.harness import CSRF_TOKEN, create_user

pytestmark = pytest.mark.resilience

PASSWORD = "Resilience-Pass-9071!"


def admin_login(stack, username: str, password: str, extra: dict | None = None):
    fields = {
        "csrfmiddlewaretoken": CSRF_TOKEN,
        "username": username,
        "password": password,
        "next": "/admin/",
        **(extra or {}),
    }
    return stack.request(
        "POST",
        "/admin/login/?next=/admin/",
        body=urllib.parse.urlencode(fields).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={CSRF_TOKEN}",
        },
    )


def session_cookie(response) -> str | None:
    for value in response.cookies():
        if value.startswith("sessionid=") and not value.startswith("sessionid=;"):
            return value
    return None


def test_csrf_cookie_is_secure_and_httponly_in_production(stack):
    response = stack.get("/admin/login/")
    assert response.status == 200
    csrf = [c for c in response.cookies() if c.startswith("csrftoken=")]
    assert csrf, response.headers
    attributes = {part.strip().split("=")[0].lower() for part in csrf[0].split(";")}
    assert {"secure", "httponly", "samesite"} <= attributes, csrf[0]


def test_session_cookie_is_secure_and_httponly_after_login(stack):
    create_user(stack, "resil-admin", PASSWORD, staff=True, superuser=True)
    response = admin_login(stack, "resil-admin", PASSWORD)
    cookie = session_cookie(response)
    if cookie is None:
        pytest.skip(f"admin login needs more than a password here ({response.status})")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"secure", "httponly"} <= attributes, cookie


def test_hsts_and_security_headers_on_https(stack):
    response = stack.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert response.status == 200
    assert "max-age=31536000" in response.headers.get("strict-transport-security", "")
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("x-frame-options") == "DENY"


def test_unknown_page_answers_404_without_debug_information(stack):
    response = stack.get("/no-such-page-" + "x" * 20)
    assert response.status == 404
    text = response.body.decode(errors="replace")
    for marker in ("Traceback", "DEBUG = True", "urlpatterns", stack.secret_key, "SECRET_KEY"):
        assert marker not in text


def test_login_brute_force_is_locked_out_even_for_the_right_password(stack):
    create_user(stack, "resil-target", PASSWORD, staff=True, superuser=True)
    create_user(stack, "resil-control", PASSWORD, staff=True, superuser=True)
    # The right password works for a user nobody attacked (the test can tell success).
    control = admin_login(stack, "resil-control", PASSWORD)
    if session_cookie(control) is None:
        pytest.skip(f"admin login needs more than a password here ({control.status})")
    statuses = [admin_login(stack, "resil-target", f"wrong-{i}").status for i in range(5)]
    assert all(status in (200, 403, 429) for status in statuses), statuses
    locked = admin_login(stack, "resil-target", PASSWORD)
    assert session_cookie(locked) is None, "locked-out account still got a session"
    assert locked.status in (403, 429), locked.status
    # The lockout persists in the database: another gunicorn worker refuses too.
    for _ in range(4):
        assert session_cookie(admin_login(stack, "resil-target", PASSWORD)) is None
    assert not re.search(rb"resil-target.{0,40}" + PASSWORD.encode(), locked.body)
