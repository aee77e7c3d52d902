"""Sign-up, e-mail verification and password-reset e-mail for freelancers."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from freelancers.models import Freelancer
from freelancers.services.emails import email_enqueue

VERIFY_SALT = "freelancers.email-verification"
VERIFY_MAX_AGE = 3 * 24 * 3600


class EmailTaken(Exception):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


def freelancer_sign_up(*, email: str, password: str) -> Freelancer:
    """Create the sign-in account (username = normalised e-mail) and an empty draft application,
    and e-mail a verification link after commit.

    The unique username enforces one account per e-mail, also under concurrent sign-ups.
    Raises EmailTaken.
    """
    User = get_user_model()
    email = normalise_email(email)
    try:
        with transaction.atomic():
            if User.objects.filter(username=email).exists():
                raise EmailTaken(email)
            user = User.objects.create_user(username=email, email=email, password=password)
            freelancer = Freelancer.objects.create(user=user)
            verification_email_send(freelancer=freelancer)
    except IntegrityError:
        raise EmailTaken(email)
    return freelancer


def verification_token(*, user: AbstractBaseUser) -> str:
    return signing.dumps({"u": user.pk, "e": user.email}, salt=VERIFY_SALT)


def verification_email_send(*, freelancer: Freelancer) -> None:
    """Enqueue the verification e-mail (a signed, expiring link)."""
    token = verification_token(user=freelancer.user)
    link = settings.PORTAL_BASE_URL + reverse("freelancers:verify-email", args=[token])
    email_enqueue(
        to=freelancer.user.email,
        subject="Confirm your e-mail address",
        body=(
            "Welcome to the Software Export Board's freelancer portal.\n\n"
            f"Confirm your e-mail address by opening this link within 3 days:\n{link}\n"
        ),
        sensitive=True,
    )


def freelancer_verify_email(*, token: str) -> Freelancer | None:
    """Mark the e-mail verified if the token is valid and unexpired. Idempotent; returns None for a
    bad or expired token, or one issued for an e-mail address the account no longer has."""
    try:
        data = signing.loads(token, salt=VERIFY_SALT, max_age=VERIFY_MAX_AGE)
    except signing.BadSignature:
        return None
    freelancer = Freelancer.objects.select_related("user").filter(user_id=data.get("u")).first()
    if freelancer is None or freelancer.user.email != data.get("e"):
        return None
    if freelancer.email_verified_at is None:
        Freelancer.objects.filter(pk=freelancer.pk, email_verified_at__isnull=True).update(
            email_verified_at=timezone.now()
        )
        freelancer.refresh_from_db()
    return freelancer
