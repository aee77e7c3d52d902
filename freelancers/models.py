"""Freelancers: the people who register, and the service categories they offer."""

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


class Province(models.TextChoices):
    PUNJAB = "punjab", "Punjab"
    SINDH = "sindh", "Sindh"
    KPK = "khyber_pakhtunkhwa", "Khyber Pakhtunkhwa"
    BALOCHISTAN = "balochistan", "Balochistan"
    ICT = "islamabad", "Islamabad Capital Territory"
    GB = "gilgit_baltistan", "Gilgit-Baltistan"
    AJK = "azad_kashmir", "Azad Jammu and Kashmir"


class ServiceCategory(models.Model):
    """A kind of service a freelancer offers; seeded by a data migration, editable in the admin."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100, unique=True)
    is_it = models.BooleanField(default=True, help_text="IT/ITeS service (counts for IT exports)")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "service categories"

    def __str__(self) -> str:
        return self.name


class Freelancer(models.Model):
    """A freelancer's registration: one per person (CNIC) and per sign-in account."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUSPENDED = "suspended", "Suspended"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="freelancer"
    )
    full_name = models.CharField(max_length=200, blank=True)
    # Normalised to 13 digits without dashes; unique, so each CNIC registers once.
    cnic = models.CharField(max_length=13, unique=True, null=True, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    mobile = models.CharField(max_length=16, blank=True)
    address = models.CharField(max_length=300, blank=True)
    city = models.CharField(max_length=100, blank=True)
    province = models.CharField(max_length=32, choices=Province.choices, blank=True, db_index=True)
    categories = models.ManyToManyField(ServiceCategory, blank=True, related_name="freelancers")
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    registration_number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "-submitted_at"], name="freelancer_status_sub_idx")
        ]

    def __str__(self) -> str:
        return self.full_name or f"Freelancer #{self.pk}"

    @property
    def masked_cnic(self) -> str:
        if not self.cnic:
            return ""
        return f"{self.cnic[:5]}-*******-{self.cnic[-1]}"
