import pytest
from django.utils import timezone

from freelancers.models import Freelancer
from tests.factories import FreelancerFactory, StaffFactory

from .conftest import submitted

pytestmark = pytest.mark.django_db

ME = "/api/v1/freelancers/me/"
LIST = "/api/v1/freelancers/applications/"


def test_anonymous_gets_403_everywhere(client):
    for url in (ME, ME + "submit/", LIST, f"{LIST}1/", f"{LIST}1/approve/"):
        response = client.get(url) if "approve" not in url else client.post(url)
        assert response.status_code == 403, url


def test_freelancer_reads_and_updates_only_their_own_application(client):
    mine = FreelancerFactory(email_verified_at=timezone.now())
    other = FreelancerFactory(full_name="Someone Else")
    client.force_login(mine.user)
    data = client.get(ME).json()
    assert data["id"] == mine.pk and data["cnic"] == mine.cnic
    response = client.put(
        ME,
        {
            "full_name": "Mine Updated",
            "cnic": mine.cnic,
            "date_of_birth": "1990-01-01",
            "mobile": "+92 300 1234567",
            "address": "a",
            "city": "Lahore",
            "province": "punjab",
            "categories": ["web-development"],
        },
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["full_name"] == "Mine Updated"
    other.refresh_from_db()
    assert other.full_name == "Someone Else"
    # No freelancer route takes another's id, and the staff routes refuse a freelancer.
    assert client.get(f"{LIST}{other.pk}/").status_code == 403
    assert client.get(LIST).status_code == 403
    assert client.post(f"{LIST}{other.pk}/request-changes/", {"reason": "x"}).status_code == 403


def test_bad_input_gets_400_naming_the_field(client):
    mine = FreelancerFactory(email_verified_at=timezone.now())
    client.force_login(mine.user)
    response = client.put(
        ME,
        {
            "full_name": "x",
            "cnic": "123",
            "date_of_birth": "1990-01-01",
            "mobile": "999",
            "address": "a",
            "city": "b",
            "province": "narnia",
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "province" in response.json()
    response = client.put(
        ME,
        {
            "full_name": "x",
            "cnic": "123",
            "date_of_birth": "1990-01-01",
            "mobile": "999",
            "address": "a",
            "city": "b",
            "province": "punjab",
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"cnic", "mobile"}


def test_duplicate_cnic_via_api_is_a_400_on_cnic(client):
    FreelancerFactory(cnic="3520212345671")
    mine = FreelancerFactory(email_verified_at=timezone.now())
    client.force_login(mine.user)
    response = client.put(
        ME,
        {
            "full_name": "x",
            "cnic": "35202-1234567-1",
            "date_of_birth": "1990-01-01",
            "mobile": "03001234567",
            "address": "a",
            "city": "b",
            "province": "punjab",
        },
        content_type="application/json",
    )
    assert response.status_code == 400 and "cnic" in response.json()


def test_incomplete_submit_is_a_400_listing_what_is_missing(client):
    mine = FreelancerFactory(email_verified_at=timezone.now())
    client.force_login(mine.user)
    response = client.post(ME + "submit/", {"declaration": True}, content_type="application/json")
    assert response.status_code == 400
    assert "documents" in response.json()["missing"]


def test_staff_list_masks_cnic_and_filters_by_status(client, reviewer):
    waiting = submitted()
    FreelancerFactory()
    client.force_login(reviewer)
    data = client.get(LIST, {"status": "submitted"}).json()
    assert [row["id"] for row in data["results"]] == [waiting.pk]
    assert data["results"][0]["cnic"] == waiting.masked_cnic
    assert client.get(LIST, {"status": "bogus"}).status_code == 400


def test_plain_staff_without_freelancer_permissions_are_refused(client):
    client.force_login(StaffFactory())
    assert client.get(LIST).status_code == 403


def test_four_eyes_through_the_api(client, reviewer, approver):
    freelancer = submitted()
    client.force_login(reviewer)
    url = f"{LIST}{freelancer.pk}/"
    assert client.post(url + "approve/").status_code == 403  # a reviewer cannot decide
    assert client.post(url + "recommend/", {}).status_code == 400  # decision missing
    assert client.post(url + "recommend/", {"decision": "approve"}).status_code == 200
    # The approver's session has no verified OTP device: refused.
    client.force_login(approver)
    response = client.post(url + "approve/")
    assert response.status_code == 403 and "one-time code" in response.json()["detail"]
    assert client.post(url + "frobnicate/").status_code == 404
    freelancer.refresh_from_db()
    assert freelancer.status == Freelancer.Status.SUBMITTED


def test_approver_with_otp_session_approves_through_the_api(client, reviewer, approver):
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    freelancer = submitted()
    client.force_login(reviewer)
    client.post(f"{LIST}{freelancer.pk}/recommend/", {"decision": "approve"})
    client.force_login(approver)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=approver).persistent_id
    session.save()
    response = client.post(f"{LIST}{freelancer.pk}/approve/", {"reason": "ok"})
    assert response.status_code == 200, response.content
    assert response.json()["registration_number"].startswith("PSEB-F-")


def test_illegal_action_via_api_is_a_400(client, approver):
    freelancer = FreelancerFactory()
    client.force_login(approver)
    response = client.post(f"{LIST}{freelancer.pk}/request-changes/", {"reason": "x"})
    assert response.status_code == 400


def test_schema_lists_the_freelancer_endpoints(client):
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/freelancers/me/" in schema
    assert "/api/v1/freelancers/applications/{id}/{action}/" in schema
