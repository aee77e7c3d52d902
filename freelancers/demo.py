"""Demo population for the freelancers app: staff users and freelancers in every status."""

import datetime
import hashlib
import random

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from freelancers.models import Freelancer, Province, ServiceCategory, StatusChange
from freelancers.services.workflow import registration_number_allocate

DEMO_PASSWORD = "demo-pass-2026"
STAFF = [
    # username, is_superuser, description
    ("admin", True, "superuser: everything"),
    ("reviewer", False, "board reviewer: recommends approve/reject"),
    ("approver", False, "board approver: decides applications, approves payouts"),
]
STAFF_GROUPS = {"reviewer": ["Reviewers"], "approver": ["Approvers"], "admin": []}
REGISTRATION_DAYS = 365


def demo_totp_key(username: str) -> str:
    """A fixed TOTP secret per demo staff user (hex), so the demo prints the same one each run.
    Demo only: real devices get random keys when enrolled in the admin."""
    return hashlib.sha256(f"pseb-demo-totp-{username}".encode()).hexdigest()[:40]


def ensure_totp_device(user) -> TOTPDevice:
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="demo", defaults={"key": demo_totp_key(user.username), "confirmed": True}
    )
    if device.key != demo_totp_key(user.username) or not device.confirmed:
        device.key = demo_totp_key(user.username)
        device.confirmed = True
        device.save()
    return device


FIRST = ["Ayesha", "Bilal", "Hina", "Usman", "Sana", "Hamza", "Fatima", "Ali", "Zainab", "Omar"]
LAST = [
    "Khan",
    "Ahmed",
    "Malik",
    "Qureshi",
    "Siddiqui",
    "Butt",
    "Raza",
    "Shah",
    "Iqbal",
    "Chaudhry",
]
CITIES = {
    Province.PUNJAB: "Lahore",
    Province.SINDH: "Karachi",
    Province.KPK: "Peshawar",
    Province.BALOCHISTAN: "Quetta",
    Province.ICT: "Islamabad",
    Province.GB: "Gilgit",
    Province.AJK: "Muzaffarabad",
}
PROVINCE_CNIC_PREFIX = {
    Province.PUNJAB: "35202",
    Province.SINDH: "42101",
    Province.KPK: "17301",
    Province.BALOCHISTAN: "54400",
    Province.ICT: "61101",
    Province.GB: "71501",
    Province.AJK: "82203",
}
FREELANCER_COUNT = 40


def demo_cnic(index: int, province: str) -> str:
    """A CNIC that python-stdnum accepts: province prefix, 7 digits, gender digit."""
    return f"{PROVINCE_CNIC_PREFIX[province]}{1000000 + index:07d}{1 + index % 9}"


def load_staff() -> list[tuple[str, str]]:
    User = get_user_model()
    created = []
    for username, is_superuser, description in STAFF:
        user, _ = User.objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@pseb.example.pk", "is_staff": True},
        )
        user.is_staff = True
        user.is_superuser = is_superuser
        user.set_password(DEMO_PASSWORD)
        user.save()
        user.groups.set(Group.objects.filter(name__in=STAFF_GROUPS.get(username, [])))
        ensure_totp_device(user)
        created.append((username, description))
    return created


def staff_sign_in_lines() -> list[str]:
    """What a newcomer needs to sign in to the admin with the second factor."""
    lines = [
        "Admin sign-in needs a TOTP code (second factor). Current code for a user:",
        "  python manage.py demo_totp <username>",
        "or add the secret to an authenticator app:",
    ]
    for device in TOTPDevice.objects.filter(name="demo").select_related("user").order_by("user_id"):
        lines.append(f"  {device.user.username:<10} {device.config_url}")
    return lines


def load_freelancers(rng: random.Random) -> list[Freelancer]:
    """FREELANCER_COUNT freelancers; most approved, the rest spread over the other statuses."""
    User = get_user_model()
    categories = list(ServiceCategory.objects.all())
    provinces = list(Province)
    statuses = [Freelancer.Status.APPROVED] * 7 + [
        Freelancer.Status.SUBMITTED,
        Freelancer.Status.DRAFT,
        Freelancer.Status.CHANGES_REQUESTED,
    ]
    freelancers = []
    for index in range(FREELANCER_COUNT):
        first, last = FIRST[index % 10], LAST[(index * 3 + index // 10) % 10]
        username = f"freelancer{index + 1}"
        user, _ = User.objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@example.pk", "first_name": first, "last_name": last},
        )
        if not user.has_usable_password():
            user.set_password(DEMO_PASSWORD)
            user.save()
        if not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
            user.save()
        province = provinces[index % len(provinces)] if index % 3 else Province.PUNJAB
        status = statuses[index % len(statuses)] if index else Freelancer.Status.APPROVED
        submitted_at = timezone.now() - datetime.timedelta(days=700 - index * 15)
        freelancer, created = Freelancer.objects.get_or_create(
            user=user,
            defaults={
                "full_name": f"{first} {last}",
                "cnic": demo_cnic(index, province),
                "date_of_birth": datetime.date(1985 + index % 15, 1 + index % 12, 1 + index % 27),
                "mobile": f"+92300{1000000 + index * 7919 % 9000000:07d}",
                "address": f"House {index + 1}, Street {index % 20 + 1}",
                "city": CITIES[province],
                "province": province,
                "status": status,
                "submitted_at": None if status == Freelancer.Status.DRAFT else submitted_at,
                "email_verified_at": submitted_at,
                "declaration_accepted_at": (
                    None if status == Freelancer.Status.DRAFT else submitted_at
                ),
                "review_round": 0 if status == Freelancer.Status.DRAFT else 1,
            },
        )
        picked = rng.sample(categories, k=1 + index % 3)  # drawn every run: same stream each time
        if created:
            freelancer.categories.set(picked)
            if status != Freelancer.Status.DRAFT:
                StatusChange.objects.create(
                    freelancer=freelancer,
                    from_status=Freelancer.Status.DRAFT,
                    to_status=Freelancer.Status.SUBMITTED,
                    actor=user,
                )
            if status == Freelancer.Status.APPROVED:
                approved_at = submitted_at + datetime.timedelta(days=3)
                freelancer.approved_at = approved_at
                # Numbers come from the same counter as real approvals, so they never collide.
                freelancer.registration_number = registration_number_allocate(year=approved_at.year)
                # Valid one year: the oldest demo registrations show as expired, a few are
                # inside the 30-day renewal window.
                freelancer.expires_on = (
                    approved_at + datetime.timedelta(days=REGISTRATION_DAYS)
                ).date()
                freelancer.save()
            elif status == Freelancer.Status.CHANGES_REQUESTED:
                StatusChange.objects.create(
                    freelancer=freelancer,
                    from_status=Freelancer.Status.SUBMITTED,
                    to_status=status,
                    reason="Your CNIC back side is blurred; please upload a clearer scan.",
                )
        freelancers.append(freelancer)
    return freelancers
