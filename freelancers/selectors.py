"""Reads that more than one caller needs."""

from django.db.models import QuerySet

from freelancers.models import Freelancer, StatusChange


def freelancer_for_user(*, user) -> Freelancer | None:
    if not user.is_authenticated:
        return None
    return Freelancer.objects.filter(user=user).select_related("user").first()


def public_registration(*, registration_number: str) -> Freelancer | None:
    """A registration as the public verification page shows it (no personal data is read out
    beyond name, status and categories by the caller)."""
    return (
        Freelancer.objects.filter(registration_number=registration_number.strip().upper())
        .only("full_name", "status", "registration_number", "expires_on", "is_renewal")
        .prefetch_related("categories")
        .first()
    )


def board_messages(*, freelancer: Freelancer) -> QuerySet[StatusChange]:
    return StatusChange.objects.filter(freelancer=freelancer).select_related("actor")


def applications_for_staff() -> QuerySet[Freelancer]:
    return Freelancer.objects.select_related("user").prefetch_related("categories")
