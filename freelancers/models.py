"""Freelancers: the people who register, their application, documents and the board's workflow."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
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
    # Set when the sign-up e-mail link is followed; the application opens only after that.
    email_verified_at = models.DateTimeField(null=True, blank=True)
    declaration_accepted_at = models.DateTimeField(null=True, blank=True)
    # The current submission renews an existing registration (shorter form, number kept).
    is_renewal = models.BooleanField(default=False)
    # Counts submissions; a recommendation belongs to one round, so a resubmission needs a new one.
    review_round = models.PositiveIntegerField(default=0)
    # The expiry date a reminder was sent for: the daily job sends one reminder per expiry date.
    reminder_sent_for = models.DateField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("approve_application", "Can decide (approve/reject) applications"),
            ("recommend_application", "Can recommend applications (reviewer)"),
        ]
        indexes = [
            models.Index(fields=["status", "-submitted_at"], name="freelancer_status_sub_idx"),
            models.Index(fields=["province", "-submitted_at"], name="freelancer_prov_sub_idx"),
            models.Index(
                fields=["expires_on"],
                name="freelancer_expiry_idx",
                condition=Q(status="approved"),
            ),
            # The statistics' province of a freelancer by id as an index-only scan (the day's
            # delta looks up a few thousand freelancers: a compact index instead of the table's
            # pages, which a busy buffer cache does not hold; bench/RESULTS.md, tenth session).
            models.Index(fields=["id"], include=["province"], name="freelancer_id_province_idx"),
        ]

    def __str__(self) -> str:
        return self.full_name or f"Freelancer #{self.pk}"

    @property
    def masked_cnic(self) -> str:
        if not self.cnic:
            return ""
        return f"{self.cnic[:5]}-*******-{self.cnic[-1]}"

    @property
    def is_expired(self) -> bool:
        """An approved registration past its expiry date (shown as expired everywhere)."""
        return bool(
            self.registration_number
            and self.expires_on
            and self.expires_on < timezone.localdate()
            and self.status in (self.Status.APPROVED, self.Status.SUBMITTED)
        )

    @property
    def registration_state(self) -> str:
        """What the public and the freelancer see: status, with expiry and renewal folded in."""
        if self.is_expired:
            return "Expired"
        if self.is_renewal and self.registration_number and self.status != self.Status.APPROVED:
            if self.status in (self.Status.SUBMITTED, self.Status.CHANGES_REQUESTED):
                return "Registered (renewal under review)"
        return self.get_status_display()

    @property
    def is_editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.CHANGES_REQUESTED)


class RegistrationCounter(models.Model):
    """One row per year; the next registration number is allocated under a row lock."""

    year = models.PositiveIntegerField(primary_key=True)
    last_value = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_value}"


class PlatformProfile(models.Model):
    class Platform(models.TextChoices):
        UPWORK = "upwork", "Upwork"
        FIVERR = "fiverr", "Fiverr"
        FREELANCER = "freelancer", "Freelancer.com"
        PEOPLEPERHOUR = "peopleperhour", "PeoplePerHour"
        TOPTAL = "toptal", "Toptal"
        GITHUB = "github", "GitHub"
        LINKEDIN = "linkedin", "LinkedIn"
        OTHER = "other", "Other"

    freelancer = models.ForeignKey(Freelancer, on_delete=models.CASCADE, related_name="platforms")
    platform = models.CharField(max_length=20, choices=Platform.choices)
    url = models.URLField(max_length=300)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["freelancer", "url"], name="platform_unique_url")
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()}: {self.url}"


class Education(models.Model):
    class Level(models.TextChoices):
        MATRIC = "matric", "Matric / O-levels"
        INTERMEDIATE = "intermediate", "Intermediate / A-levels"
        DIPLOMA = "diploma", "Diploma / certificate"
        BACHELOR = "bachelor", "Bachelor's degree"
        MASTER = "master", "Master's degree"
        DOCTORATE = "doctorate", "Doctorate"

    freelancer = models.ForeignKey(Freelancer, on_delete=models.CASCADE, related_name="education")
    level = models.CharField(max_length=20, choices=Level.choices)
    institution = models.CharField(max_length=200)
    field_of_study = models.CharField(max_length=200, blank=True)
    year_completed = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["-year_completed", "id"]
        verbose_name_plural = "education"

    def __str__(self) -> str:
        return f"{self.get_level_display()}, {self.institution} ({self.year_completed})"


class Document(models.Model):
    """An uploaded document: stored privately, served only by a permission-checked view."""

    class Kind(models.TextChoices):
        CNIC_FRONT = "cnic_front", "CNIC (front)"
        CNIC_BACK = "cnic_back", "CNIC (back)"
        DEGREE = "degree", "Degree (optional)"

    freelancer = models.ForeignKey(Freelancer, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    file = models.FileField(upload_to="documents/", max_length=200)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind"]
        constraints = [
            models.UniqueConstraint(fields=["freelancer", "kind"], name="document_one_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.original_name}"


class Recommendation(models.Model):
    """A reviewer's recommendation for one review round (the first pair of eyes)."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    freelancer = models.ForeignKey(
        Freelancer, on_delete=models.CASCADE, related_name="recommendations"
    )
    review_round = models.PositiveIntegerField()
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["freelancer", "review_round"], name="recommendation_one_per_round"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.reviewer} (round {self.review_round})"


class StatusChange(models.Model):
    """Every transition: who, when, why. The reasons are the board's messages to the freelancer."""

    freelancer = models.ForeignKey(
        Freelancer, on_delete=models.CASCADE, related_name="status_changes"
    )
    from_status = models.CharField(max_length=32, choices=Freelancer.Status.choices)
    to_status = models.CharField(max_length=32, choices=Freelancer.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["freelancer", "-created_at"], name="statuschange_fl_idx")]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"

    @property
    def by_board(self) -> bool:
        return self.actor_id is not None and self.actor_id != self.freelancer.user_id


class OutboundEmail(models.Model):
    """An e-mail to send. Stored in the transaction that caused it, sent by a Celery task after
    commit; a periodic sweep sends any whose task never ran. Sensitive bodies (links with tokens)
    are erased once sent."""

    to = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    sensitive = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["created_at"], name="outbound_unsent_idx", condition=Q(sent_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"{self.to}: {self.subject}"
