import pytest
from django.contrib.auth.models import Group
from django_otp.plugins.otp_totp.models import TOTPDevice

from freelancers.models import Freelancer, ServiceCategory
from tests.factories import FreelancerFactory, StaffFactory

from .conftest import current_token, submitted

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/freelancers/freelancer/"


@pytest.fixture
def superuser_client(client):
    client.force_login(StaffFactory(username="root", is_superuser=True))
    return client


def test_changelist_masks_cnic_and_offers_the_filters(superuser_client):
    freelancer = FreelancerFactory(cnic="3520298765431", full_name="Zara Masked")
    html = superuser_client.get(CHANGELIST).content.decode()
    assert "Zara Masked" in html
    assert "35202-*******-1" in html and "3520298765431" not in html
    for param in ("status__exact", "province__exact", "category=", "submitted_at__gte"):
        assert param in html
    assert freelancer.pk


@pytest.mark.parametrize(
    "term", ["35202-9876543-1", "3520298765431", "zara", "ZARA@example.pk", "PSEB-F-2023-000777"]
)
def test_search_finds_by_cnic_email_name_and_number(superuser_client, term):
    from freelancers.models import Freelancer as F

    target = FreelancerFactory(
        cnic="3520298765431",
        full_name="Zara Search",
        user__username="zara@example.pk",
        user__email="zara@example.pk",
    )
    F.objects.filter(pk=target.pk).update(registration_number="PSEB-F-2023-000777")
    FreelancerFactory(full_name="Other Person")
    response = superuser_client.get(CHANGELIST, {"q": term})
    results = list(response.context["cl"].result_list)
    assert results == [target]


def test_search_by_partial_cnic_does_not_scan(superuser_client):
    FreelancerFactory(cnic="3520298765431", full_name="Someone")
    results = superuser_client.get(CHANGELIST, {"q": "98765"}).context["cl"].result_list
    assert list(results) == []


def test_category_filter_returns_each_freelancer_once(superuser_client):
    freelancer = FreelancerFactory()
    freelancer.categories.set(ServiceCategory.objects.filter(slug__in=["web-development", "other"]))
    FreelancerFactory()
    results = superuser_client.get(CHANGELIST, {"category": "web-development"}).context["cl"]
    assert list(results.result_list) == [freelancer]


def test_changelist_does_not_count_the_whole_table(superuser_client):
    for _ in range(3):
        FreelancerFactory()
    response = superuser_client.get(CHANGELIST)
    cl = response.context["cl"]
    assert cl.show_full_result_count is False
    assert cl.result_count == 3


def test_validity_filter_separates_expired_from_valid(superuser_client):
    import datetime

    from django.utils import timezone

    from tests.factories import ApprovedFreelancerFactory

    valid = ApprovedFreelancerFactory()
    expired = ApprovedFreelancerFactory(
        expires_on=timezone.localdate() - datetime.timedelta(days=1)
    )
    got = superuser_client.get(CHANGELIST, {"validity": "expired"}).context["cl"].result_list
    assert list(got) == [expired]
    got = superuser_client.get(CHANGELIST, {"validity": "valid"}).context["cl"].result_list
    assert list(got) == [valid]
    assert "expired" in superuser_client.get(CHANGELIST).content.decode()


def test_changelist_queries_do_not_grow_with_the_rows(superuser_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert superuser_client.get(CHANGELIST).status_code == 200
        return len(ctx.captured_queries)

    FreelancerFactory()
    few = queries()
    for _ in range(10):
        FreelancerFactory()
    assert queries() == few
    # No facet counts even when asked for.
    html = superuser_client.get(CHANGELIST, {"_facets": "True"}).content.decode()
    assert "Show counts" not in html


def _action(client, action, ids, **extra):
    return client.post(
        CHANGELIST, {"action": action, "_selected_action": [str(i) for i in ids], **extra}
    )


def test_bulk_request_changes_asks_for_a_reason_then_applies(client, reviewer):
    first, second = submitted(), submitted()
    client.force_login(reviewer)
    response = _action(client, "request_changes", [first.pk, second.pk])
    assert response.status_code == 200 and b"Reason" in response.content
    response = _action(client, "request_changes", [first.pk, second.pk], apply="1", reason="")
    assert b"A reason is required" in response.content
    response = _action(
        client, "request_changes", [first.pk, second.pk], apply="1", reason="Blurred CNIC"
    )
    assert response.status_code == 302
    statuses = set(
        Freelancer.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)
    )
    assert statuses == {Freelancer.Status.CHANGES_REQUESTED}
    assert first.status_changes.first().reason == "Blurred CNIC"


def test_admin_approve_action_enforces_four_eyes(client, reviewer):
    freelancer = submitted()
    client.force_login(reviewer)
    _action(client, "recommend_approval", [freelancer.pk], apply="1", reason="")
    # The reviewer has no approve permission: the action reports and changes nothing.
    response = _action(
        client,
        "approve_approver",
        [freelancer.pk],
        apply="1",
        reason="",
    )
    freelancer.refresh_from_db()
    assert freelancer.status == Freelancer.Status.SUBMITTED
    assert response.status_code == 302


def test_history_view_shows_status_changes(superuser_client, reviewer):
    freelancer = submitted()
    response = superuser_client.get(f"{CHANGELIST}{freelancer.pk}/history/")
    assert response.status_code == 200
    assert b"Submitted" in response.content or b"submitted" in response.content


def test_change_page_shows_documents_as_links_to_the_protected_view(superuser_client):
    freelancer = submitted()
    html = superuser_client.get(f"{CHANGELIST}{freelancer.pk}/change/").content.decode()
    document = freelancer.documents.first()
    assert f"/documents/{document.pk}/" in html


def test_admin_requires_the_second_factor(client, settings):
    settings.ADMIN_OTP_REQUIRED = True
    staff = StaffFactory(username="otp-staff", password="correct-horse-battery")
    staff.groups.add(Group.objects.get(name="Reviewers"))
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    client.force_login(staff)  # password only: not verified
    assert client.get(CHANGELIST).status_code == 302
    client.logout()
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "otp-staff", "password": "correct-horse-battery", "otp_token": "000000"},
    )
    assert response.status_code == 200  # wrong code: the form is shown again
    # django-otp throttles a device after a failure; clear it rather than sleep.
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )
    device.refresh_from_db()
    response = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": "otp-staff",
            "password": "correct-horse-battery",
            "otp_token": current_token(device),
        },
    )
    # One device: no need to pick it from the list first.
    assert response.status_code == 302, response.context["form"].errors
    assert client.get(CHANGELIST).status_code == 200
