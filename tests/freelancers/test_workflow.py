import datetime
import re
import threading

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from django.utils import timezone

from freelancers import signals
from freelancers.models import Freelancer, RegistrationCounter, StatusChange
from freelancers.services import workflow
from tests.factories import FreelancerFactory, StaffFactory

from .conftest import approved, complete_draft, delivered_mail, otp_verified, reseed, submitted

S = Freelancer.Status
pytestmark = pytest.mark.django_db


def test_incomplete_draft_cannot_be_submitted():
    freelancer = FreelancerFactory()
    with pytest.raises(workflow.IncompleteApplication) as exc:
        workflow.application_submit(freelancer=freelancer, actor=freelancer.user)
    assert set(exc.value.missing) == {"skills", "documents", "declaration"}
    freelancer.refresh_from_db()
    assert freelancer.status == S.DRAFT


def test_recommended_application_approved_by_another_staff_member_gets_number_and_year(
    reviewer, approver, django_capture_on_commit_callbacks
):
    received = []

    def on_approved(sender, freelancer, **kwargs):
        # Sent inside the transaction: the row is already approved when a receiver reads it.
        received.append(Freelancer.objects.get(pk=freelancer.pk).status)

    signals.freelancer_approved.connect(on_approved)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            freelancer = approved(reviewer, approver)
    finally:
        signals.freelancer_approved.disconnect(on_approved)
    freelancer.refresh_from_db()
    assert freelancer.status == S.APPROVED
    year = timezone.localdate().year
    assert re.fullmatch(rf"PSEB-F-{year}-\d{{6}}", freelancer.registration_number)
    assert freelancer.expires_on == timezone.localdate() + datetime.timedelta(days=365)
    assert received == [S.APPROVED]
    changes = list(StatusChange.objects.filter(freelancer=freelancer).order_by("id"))
    assert [(c.from_status, c.to_status) for c in changes] == [
        (S.DRAFT, S.SUBMITTED),
        (S.SUBMITTED, S.APPROVED),
    ]
    assert changes[1].actor == approver
    subjects = [m.subject for m in delivered_mail() if m.to == [freelancer.user.email]]
    assert "Your registration: Approved" in subjects


def test_every_transition_sends_status_changed_with_old_and_new(reviewer, approver):
    seen = []

    def on_changed(sender, freelancer, old_status, new_status, **kwargs):
        seen.append((old_status, new_status))

    signals.freelancer_status_changed.connect(on_changed)
    try:
        freelancer = approved(reviewer, approver)
        workflow.application_suspend(freelancer=freelancer, approver=approver, reason="fraud check")
        workflow.application_reinstate(freelancer=freelancer, approver=approver, reason="cleared")
    finally:
        signals.freelancer_status_changed.disconnect(on_changed)
    assert seen == [
        (S.DRAFT, S.SUBMITTED),
        (S.SUBMITTED, S.APPROVED),
        (S.APPROVED, S.SUSPENDED),
        (S.SUSPENDED, S.APPROVED),
    ]


def _put_in(status: str, reviewer, approver) -> Freelancer:
    if status == S.DRAFT:
        return complete_draft()
    if status == S.SUBMITTED:
        return submitted()
    freelancer = submitted()
    if status == S.CHANGES_REQUESTED:
        return workflow.application_request_changes(
            freelancer=freelancer, actor=reviewer, reason="blurred CNIC"
        )
    workflow.application_recommend(freelancer=freelancer, reviewer=reviewer, decision="approve")
    if status == S.REJECTED:
        return workflow.application_reject(freelancer=freelancer, approver=approver, reason="no")
    workflow.application_approve(freelancer=freelancer, approver=approver)
    if status == S.SUSPENDED:
        return workflow.application_suspend(freelancer=freelancer, approver=approver, reason="x")
    return freelancer


ACTIONS = {
    "submit": lambda f, r, a: workflow.application_submit(freelancer=f, actor=f.user),
    "recommend": lambda f, r, a: workflow.application_recommend(
        freelancer=f, reviewer=r, decision="approve"
    ),
    "request_changes": lambda f, r, a: workflow.application_request_changes(
        freelancer=f, actor=r, reason="why"
    ),
    "approve": lambda f, r, a: workflow.application_approve(freelancer=f, approver=a),
    "reject": lambda f, r, a: workflow.application_reject(freelancer=f, approver=a, reason="why"),
    "suspend": lambda f, r, a: workflow.application_suspend(freelancer=f, approver=a, reason="w"),
    "reinstate": lambda f, r, a: workflow.application_reinstate(
        freelancer=f, approver=a, reason="w"
    ),
}
LEGAL = {
    (S.DRAFT, "submit"),
    (S.SUBMITTED, "recommend"),
    (S.SUBMITTED, "request_changes"),
    (S.CHANGES_REQUESTED, "submit"),
    (S.APPROVED, "suspend"),
    (S.SUSPENDED, "reinstate"),
}
ILLEGAL = [
    (status, action)
    for status in S.values
    for action in ACTIONS
    if (status, action) not in LEGAL
    # approve/reject from submitted are legal but need a recommendation (tested below)
    and not (status == S.SUBMITTED and action in {"approve", "reject"})
]


@pytest.mark.parametrize(("status", "action"), ILLEGAL)
def test_illegal_transition_is_refused_and_changes_nothing(status, action, reviewer, approver):
    freelancer = _put_in(status, reviewer, approver)
    history = StatusChange.objects.filter(freelancer=freelancer).count()
    with pytest.raises(workflow.WorkflowError):
        ACTIONS[action](freelancer, reviewer, approver)
    freelancer.refresh_from_db()
    assert freelancer.status == status
    assert StatusChange.objects.filter(freelancer=freelancer).count() == history


@pytest.mark.parametrize(("status", "action"), sorted(LEGAL))
def test_legal_transition_is_allowed(status, action, reviewer, approver):
    freelancer = _put_in(status, reviewer, approver)
    ACTIONS[action](freelancer, reviewer, approver)


def test_approval_needs_a_recommendation_first(approver):
    freelancer = submitted()
    with pytest.raises(workflow.FourEyesViolation):
        workflow.application_approve(freelancer=freelancer, approver=approver)
    with pytest.raises(workflow.FourEyesViolation):
        workflow.application_reject(freelancer=freelancer, approver=approver, reason="no")


def test_nobody_approves_what_they_recommended(approver):
    approver.groups.add(Group.objects.get(name="Reviewers"))
    approver = otp_verified(type(approver).objects.get(pk=approver.pk))
    freelancer = submitted()
    workflow.application_recommend(freelancer=freelancer, reviewer=approver, decision="approve")
    with pytest.raises(workflow.FourEyesViolation):
        workflow.application_approve(freelancer=freelancer, approver=approver)
    freelancer.refresh_from_db()
    assert freelancer.status == S.SUBMITTED and freelancer.registration_number is None


def test_nobody_reviews_or_decides_their_own_application(reviewer, approver):
    own = submitted(FreelancerFactory(user=approver, email_verified_at=timezone.now()))
    workflow.application_recommend(freelancer=own, reviewer=reviewer, decision="approve")
    with pytest.raises(workflow.FourEyesViolation):
        workflow.application_approve(freelancer=own, approver=approver)
    mine = submitted(FreelancerFactory(user=reviewer, email_verified_at=timezone.now()))
    with pytest.raises(workflow.FourEyesViolation):
        workflow.application_recommend(freelancer=mine, reviewer=reviewer, decision="approve")


def test_approver_without_verified_otp_cannot_decide(reviewer, approver_without_otp):
    freelancer = submitted()
    workflow.application_recommend(freelancer=freelancer, reviewer=reviewer, decision="approve")
    with pytest.raises(workflow.NotPermitted, match="one-time code"):
        workflow.application_approve(freelancer=freelancer, approver=approver_without_otp)


def test_reviewer_cannot_approve_and_plain_staff_cannot_recommend(reviewer, second_reviewer):
    freelancer = submitted()
    workflow.application_recommend(freelancer=freelancer, reviewer=reviewer, decision="approve")
    with pytest.raises(workflow.NotPermitted):
        workflow.application_approve(freelancer=freelancer, approver=otp_verified(second_reviewer))
    with pytest.raises(workflow.NotPermitted):
        workflow.application_recommend(
            freelancer=freelancer, reviewer=StaffFactory(), decision="approve"
        )


def test_a_second_reviewer_cannot_overwrite_the_recommendation(reviewer, second_reviewer):
    freelancer = submitted()
    workflow.application_recommend(freelancer=freelancer, reviewer=reviewer, decision="approve")
    with pytest.raises(workflow.WorkflowError):
        workflow.application_recommend(
            freelancer=freelancer, reviewer=second_reviewer, decision="reject"
        )


def test_resubmission_needs_a_fresh_recommendation(reviewer, approver):
    freelancer = submitted()
    workflow.application_recommend(freelancer=freelancer, reviewer=reviewer, decision="approve")
    workflow.application_request_changes(freelancer=freelancer, actor=reviewer, reason="CNIC")
    workflow.application_submit(freelancer=freelancer, actor=freelancer.user, response="done")
    with pytest.raises(workflow.FourEyesViolation):
        workflow.application_approve(freelancer=freelancer, approver=approver)
    messages = [c.reason for c in StatusChange.objects.filter(freelancer=freelancer)]
    assert "CNIC" in messages and "done" in messages


def test_registration_numbers_count_up_per_year_and_are_never_reused():
    first = workflow.registration_number_allocate(year=2031)
    second = workflow.registration_number_allocate(year=2031)
    assert (first, second) == ("PSEB-F-2031-000001", "PSEB-F-2031-000002")
    assert workflow.registration_number_allocate(year=2032) == "PSEB-F-2032-000001"
    assert RegistrationCounter.objects.get(year=2031).last_value == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_allocations_get_distinct_numbers():
    numbers, errors = [], []

    def allocate():
        try:
            for _ in range(5):
                numbers.append(workflow.registration_number_allocate(year=2040))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(numbers) == 40 and len(set(numbers)) == 40
    assert RegistrationCounter.objects.get(year=2040).last_value == 40


def _expiring(reviewer, approver, days_left: int) -> Freelancer:
    freelancer = approved(reviewer, approver)
    Freelancer.objects.filter(pk=freelancer.pk).update(
        expires_on=timezone.localdate() + datetime.timedelta(days=days_left)
    )
    freelancer.refresh_from_db()
    return freelancer


def test_renewal_keeps_the_number_and_extends_by_a_year(reviewer, second_reviewer, approver):
    freelancer = _expiring(reviewer, approver, days_left=10)
    number, old_expiry = freelancer.registration_number, freelancer.expires_on
    workflow.renewal_submit(
        freelancer=freelancer,
        actor=freelancer.user,
        mobile="0300 7654321",
        address="New address",
        city="Karachi",
        province="sindh",
        categories=list(freelancer.categories.all()),
    )
    freelancer.refresh_from_db()
    assert freelancer.status == S.SUBMITTED and freelancer.is_renewal
    assert freelancer.registration_state == "Registered (renewal under review)"
    workflow.application_recommend(
        freelancer=freelancer, reviewer=second_reviewer, decision="approve"
    )
    workflow.application_approve(freelancer=freelancer, approver=approver)
    freelancer.refresh_from_db()
    assert freelancer.registration_number == number
    assert freelancer.expires_on == old_expiry + datetime.timedelta(days=365)
    assert freelancer.mobile == "+923007654321" and not freelancer.is_renewal


def test_renewal_is_refused_long_before_expiry(reviewer, approver):
    freelancer = _expiring(reviewer, approver, days_left=200)
    with pytest.raises(workflow.IllegalTransition):
        workflow.renewal_submit(
            freelancer=freelancer,
            actor=freelancer.user,
            mobile="03001234567",
            address="a",
            city="b",
            province="sindh",
            categories=list(freelancer.categories.all()),
        )


def test_expiry_reminder_is_sent_once_per_expiry_date(
    reviewer, approver, django_capture_on_commit_callbacks
):
    soon = _expiring(reviewer, approver, days_left=20)
    _expiring(reviewer, approver, days_left=90)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert workflow.registrations_send_expiry_reminders() == 1
        assert workflow.registrations_send_expiry_reminders() == 0
    reminders = [m for m in delivered_mail() if "expires soon" in m.subject]
    assert len(reminders) == 1 and reminders[0].to == [soon.user.email]


def test_expired_registration_shows_expired(reviewer, approver):
    freelancer = _expiring(reviewer, approver, days_left=-1)
    assert freelancer.is_expired
    assert freelancer.registration_state == "Expired"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvers_deciding_at_once_issue_one_number():
    reseed()
    reviewer = StaffFactory(username="rev-c")
    reviewer.groups.add(Group.objects.get(name="Reviewers"))
    approvers = []
    for name in ("app-c1", "app-c2"):
        user = StaffFactory(username=name)
        user.groups.add(Group.objects.get(name="Approvers"))
        approvers.append(otp_verified(type(user).objects.get(pk=user.pk)))
    reviewer = type(reviewer).objects.get(pk=reviewer.pk)
    freelancer = submitted()
    workflow.application_recommend(freelancer=freelancer, reviewer=reviewer, decision="approve")
    outcomes = []
    barrier = threading.Barrier(2)

    def decide(approver):
        try:
            barrier.wait()
            workflow.application_approve(freelancer=freelancer, approver=approver)
            outcomes.append("approved")
        except workflow.WorkflowError as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(a,)) for a in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["IllegalTransition", "approved"]
    freelancer.refresh_from_db()
    assert freelancer.registration_number is not None
    assert StatusChange.objects.filter(freelancer=freelancer, to_status=S.APPROVED).count() == 1
