from django.core.management.base import BaseCommand, CommandError

from payments.services.banks import bank_add


class Command(BaseCommand):
    help = (
        "Create a bank with a webhook secret, or add a further secret to an existing bank "
        "(rotation: older secrets stay valid until revoked in the admin)."
    )

    def add_arguments(self, parser):
        parser.add_argument("code", help="2-12 upper-case letters or digits, e.g. HBL")
        parser.add_argument("--name", required=True)
        parser.add_argument("--secret", required=True)

    def handle(self, *args, code: str, name: str, secret: str, **options):
        try:
            bank, bank_secret, created = bank_add(code=code, name=name, secret=secret)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Created bank" if created else "Added a secret to bank"
        active = bank.secrets.filter(active=True).count()
        self.stdout.write(
            self.style.SUCCESS(f"{verb} {bank.code} ({bank.name}); secret {bank_secret.hint}, ")
            + f"{active} active secret(s). Webhook: /api/v1/webhooks/banks/{bank.code}/"
        )
