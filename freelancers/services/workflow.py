"""The board's workflow: legal transitions, four eyes, registration numbers, expiry and renewal.

Every entry point (web forms, admin, API, shell, tasks) calls these functions, so the rules hold
everywhere. Each transition locks the freelancer row, records a StatusChange (who, when, why),
sends ``freelancer_status_changed`` inside the transaction and e-mails the freelancer after commit.
"""

import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from freelancers import signals
from freelancers.models import Freelancer, Recommendation, RegistrationCounter, StatusChange
from freelancers.services.applications import application_missing
from freelancers.services.emails import email_enqueue

S = Freelancer.Status
REGISTRATION_DAYS = 365
RENEWAL_WINDOW_DAYS = 30
REMINDER_DAYS = 30

LEGAL_TRANSITIONS: dict[str, set[str]] = {
    S.DRAFT: {S.SUBMITTED},
    S.SUBMITTED: {S.CHANGES_REQUESTED, S.APPROVED, S.REJECTED},
    S.CHANGES_REQUESTED: {S.SUBMITTED},
    S.APPROVED: {S.SUSPENDED, S.SUBMITTED},  # submitted: a renewal
    S.SUSPENDED: {S.APPROVED},  # reinstatement
    S.REJECTED: set(),
}


class WorkflowError(Exception):
    """A workflow rule refused the action; the message says which, in words for the user."""


class IllegalTransition(WorkflowError):
    pass


class NotPermitted(WorkflowError):
    pass


class FourEyesViolation(WorkflowError):
    pass


class IncompleteApplication(WorkflowError):
    def __init__(self, missing: dict[str, str]):
        self.missing = missing
        super().__init__("The application is incomplete: " + " ".join(missing.values()))


def _today() -> datetime.date:
    return timezone.localdate()


def actor_otp_verified(actor: AbstractBaseUser) -> bool:
    """django-otp's OTPMiddleware sets ``is_verified`` on request.user; a user loaded elsewhere
    (shell, task) is verified only after ``staff_verify_otp``."""
    is_verified = getattr(actor, "is_verified", None)
    return bool(is_verified()) if callable(is_verified) else False


def staff_verify_otp(*, user: AbstractBaseUser, token: str) -> bool:
    """Check a TOTP code against the user's confirmed devices; on success mark this user object as
    verified (for shell use: ``staff_verify_otp(user=u, token="123456")`` then act as u)."""
    from django_otp import match_token

    device = match_token(user, token)
    if device is None:
        return False
    user.otp_device = device
    user.is_verified = lambda: True
    return True


def _require_staff(actor: AbstractBaseUser, perm: str) -> None:
    if not (actor and actor.is_active and actor.is_staff and actor.has_perm(perm)):
        raise NotPermitted("You do not have permission to do this.")


def _require_approver(actor: AbstractBaseUser) -> None:
    _require_staff(actor, "freelancers.approve_application")
    if not actor_otp_verified(actor):
        raise NotPermitted("Approvers must sign in with their one-time code (TOTP) to decide.")


def _not_own(actor: AbstractBaseUser, freelancer: Freelancer) -> None:
    if freelancer.user_id == actor.pk:
        raise FourEyesViolation("Nobody may review or decide their own application.")


def _lock(freelancer: Freelancer) -> Freelancer:
    locked = Freelancer.objects.select_for_update().get(pk=freelancer.pk)
    return locked


def _transition(
    *, freelancer: Freelancer, to: str, actor: AbstractBaseUser | None, reason: str
) -> StatusChange:
    """Change status (caller holds the row lock), record it, signal, notify."""
    old = freelancer.status
    if to not in LEGAL_TRANSITIONS[old]:
        raise IllegalTransition(
            f"An application that is {Freelancer.Status(old).label.lower()} cannot become "
            f"{Freelancer.Status(to).label.lower()}."
        )
    freelancer.status = to
    freelancer._change_reason = (reason or f"{old} -> {to}")[:100]
    freelancer.save()
    change = StatusChange.objects.create(
        freelancer=freelancer, from_status=old, to_status=to, actor=actor, reason=reason
    )
    signals.freelancer_status_changed.send(
        sender=Freelancer, freelancer=freelancer, old_status=old, new_status=to
    )
    dashboard = settings.PORTAL_BASE_URL + reverse("freelancers:dashboard")
    body = f"Your application is now: {Freelancer.Status(to).label}.\n"
    if reason:
        body += f"\nMessage from the board:\n{reason}\n"
    body += f"\nSee it at {dashboard}\n"
    email_enqueue(
        to=freelancer.user.email,
        subject=f"Your registration: {Freelancer.Status(to).label}",
        body=body,
    )
    return change


def application_submit(
    *, freelancer: Freelancer, actor: AbstractBaseUser, response: str = ""
) -> Freelancer:
    """Submit a complete draft, or resubmit after a request for changes (with the freelancer's
    answer as the reason). Only the owner may submit. Raises IncompleteApplication,
    IllegalTransition, NotPermitted. Starts a new review round."""
    with transaction.atomic():
        freelancer = _lock(freelancer)
        if freelancer.user_id != actor.pk:
            raise NotPermitted("Only the applicant can submit the application.")
        if freelancer.status not in (S.DRAFT, S.CHANGES_REQUESTED):
            raise IllegalTransition(
                "Only a draft or an application returned for changes can be submitted."
            )
        missing = application_missing(freelancer=freelancer)
        if missing:
            raise IncompleteApplication(missing)
        freelancer.submitted_at = timezone.now()
        freelancer.review_round += 1
        _transition(freelancer=freelancer, to=S.SUBMITTED, actor=actor, reason=response)
    return freelancer


def renewal_is_open(freelancer: Freelancer, today: datetime.date | None = None) -> bool:
    today = today or _today()
    return bool(
        freelancer.status == S.APPROVED
        and freelancer.registration_number
        and freelancer.expires_on
        and freelancer.expires_on - datetime.timedelta(days=RENEWAL_WINDOW_DAYS) <= today
    )


def renewal_submit(
    *,
    freelancer: Freelancer,
    actor: AbstractBaseUser,
    mobile: str,
    address: str,
    city: str,
    province: str,
    categories: list,
    response: str = "",
) -> Freelancer:
    """Submit a renewal of an approved registration, from 30 days before expiry onwards.

    The shorter re-submission: the freelancer confirms contact details, categories and the
    declaration; documents are not asked again. The registration number is kept; the board
    approves it like a first application. Raises IllegalTransition outside the window,
    NotPermitted for anyone but the owner, ValidationError for a bad mobile number."""
    from freelancers.validators import normalise_mobile

    mobile = normalise_mobile(mobile)
    with transaction.atomic():
        freelancer = _lock(freelancer)
        if freelancer.user_id != actor.pk:
            raise NotPermitted("Only the registered freelancer can renew.")
        if not renewal_is_open(freelancer):
            raise IllegalTransition("Renewal opens 30 days before the registration expires.")
        freelancer.mobile = mobile
        freelancer.address = address.strip()
        freelancer.city = city.strip()
        freelancer.province = province
        freelancer.is_renewal = True
        freelancer.declaration_accepted_at = timezone.now()
        freelancer.categories.set(categories)
        missing = application_missing(freelancer=freelancer)
        if missing:
            raise IncompleteApplication(missing)
        freelancer.submitted_at = timezone.now()
        freelancer.review_round += 1
        _transition(
            freelancer=freelancer, to=S.SUBMITTED, actor=actor, reason=response or "Renewal"
        )
    return freelancer


def application_recommend(
    *, freelancer: Freelancer, reviewer: AbstractBaseUser, decision: str, note: str = ""
) -> Recommendation:
    """The first pair of eyes: record a recommendation (approve/reject) for the current round.

    Needs ``freelancers.recommend_application``; never on one's own application; one per round
    (a second call by the same reviewer updates it, another reviewer is refused)."""
    _require_staff(reviewer, "freelancers.recommend_application")
    if decision not in Recommendation.Decision.values:
        raise WorkflowError("The recommendation must be approve or reject.")
    with transaction.atomic():
        freelancer = _lock(freelancer)
        _not_own(reviewer, freelancer)
        if freelancer.status != S.SUBMITTED:
            raise IllegalTransition("Only a submitted application can be recommended.")
        existing = Recommendation.objects.filter(
            freelancer=freelancer, review_round=freelancer.review_round
        ).first()
        if existing and existing.reviewer_id != reviewer.pk:
            raise WorkflowError(f"{existing.reviewer} already recommended this application.")
        recommendation, _ = Recommendation.objects.update_or_create(
            freelancer=freelancer,
            review_round=freelancer.review_round,
            defaults={"reviewer": reviewer, "decision": decision, "note": note},
        )
    return recommendation


def current_recommendation(freelancer: Freelancer) -> Recommendation | None:
    return (
        Recommendation.objects.select_related("reviewer")
        .filter(freelancer=freelancer, review_round=freelancer.review_round)
        .first()
    )


def _decide_checks(freelancer: Freelancer, approver: AbstractBaseUser) -> Recommendation:
    _require_approver(approver)
    _not_own(approver, freelancer)
    if freelancer.status != S.SUBMITTED:
        raise IllegalTransition("Only a submitted application can be decided.")
    recommendation = current_recommendation(freelancer)
    if recommendation is None:
        raise FourEyesViolation("A reviewer must recommend the application before a decision.")
    if recommendation.reviewer_id == approver.pk:
        raise FourEyesViolation("You recommended this application; another approver must decide.")
    return recommendation


def registration_number_allocate(*, year: int) -> str:
    """Next registration number for the year, e.g. PSEB-F-2026-000123.

    Allocated from a per-year counter row under select_for_update (never max()+1), so numbers
    are unique under concurrency; the counter only moves forward, so a number once issued is
    never issued again (an approval that rolls back rolls its increment back with it)."""
    with transaction.atomic():
        RegistrationCounter.objects.get_or_create(year=year)
        counter = RegistrationCounter.objects.select_for_update().get(year=year)
        counter.last_value = F("last_value") + 1
        counter.save(update_fields=["last_value"])
        counter.refresh_from_db()
    return f"PSEB-F-{year}-{counter.last_value:06d}"


def application_approve(
    *, freelancer: Freelancer, approver: AbstractBaseUser, reason: str = ""
) -> Freelancer:
    """Approve a submitted application (first registration or renewal).

    Four eyes: needs ``freelancers.approve_application`` and a verified OTP device, a
    recommendation for this round by someone else, and not one's own application. A first approval
    issues a registration number; a renewal keeps it. Valid for one year from approval (a renewal
    extends from the old expiry if that is later). Sends ``freelancer_approved`` in the
    transaction."""
    with transaction.atomic():
        freelancer = _lock(freelancer)
        _decide_checks(freelancer, approver)
        today = _today()
        if not freelancer.registration_number:
            freelancer.registration_number = registration_number_allocate(year=today.year)
        start = max(today, freelancer.expires_on or today) if freelancer.is_renewal else today
        freelancer.expires_on = start + datetime.timedelta(days=REGISTRATION_DAYS)
        freelancer.approved_at = timezone.now()
        freelancer.is_renewal = False
        freelancer.reminder_sent_for = None
        _transition(freelancer=freelancer, to=S.APPROVED, actor=approver, reason=reason)
        signals.freelancer_approved.send(sender=Freelancer, freelancer=freelancer)
    return freelancer


def application_reject(
    *, freelancer: Freelancer, approver: AbstractBaseUser, reason: str
) -> Freelancer:
    """Reject a submitted application (same four-eyes rules as approval). A reason is required.
    A rejected renewal keeps its registration number, which then simply expires."""
    if not reason.strip():
        raise WorkflowError("Give a reason for the rejection.")
    with transaction.atomic():
        freelancer = _lock(freelancer)
        _decide_checks(freelancer, approver)
        _transition(freelancer=freelancer, to=S.REJECTED, actor=approver, reason=reason)
    return freelancer


def application_request_changes(
    *, freelancer: Freelancer, actor: AbstractBaseUser, reason: str
) -> Freelancer:
    """Return a submitted application to the freelancer with a message (reviewer or approver)."""
    if not (
        actor.has_perm("freelancers.recommend_application")
        or actor.has_perm("freelancers.approve_application")
    ):
        raise NotPermitted("You do not have permission to do this.")
    _require_staff(actor, "freelancers.view_freelancer")
    if not reason.strip():
        raise WorkflowError("Say what the freelancer must change.")
    with transaction.atomic():
        freelancer = _lock(freelancer)
        _not_own(actor, freelancer)
        _transition(freelancer=freelancer, to=S.CHANGES_REQUESTED, actor=actor, reason=reason)
    return freelancer


def application_suspend(
    *, freelancer: Freelancer, approver: AbstractBaseUser, reason: str
) -> Freelancer:
    """Suspend an approved registration (approver with OTP; reason required)."""
    _require_approver(approver)
    if not reason.strip():
        raise WorkflowError("Give a reason for the suspension.")
    with transaction.atomic():
        freelancer = _lock(freelancer)
        _not_own(approver, freelancer)
        if freelancer.status == S.APPROVED and freelancer.is_renewal:
            freelancer.is_renewal = False
        _transition(freelancer=freelancer, to=S.SUSPENDED, actor=approver, reason=reason)
    return freelancer


def application_reinstate(
    *, freelancer: Freelancer, approver: AbstractBaseUser, reason: str
) -> Freelancer:
    """Reinstate a suspended registration (approver with OTP). The expiry date is unchanged.
    Sends ``freelancer_approved``."""
    _require_approver(approver)
    if not reason.strip():
        raise WorkflowError("Give a reason for the reinstatement.")
    with transaction.atomic():
        freelancer = _lock(freelancer)
        _not_own(approver, freelancer)
        if freelancer.status != S.SUSPENDED:
            raise IllegalTransition("Only a suspended registration can be reinstated.")
        _transition(freelancer=freelancer, to=S.APPROVED, actor=approver, reason=reason)
        signals.freelancer_approved.send(sender=Freelancer, freelancer=freelancer)
    return freelancer


def registrations_send_expiry_reminders(*, today: datetime.date | None = None) -> int:
    """E-mail every approved freelancer whose registration expires within 30 days, once per
    expiry date. Safe to run twice or concurrently: each reminder is claimed with a conditional
    UPDATE (``reminder_sent_for`` != ``expires_on``) in the transaction that enqueues its e-mail.
    Returns the number of reminders sent now."""
    today = today or _today()
    horizon = today + datetime.timedelta(days=REMINDER_DAYS)
    due = (
        Freelancer.objects.filter(status=S.APPROVED, expires_on__gte=today, expires_on__lte=horizon)
        .filter(Q(reminder_sent_for__isnull=True) | ~Q(reminder_sent_for=F("expires_on")))
        .values_list("pk", flat=True)
    )
    sent = 0
    renew_url = settings.PORTAL_BASE_URL + reverse("freelancers:renew")
    for pk in due.iterator(chunk_size=500):
        with transaction.atomic():
            claimed = (
                Freelancer.objects.filter(pk=pk, status=S.APPROVED)
                .filter(Q(reminder_sent_for__isnull=True) | ~Q(reminder_sent_for=F("expires_on")))
                .update(reminder_sent_for=F("expires_on"))
            )
            if not claimed:
                continue
            freelancer = Freelancer.objects.select_related("user").get(pk=pk)
            email_enqueue(
                to=freelancer.user.email,
                subject=f"Your registration {freelancer.registration_number} expires soon",
                body=(
                    f"Your registration {freelancer.registration_number} expires on "
                    f"{freelancer.expires_on:%d %B %Y}.\nRenew it at {renew_url}\n"
                ),
            )
            sent += 1
    return sent
