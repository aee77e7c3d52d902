"""The freelancer's own application: the draft saved step by step, and what is still missing."""

import datetime
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from freelancers.models import Document, Education, Freelancer, PlatformProfile, ServiceCategory
from freelancers.validators import normalise_cnic, normalise_mobile


class ApplicationLocked(Exception):
    """The application is under review or decided and cannot be edited now."""


def ensure_editable(freelancer: Freelancer) -> None:
    if not freelancer.is_editable:
        raise ApplicationLocked(
            f"The application is {freelancer.get_status_display().lower()} and cannot be changed."
        )


def freelancer_update_personal(
    *,
    freelancer: Freelancer,
    full_name: str,
    cnic: str,
    date_of_birth: datetime.date,
    mobile: str,
    address: str,
    city: str,
    province: str,
) -> Freelancer:
    """Save the personal-details step of the draft.

    Normalises CNIC (python-stdnum) and mobile; raises ValidationError naming the field for a bad or
    already registered CNIC (the unique constraint decides under concurrency), ApplicationLocked
    when the application is not editable. A renewal may not change the CNIC.
    """
    ensure_editable(freelancer)
    errors = {}
    try:
        cnic = normalise_cnic(cnic)
    except ValidationError as exc:
        errors["cnic"] = exc.messages
    try:
        mobile = normalise_mobile(mobile)
    except ValidationError as exc:
        errors["mobile"] = exc.messages
    if errors:
        raise ValidationError(errors)
    if freelancer.registration_number and freelancer.cnic and cnic != freelancer.cnic:
        raise ValidationError({"cnic": ["A registered CNIC cannot be changed."]})
    if Freelancer.objects.filter(cnic=cnic).exclude(pk=freelancer.pk).exists():
        raise ValidationError({"cnic": ["This CNIC is already registered."]})
    freelancer.full_name = full_name.strip()
    freelancer.cnic = cnic
    freelancer.date_of_birth = date_of_birth
    freelancer.mobile = mobile
    freelancer.address = address.strip()
    freelancer.city = city.strip()
    freelancer.province = province
    try:
        with transaction.atomic():
            freelancer.save()
    except IntegrityError:
        raise ValidationError({"cnic": ["This CNIC is already registered."]})
    return freelancer


def freelancer_set_categories(
    *, freelancer: Freelancer, categories: Iterable[ServiceCategory]
) -> None:
    """Replace the freelancer's service categories (at least one)."""
    ensure_editable(freelancer)
    categories = list(categories)
    if not categories:
        raise ValidationError({"categories": ["Choose at least one service category."]})
    freelancer.categories.set(categories)


def freelancer_set_platforms(*, freelancer: Freelancer, profiles: list[tuple[str, str]]) -> None:
    """Replace the freelancer's platform profiles with (platform, url) pairs."""
    ensure_editable(freelancer)
    with transaction.atomic():
        freelancer.platforms.all().delete()
        seen = set()
        for platform, url in profiles:
            if url in seen:
                continue
            seen.add(url)
            PlatformProfile.objects.create(freelancer=freelancer, platform=platform, url=url)


def freelancer_set_education(
    *, freelancer: Freelancer, entries: list[tuple[str, str, str, int]]
) -> None:
    """Replace the freelancer's education with (level, institution, field, year) entries."""
    ensure_editable(freelancer)
    with transaction.atomic():
        freelancer.education.all().delete()
        for level, institution, field_of_study, year in entries:
            Education.objects.create(
                freelancer=freelancer,
                level=level,
                institution=institution,
                field_of_study=field_of_study,
                year_completed=year,
            )


def freelancer_accept_declaration(*, freelancer: Freelancer) -> None:
    ensure_editable(freelancer)
    freelancer.declaration_accepted_at = timezone.now()
    freelancer.save(update_fields=["declaration_accepted_at", "updated_at"])


STEPS = [
    ("personal", "Personal details"),
    ("skills", "Skills"),
    ("platforms", "Platform profiles"),
    ("education", "Education"),
    ("documents", "Documents"),
    ("declaration", "Declaration and submit"),
]


def application_missing(*, freelancer: Freelancer) -> dict[str, str]:
    """Step key -> what is missing before the application can be submitted (empty: complete).

    Platform profiles and education are optional; the degree document is optional.
    """
    missing = {}
    personal = [
        freelancer.full_name,
        freelancer.cnic,
        freelancer.date_of_birth,
        freelancer.mobile,
        freelancer.address,
        freelancer.city,
        freelancer.province,
    ]
    if not all(personal):
        missing["personal"] = "Fill in your personal details."
    if not freelancer.categories.exists():
        missing["skills"] = "Choose at least one service category."
    if not freelancer.is_renewal:
        kinds = set(freelancer.documents.values_list("kind", flat=True))
        needed = {Document.Kind.CNIC_FRONT, Document.Kind.CNIC_BACK} - kinds
        if needed:
            missing["documents"] = "Upload both sides of your CNIC."
    if not freelancer.declaration_accepted_at:
        missing["declaration"] = "Accept the declaration."
    return missing
