from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from freelancers.signals import freelancer_approved
        from payments import receivers
        from payments.models import Bank, BankSecret
        from payments.services.banks import bank_credentials_forget

        freelancer_approved.connect(
            receivers.link_accounts_on_approval, dispatch_uid="payments.link_accounts_on_approval"
        )
        for model in (Bank, BankSecret):
            for signal in (post_save, post_delete):
                uid = f"payments.forget_credentials.{model.__name__}.{signal is post_save}"
                signal.connect(bank_credentials_forget, sender=model, dispatch_uid=uid)
