"""python manage.py compute_incentives <scheme id or name> [--user USERNAME]"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from payments.models import IncentiveScheme
from payments.services.incentives import IncentiveError, scheme_compute


class Command(BaseCommand):
    help = "Compute an incentive scheme now (in this process); see docs/incentives.md."

    def add_arguments(self, parser):
        parser.add_argument("scheme", help="scheme id or exact name")
        parser.add_argument(
            "--user",
            help="staff username recorded as the one who computed (four eyes: they cannot "
            "approve); without it the result must be recomputed by a named person before approval",
        )

    def handle(self, *args, scheme: str, user: str | None, **options):
        found = IncentiveScheme.objects.filter(name=scheme).first()
        if found is None and scheme.isdigit():
            found = IncentiveScheme.objects.filter(pk=int(scheme)).first()
        if found is None:
            raise CommandError(f"No incentive scheme with id or name {scheme!r}.")
        by = None
        if user:
            by = get_user_model().objects.filter(username=user, is_staff=True).first()
            if by is None:
                raise CommandError(f"No staff user {user!r}.")
        try:
            result = scheme_compute(scheme_id=found.pk, by=by)
        except IncentiveError as exc:
            raise CommandError(str(exc))
        self.stdout.write(
            self.style.SUCCESS(
                f"{result}: {result.eligible_count} eligible, {result.excluded_count} excluded, "
                f"entitled PKR {result.entitled_total_pkr:,}, awarded PKR "
                f"{result.awarded_total_pkr:,}{' (scaled to the budget)' if result.scaled else ''}."
            )
        )
