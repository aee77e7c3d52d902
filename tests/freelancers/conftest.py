"""Fixtures for the freelancers tests: staff in their groups, verified TOTP, complete drafts."""

import datetime

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from freelancers.models import Document, Freelancer, ServiceCategory
from freelancers.services import applications, documents, workflow
from tests.factories import FreelancerFactory, StaffFactory

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "private")},
        },
    }
    return tmp_path / "private"


def reseed() -> None:
    """Put back the rows the data migrations create (categories, staff groups): a transactional
    test that ran earlier flushed them. (serialized_rollback would clash with the content types
    that the flush's post_migrate recreates.)"""
    from importlib import import_module

    from django.contrib.auth.models import Permission

    categories = import_module("freelancers.migrations.0002_seed_service_categories")
    groups = import_module("freelancers.migrations.0004_staff_groups")
    for slug, name, is_it in categories.CATEGORIES:
        ServiceCategory.objects.update_or_create(slug=slug, defaults={"name": name, "is_it": is_it})
    for name, codenames in groups.GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="freelancers", codename__in=codenames
            )
        )


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


def current_token(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():06d}"


def otp_verified(user):
    """Give the user a confirmed TOTP device and verify this user object with a real code."""
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="test", defaults={"confirmed": True}
    )
    # A code is accepted once per time step (replay protection); tests verify the same user twice.
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    device.refresh_from_db()
    assert workflow.staff_verify_otp(user=user, token=current_token(device))
    return user


@pytest.fixture
def reviewer(db):
    user = StaffFactory(username="reviewer-1")
    user.groups.add(Group.objects.get(name="Reviewers"))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def second_reviewer(db):
    user = StaffFactory(username="reviewer-2")
    user.groups.add(Group.objects.get(name="Reviewers"))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def approver(db):
    user = StaffFactory(username="approver-1")
    user.groups.add(Group.objects.get(name="Approvers"))
    return otp_verified(type(user).objects.get(pk=user.pk))


@pytest.fixture
def approver_without_otp(db):
    user = StaffFactory(username="approver-no-otp")
    user.groups.add(Group.objects.get(name="Approvers"))
    return type(user).objects.get(pk=user.pk)


def complete_draft(freelancer: Freelancer | None = None) -> Freelancer:
    """A draft with every required step done (factory personal details, a category, both CNIC
    sides, the declaration)."""
    freelancer = freelancer or FreelancerFactory(
        email_verified_at=datetime.datetime.now(datetime.UTC)
    )
    applications.freelancer_set_categories(
        freelancer=freelancer, categories=ServiceCategory.objects.filter(slug="web-development")
    )
    documents.document_upload(
        freelancer=freelancer, kind=Document.Kind.CNIC_FRONT, upload=upload("front.png", PNG)
    )
    documents.document_upload(
        freelancer=freelancer, kind=Document.Kind.CNIC_BACK, upload=upload("back.pdf", PDF)
    )
    applications.freelancer_accept_declaration(freelancer=freelancer)
    return freelancer


def submitted(freelancer: Freelancer | None = None) -> Freelancer:
    freelancer = complete_draft(freelancer)
    return workflow.application_submit(freelancer=freelancer, actor=freelancer.user)


def approved(reviewer, approver, freelancer: Freelancer | None = None) -> Freelancer:
    freelancer = submitted(freelancer)
    workflow.application_recommend(freelancer=freelancer, reviewer=reviewer, decision="approve")
    return workflow.application_approve(freelancer=freelancer, approver=approver)


def delivered_mail():
    """mail.outbox after every stored e-mail was sent. With Celery eager (SQLite run) the on-commit
    task already sent them; with Redis and no worker in this test, send them here as the sweep
    would."""
    from django.core import mail

    from freelancers.models import OutboundEmail
    from freelancers.services.emails import email_send

    for pk in OutboundEmail.objects.filter(sent_at__isnull=True).values_list("pk", flat=True):
        email_send(email_id=pk)
    return mail.outbox
