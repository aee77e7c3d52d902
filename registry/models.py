"""Stored national statistics: per period (month or fiscal year) a lock row, the stale marks
that ingestion appends, and every computed revision of the period's figures, kept so readers
can ask for the figures as they stood at a past time (``as_of``)."""

from django.db import models


class PeriodKind(models.TextChoices):
    MONTH = "month", "Month"
    FISCAL_YEAR = "fiscal_year", "Fiscal year"


class Dimension(models.TextChoices):
    TOTAL = "total", "Total"
    CATEGORY = "category", "Purpose-code category"
    COUNTRY = "country", "Remitter country"
    PROVINCE = "province", "Freelancer's province"


class StatisticsPeriod(models.Model):
    """One row per month (``period`` = YYYYMM) or fiscal year (``period`` = its first calendar
    year, 2025 for "2025-26").

    The row is the lock that serialises recomputation of the period (``select_for_update``).
    Ingestion never touches it (it appends a ``StatisticsStaleMark`` instead), so webhooks do not
    queue behind each other or behind a recompute. ``current`` points at the revision readers see;
    it is switched in the transaction that wrote the revision, so a reader sees the old figures or
    the new ones, never half of them.
    """

    kind = models.CharField(max_length=12, choices=PeriodKind.choices)
    period = models.IntegerField()
    current = models.ForeignKey(
        "StatisticsRevision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["kind", "period"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "period"], name="statistics_period_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.period}"


class StatisticsStaleMark(models.Model):
    """ "The receipts of this period changed": appended by ingestion in its own transaction, one
    row per changed period, never updated. Insert-only, so concurrent webhooks never wait on each
    other's marks (an upsert of one row per month serialised every webhook of the month).

    A recompute reads the period's marks in the same statement (snapshot) as the receipts and
    deletes exactly those marks when it commits: a mark committed later belongs to a receipt the
    recompute did not see, so it stays and the period is recomputed again. When every mark names
    a recorded receipt, the recompute adds just those receipts to the stored figures.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=12, choices=PeriodKind.choices)
    period = models.IntegerField()
    marked_at = models.DateTimeField()
    # The receipt recorded, when that is the change; null for any other change (a reversal, a
    # re-match), after which the period is recomputed from all its receipts.
    receipt_id = models.BigIntegerField(null=True, blank=True)
    # That receipt's freelancer when it was recorded (null: unmatched), so a day's update finds
    # the freelancers whose receipts it must look up without reading the new receipts first. A
    # receipt whose freelancer changes later (a re-match) gets a mark without a receipt, after
    # which the period is recomputed from all its receipts.
    freelancer_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "period"], name="statistics_mark_period_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.period} stale since {self.marked_at:%Y-%m-%d %H:%M:%S}"


class StatisticsRevision(models.Model):
    """The figures of one period as computed at ``computed_at``. Never updated or deleted."""

    kind = models.CharField(max_length=12, choices=PeriodKind.choices)
    period = models.IntegerField()
    computed_at = models.DateTimeField()
    # Revisions written by the same run share a batch.
    batch = models.CharField(max_length=32, db_index=True)

    class Meta:
        ordering = ["kind", "period", "computed_at"]
        indexes = [
            models.Index(fields=["kind", "period", "computed_at"], name="statistics_rev_period_idx")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.period} @ {self.computed_at:%Y-%m-%d %H:%M:%S}"


class StatisticsFigure(models.Model):
    """One group's figures in a revision: the period total (dimension ``total``, label "") or one
    category, remitter country or province. Groups without counted receipts have no row."""

    revision = models.ForeignKey(
        StatisticsRevision, on_delete=models.CASCADE, related_name="figures"
    )
    dimension = models.CharField(max_length=10, choices=Dimension.choices)
    label = models.CharField(max_length=64, blank=True)
    # Exact: USD cents, summed as integers on every database.
    total_cents = models.BigIntegerField()
    receipts = models.BigIntegerField()
    freelancers = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["revision", "dimension", "label"], name="statistics_figure_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.revision} {self.dimension}={self.label}"
