"""End to end in headless Chromium (Debian's package, driven by Playwright's sync API): a newcomer
signs up, verifies the e-mail, fills every step, uploads documents and submits; a reviewer
recommends and an approver signs in with a TOTP code and approves; the certificate downloads."""

import os
import re
import shutil

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django_otp.plugins.otp_totp.models import TOTPDevice

from freelancers.models import Freelancer

from .conftest import JPEG, PDF, PNG, current_token, delivered_mail, reseed

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
PASSWORD = "a-Long-pass-2026"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium"),
]


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def _staff(username: str, group: str) -> TOTPDevice:
    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@pseb.example.pk", password=PASSWORD, is_staff=True
    )
    user.groups.add(Group.objects.get(name=group))
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def _admin_sign_in(page, base: str, device: TOTPDevice):
    page.goto(f"{base}/admin/login/?next=/admin/freelancers/freelancer/")
    page.fill("#id_username", device.user.username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", current_token(device))
    page.click("input[type=submit][value='Log in']")
    page.wait_for_url(re.compile(r".*/admin/freelancers/freelancer/$"))


def _admin_action(page, base: str, freelancer: Freelancer, action_label: str, reason: str):
    page.goto(f"{base}/admin/freelancers/freelancer/?status__exact=submitted")
    page.check(f"input[name=_selected_action][value='{freelancer.pk}']")
    page.select_option("select[name=action]", label=action_label)
    page.click("button[name=index]")
    page.fill("#id_reason", reason)
    page.click(f"input[type=submit][value='{action_label}']")
    page.wait_for_url(re.compile(r".*/admin/freelancers/freelancer/.*"))


@pytest.mark.django_db(transaction=True)
def test_newcomer_registers_and_board_approves_in_a_real_browser(
    browser, live_server, settings, tmp_path
):
    reseed()
    settings.ADMIN_OTP_REQUIRED = True
    settings.PORTAL_BASE_URL = live_server.url
    base = live_server.url
    for name, content in (("front.jpg", JPEG), ("back.png", PNG), ("degree.pdf", PDF)):
        (tmp_path / name).write_bytes(content)

    context = browser.new_context(viewport=PHONE, accept_downloads=True)
    page = context.new_page()
    page.goto(base + "/")
    page.screenshot(path="/tmp/portal-home.png", full_page=True)
    page.click("main >> text=Register now")

    page.fill("#id_email", "ayesha@example.pk")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("button:has-text('Create account')")
    page.wait_for_url(base + "/dashboard/")
    assert "Confirm your e-mail address" in page.content()

    link = next(
        re.search(r"http\S+/accounts/verify/\S+/", m.body).group(0)
        for m in reversed(delivered_mail())
        if "/accounts/verify/" in m.body
    )
    page.goto(link)
    page.wait_for_url(base + "/apply/personal/")

    page.fill("#id_full_name", "Ayesha Khan")
    page.fill("#id_cnic", "35202-1234567-1")
    page.fill("#id_date_of_birth", "1994-05-06")
    page.fill("#id_mobile", "0300 1234567")
    page.fill("#id_address", "House 5, Street 9, Model Town")
    page.fill("#id_city", "Lahore")
    page.select_option("#id_province", "punjab")
    page.screenshot(path="/tmp/portal-step-personal.png", full_page=True)
    page.click("button:has-text('Save and continue')")

    page.wait_for_url(base + "/apply/skills/")
    page.check("label:has-text('Web development') input")
    page.check("label:has-text('Graphic design') input")
    page.click("button:has-text('Save and continue')")

    page.wait_for_url(base + "/apply/platforms/")
    page.select_option("#id_platforms-0-platform", "upwork")
    page.fill("#id_platforms-0-url", "https://www.upwork.com/freelancers/ayesha")
    page.click("button:has-text('Save and continue')")

    page.wait_for_url(base + "/apply/education/")
    page.select_option("#id_education-0-level", "bachelor")
    page.fill("#id_education-0-institution", "University of the Punjab")
    page.fill("#id_education-0-field_of_study", "Computer science")
    page.fill("#id_education-0-year_completed", "2016")
    page.click("button:has-text('Save and continue')")

    page.wait_for_url(base + "/apply/documents/")
    page.set_input_files("#id_cnic_front", str(tmp_path / "front.jpg"))
    page.set_input_files("#id_cnic_back", str(tmp_path / "back.png"))
    page.set_input_files("#id_degree", str(tmp_path / "degree.pdf"))
    page.screenshot(path="/tmp/portal-step-documents.png", full_page=True)
    page.click("button:has-text('Save and continue')")

    page.wait_for_url(base + "/apply/declaration/")
    page.check("#id_declaration")
    page.screenshot(path="/tmp/portal-step-declaration.png", full_page=True)
    page.click("button:has-text('Submit application')")
    page.wait_for_url(base + "/dashboard/")
    assert page.inner_text("[data-testid=status]") == "Submitted"
    page.screenshot(path="/tmp/portal-dashboard-submitted.png", full_page=True)

    freelancer = Freelancer.objects.get(user__username="ayesha@example.pk")
    assert freelancer.documents.count() == 3 and freelancer.platforms.count() == 1

    # The board: a reviewer recommends, a different staff member with a TOTP code approves.
    reviewer_device = _staff("reviewer-e2e", "Reviewers")
    approver_device = _staff("approver-e2e", "Approvers")
    staff_context = browser.new_context(viewport={"width": 1280, "height": 900})
    staff = staff_context.new_page()
    _admin_sign_in(staff, base, reviewer_device)
    _admin_action(staff, base, freelancer, "Recommend approval", "Documents match the CNIC.")
    staff_context.clear_cookies()
    _admin_sign_in(staff, base, approver_device)
    _admin_action(staff, base, freelancer, "Approve (approver)", "Welcome aboard.")
    staff.screenshot(path="/tmp/portal-admin-changelist.png")
    freelancer.refresh_from_db()
    assert freelancer.status == Freelancer.Status.APPROVED, staff.content()

    page.goto(base + "/dashboard/")
    assert page.inner_text("[data-testid=status]") == "Approved"
    assert page.inner_text("[data-testid=registration-number]") == freelancer.registration_number
    page.screenshot(path="/tmp/portal-dashboard-approved.png", full_page=True)
    with page.expect_download() as download_info:
        page.click("[data-testid=certificate]")
    certificate = download_info.value
    path = tmp_path / "certificate.pdf"
    certificate.save_as(path)
    content = path.read_bytes()
    assert content.startswith(b"%PDF")
    assert freelancer.registration_number.encode() in content

    page.goto(f"{base}/verify/{freelancer.registration_number}/")
    assert page.inner_text("[data-testid=verify-status]") == "Approved"
    page.screenshot(path="/tmp/portal-verify.png", full_page=True)
    assert os.path.exists("/tmp/portal-home.png")
