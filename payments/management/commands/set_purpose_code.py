from django.core.management.base import BaseCommand

from payments.services.banks import purpose_code_set


class Command(BaseCommand):
    help = "Create or update a row of the purpose-code table."

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("--description", required=True)
        parser.add_argument("--category", required=True)
        parser.add_argument("--not-it", action="store_true", help="not an IT/ITeS code")
        parser.add_argument("--retired", action="store_true", help="refused by the webhook")

    def handle(self, *args, code, description, category, not_it, retired, **options):
        row, created = purpose_code_set(
            code=code, description=description, category=category, is_it=not not_it, retired=retired
        )
        state = ", ".join(
            part
            for part in ("IT/ITeS" if row.is_it else "not IT", "retired" if row.retired else "")
            if part
        )
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} purpose code {row.code} ({state})."))
