from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from freelancers.signals import freelancer_approved
        from payments import receivers

        freelancer_approved.connect(
            receivers.link_accounts_on_approval, dispatch_uid="payments.link_accounts_on_approval"
        )
