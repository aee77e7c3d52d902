"""The portal through the test client: sign-up, verification, lockout, reset, the steps, verify."""

import datetime
import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from freelancers.models import Document, Freelancer, ServiceCategory
from tests.factories import FreelancerFactory

from .conftest import JPEG, PDF, PNG, approved, delivered_mail, upload

pytestmark = pytest.mark.django_db


def test_front_page_links_to_registration_sign_in_statistics_and_verification(client):
    html = client.get("/").content.decode()
    for href in ("/accounts/signup/", "/accounts/login/", "/statistics/", "/verify/"):
        assert f'href="{href}"' in html


def _sign_up(client, email="new@example.pk", password="a-Long-pass-2026"):
    return client.post(
        "/accounts/signup/", {"email": email, "password1": password, "password2": password}
    )


def _link(pattern: str) -> str:
    for message in reversed(delivered_mail()):
        match = re.search(pattern, message.body)
        if match:
            return match.group(0)
    raise AssertionError("no e-mail with that link")


def test_sign_up_sends_a_verification_link_that_opens_the_application(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _sign_up(client)
    assert response.status_code == 302
    freelancer = Freelancer.objects.get(user__username="new@example.pk")
    assert freelancer.email_verified_at is None
    # Until the e-mail is verified, the steps are closed.
    assert client.get("/apply/personal/").status_code == 302
    link = _link(r"/accounts/verify/[^\s]+/")
    assert client.get(link).status_code == 302
    freelancer.refresh_from_db()
    assert freelancer.email_verified_at is not None
    assert client.get("/apply/personal/").status_code == 200


def test_tampered_verification_link_is_refused(client):
    assert client.get("/accounts/verify/not-a-token/").status_code == 400


def test_second_sign_up_with_the_same_email_gets_a_form_error(client):
    FreelancerFactory(user__username="taken@example.pk", user__email="taken@example.pk")
    response = _sign_up(client, email="Taken@Example.pk")
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert get_user_model().objects.filter(username="taken@example.pk").count() == 1


def test_login_locks_out_after_five_failures(client):
    _sign_up(client, email="lock@example.pk")
    client.post("/accounts/logout/")
    for _ in range(5):
        client.post("/accounts/login/", {"username": "lock@example.pk", "password": "wrong"})
    response = client.post(
        "/accounts/login/", {"username": "lock@example.pk", "password": "a-Long-pass-2026"}
    )
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_with_email_in_any_case_works(client):
    _sign_up(client, email="case@example.pk")
    client.post("/accounts/logout/")
    response = client.post(
        "/accounts/login/", {"username": "CASE@example.pk", "password": "a-Long-pass-2026"}
    )
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_password_reset_email_is_queued_and_its_link_sets_a_new_password(
    client, django_capture_on_commit_callbacks
):
    _sign_up(client, email="reset@example.pk")
    client.post("/accounts/logout/")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/password-reset/", {"email": "reset@example.pk"})
    assert response.status_code == 302
    link = _link(r"/accounts/reset/[^\s]+/")
    response = client.get(link, follow=True)
    form_url = response.redirect_chain[-1][0]
    response = client.post(
        form_url, {"new_password1": "Another-pass-2027", "new_password2": "Another-pass-2027"}
    )
    assert response.status_code == 302
    assert (
        get_user_model()
        .objects.get(username="reset@example.pk")
        .check_password("Another-pass-2027")
    )


@pytest.fixture
def verified_client(client):
    _sign_up(client, email="steps@example.pk")
    Freelancer.objects.filter(user__username="steps@example.pk").update(
        email_verified_at=timezone.now()
    )
    return client


PERSONAL = {
    "full_name": "Ayesha Khan",
    "cnic": "35202-1234567-1",
    "date_of_birth": "1994-05-06",
    "mobile": "0300 1234567",
    "address": "House 5, Street 9",
    "city": "Lahore",
    "province": "punjab",
}


def test_every_step_saves_the_draft_and_the_application_submits(verified_client):
    c = verified_client
    assert c.post("/apply/personal/", PERSONAL).status_code == 302
    freelancer = Freelancer.objects.get(user__username="steps@example.pk")
    assert (freelancer.cnic, freelancer.mobile) == ("3520212345671", "+923001234567")
    web = ServiceCategory.objects.get(slug="web-development")
    # "Save draft" stays on the step; "Save and continue" moves on.
    response = c.post("/apply/skills/", {"categories": [web.pk], "save_draft": "1"})
    assert response["Location"] == "/apply/skills/"
    platforms = {
        "platforms-TOTAL_FORMS": "2",
        "platforms-INITIAL_FORMS": "0",
        "platforms-0-platform": "upwork",
        "platforms-0-url": "https://www.upwork.com/freelancers/ayesha",
        "platforms-1-platform": "",
        "platforms-1-url": "",
    }
    assert c.post("/apply/platforms/", platforms)["Location"] == "/apply/education/"
    education = {
        "education-TOTAL_FORMS": "1",
        "education-INITIAL_FORMS": "0",
        "education-0-level": "bachelor",
        "education-0-institution": "University of the Punjab",
        "education-0-field_of_study": "Computer science",
        "education-0-year_completed": "2016",
    }
    assert c.post("/apply/education/", education)["Location"] == "/apply/documents/"
    files = {
        "cnic_front": upload("front.jpg", JPEG),
        "cnic_back": upload("back.png", PNG),
        "degree": upload("degree.pdf", PDF),
    }
    assert c.post("/apply/documents/", files)["Location"] == "/apply/declaration/"
    assert c.get("/apply/declaration/").status_code == 200
    response = c.post("/apply/declaration/", {"declaration": "on"})
    assert response.status_code == 302
    freelancer.refresh_from_db()
    assert freelancer.status == Freelancer.Status.SUBMITTED
    assert freelancer.platforms.count() == 1 and freelancer.education.count() == 1
    assert freelancer.documents.count() == 3
    html = c.get("/dashboard/").content.decode()
    assert "Submitted" in html
    for href in ("/earnings/", "/invoices/", "/incentives/"):
        assert f'href="{href}"' in html
    # Submitted applications are locked.
    assert c.get("/apply/personal/").status_code == 302


def test_optional_rows_left_or_cleared_empty_are_skipped_not_errors(verified_client):
    c = verified_client
    html = c.get("/apply/platforms/").content.decode()
    assert 'name="platforms-0-url"' in html
    saved = {
        "platforms-TOTAL_FORMS": "1",
        "platforms-INITIAL_FORMS": "1",
        "platforms-0-platform": "fiverr",
        "platforms-0-url": "https://www.fiverr.com/ayesha",
    }
    assert c.post("/apply/platforms/", saved).status_code == 302
    freelancer = Freelancer.objects.get(user__username="steps@example.pk")
    assert freelancer.platforms.count() == 1
    cleared = {**saved, "platforms-0-platform": "", "platforms-0-url": ""}
    assert c.post("/apply/platforms/", cleared).status_code == 302
    assert freelancer.platforms.count() == 0
    half = {**saved, "platforms-0-url": ""}
    response = c.post("/apply/platforms/", half)
    assert response.status_code == 200
    assert "url" in response.context["formset"].forms[0].errors


def test_bad_cnic_and_mobile_get_errors_next_to_the_fields(verified_client):
    response = verified_client.post(
        "/apply/personal/", {**PERSONAL, "cnic": "12345", "mobile": "12345"}
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert "cnic" in form.errors and "mobile" in form.errors


def test_duplicate_cnic_gets_a_form_error(verified_client):
    FreelancerFactory(cnic="3520212345671")
    response = verified_client.post("/apply/personal/", PERSONAL)
    assert response.status_code == 200
    assert "already registered" in str(response.context["form"].errors["cnic"])


def test_submitting_without_cnic_documents_names_what_is_missing(verified_client):
    verified_client.post("/apply/personal/", PERSONAL)
    response = verified_client.post("/apply/declaration/", {"declaration": "on"})
    assert response.status_code == 200
    assert "Upload both sides of your CNIC" in response.content.decode()


def test_upload_with_wrong_content_is_refused_in_the_form(verified_client):
    response = verified_client.post(
        "/apply/documents/",
        {
            "cnic_front": upload("front.pdf", b"MZ\x90\x00 not a pdf"),
            "cnic_back": upload("b.png", PNG),
        },
    )
    assert response.status_code == 200
    assert "PDF, JPEG or PNG" in str(response.context["form"].errors["cnic_front"])
    assert not Document.objects.filter(kind="cnic_front").exists()


def test_freelancer_answers_a_request_for_changes_and_resubmits(client, reviewer):
    from freelancers.services import workflow

    from .conftest import submitted

    freelancer = submitted()
    workflow.application_request_changes(
        freelancer=freelancer, actor=reviewer, reason="Please upload a clearer CNIC back."
    )
    client.force_login(freelancer.user)
    html = client.get("/dashboard/").content.decode()
    assert "Please upload a clearer CNIC back." in html
    response = client.post(
        "/apply/declaration/", {"declaration": "on", "response": "Uploaded a new scan."}
    )
    assert response.status_code == 302
    freelancer.refresh_from_db()
    assert freelancer.status == Freelancer.Status.SUBMITTED
    assert "Uploaded a new scan." in client.get("/dashboard/").content.decode()


def test_verification_page_shows_name_status_categories_and_no_personal_data(
    client, reviewer, approver
):
    freelancer = approved(reviewer, approver)
    html = client.get(f"/verify/{freelancer.registration_number}/").content.decode()
    assert freelancer.full_name in html and "Approved" in html and "Web development" in html
    for secret in (freelancer.cnic, freelancer.masked_cnic, freelancer.mobile, freelancer.address):
        assert secret not in html
    assert client.get("/verify/PSEB-F-1999-999999/").status_code == 404
    lookup = client.get("/verify/", {"number": freelancer.registration_number.lower()})
    assert lookup["Location"] == f"/verify/{freelancer.registration_number}/"


def test_expired_registration_shows_expired_on_the_verification_page(client, reviewer, approver):
    freelancer = approved(reviewer, approver)
    Freelancer.objects.filter(pk=freelancer.pk).update(
        expires_on=timezone.localdate() - datetime.timedelta(days=1)
    )
    html = client.get(f"/verify/{freelancer.registration_number}/").content.decode()
    assert "Expired" in html


def test_approved_freelancer_downloads_a_certificate_with_number_and_qr(client, reviewer, approver):
    freelancer = approved(reviewer, approver)
    client.force_login(freelancer.user)
    response = client.get("/certificate/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    body = response.content
    assert body.startswith(b"%PDF")
    assert freelancer.registration_number.encode() in body
    assert f"/verify/{freelancer.registration_number}/".encode() in body


def test_no_certificate_before_approval(client):
    freelancer = FreelancerFactory(email_verified_at=timezone.now())
    client.force_login(freelancer.user)
    assert client.get("/certificate/").status_code == 404


def test_renewal_form_resubmits_an_expiring_registration(client, reviewer, approver):
    freelancer = approved(reviewer, approver)
    Freelancer.objects.filter(pk=freelancer.pk).update(
        expires_on=timezone.localdate() + datetime.timedelta(days=5)
    )
    client.force_login(freelancer.user)
    assert "Renew it" in client.get("/dashboard/").content.decode()
    web = ServiceCategory.objects.get(slug="web-development")
    response = client.post(
        "/renew/",
        {
            "mobile": "03001112222",
            "address": "New",
            "city": "Lahore",
            "province": "punjab",
            "categories": [web.pk],
            "declaration": "on",
        },
    )
    assert response.status_code == 302
    freelancer.refresh_from_db()
    assert freelancer.status == Freelancer.Status.SUBMITTED and freelancer.is_renewal


def test_demo_prints_totp_sign_in_help(capsys):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("load_demo", stdout=out)
    text = out.getvalue()
    assert "python manage.py demo_totp <username>" in text
    assert "otpauth://totp/approver?secret=" in text
    approved_demo = Freelancer.objects.filter(status="approved").exclude(registration_number=None)
    assert approved_demo.count() == len(
        set(approved_demo.values_list("registration_number", flat=True))
    )
