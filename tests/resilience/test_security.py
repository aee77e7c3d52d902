"""Production settings as deployed: secure cookies, HSTS, no debug output, login brute force
locked out by django-axes; all observed on the wire from gunicorn."""

import urllib.parse

import pytest

from tests.resilience.conftest import require_feature
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


def portal_login(stack, email: str, password: str):
    fields = {"csrfmiddlewaretoken": CSRF_TOKEN, "username": email, "password": password}
    return stack.request(
        "POST",
        "/accounts/login/",
        body=urllib.parse.urlencode(fields).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={CSRF_TOKEN}",
        },
    )


def attributes(cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")}


def test_session_cookie_is_secure_and_httponly_after_login(stack):
    require_feature("freelancers.forms", "registration (issue 3)")
    create_user(stack, "sec-user@example.pk", PASSWORD)
    response = portal_login(stack, "sec-user@example.pk", PASSWORD)
    cookie = session_cookie(response)
    assert response.status == 302 and cookie, (response.status, response.body[:300])
    assert {"secure", "httponly"} <= attributes(cookie), cookie


def test_admin_needs_the_second_factor_and_its_session_cookie_is_secure(stack):
    require_feature("freelancers.admin_site", "admin with TOTP (issue 3)")
    from django_otp.oath import totp

    create_user(stack, "sec-admin", PASSWORD, staff=True, superuser=True)
    out = stack.shell(
        "from django.contrib.auth import get_user_model\n"
        "from django_otp.plugins.otp_totp.models import TOTPDevice\n"
        "user = get_user_model().objects.get(username='sec-admin')\n"
        "device = TOTPDevice.objects.create(user=user, name='phone', confirmed=True)\n"
        "print(device.persistent_id, device.key)\n"
    )
    persistent_id, key = out.strip().splitlines()[-1].split()
    without = admin_login(stack, "sec-admin", PASSWORD)
    assert session_cookie(without) is None, "admin signed in with a password alone"
    token = f"{totp(bytes.fromhex(key)):06d}"
    with_otp = admin_login(
        stack, "sec-admin", PASSWORD, {"otp_device": persistent_id, "otp_token": token}
    )
    cookie = session_cookie(with_otp)
    assert with_otp.status == 302 and cookie, (with_otp.status, with_otp.body[:300])
    assert {"secure", "httponly"} <= attributes(cookie), cookie


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
    require_feature("freelancers.forms", "registration (issue 3)")
    create_user(stack, "sec-target@example.pk", PASSWORD)
    create_user(stack, "sec-control@example.pk", PASSWORD)
    # Sign-in names are e-mail addresses. The right password works for a user nobody
    # attacked (so the test can tell success).
    assert session_cookie(portal_login(stack, "sec-control@example.pk", PASSWORD))
    statuses = [portal_login(stack, "sec-target@example.pk", f"wrong-{i}").status for i in range(5)]
    assert all(status in (200, 403, 429) for status in statuses), statuses
    locked = portal_login(stack, "sec-target@example.pk", PASSWORD)
    assert session_cookie(locked) is None, "locked-out account still got a session"
    assert locked.status in (403, 429), locked.status
    # The lockout is kept in the database: every gunicorn worker refuses.
    for _ in range(4):
        assert session_cookie(portal_login(stack, "sec-target@example.pk", PASSWORD)) is None
    assert PASSWORD.encode() not in locked.body
