from django.apps import AppConfig


class FreelancersConfig(AppConfig):
    name = "freelancers"
    verbose_name = "Freelancers"

    def ready(self):
        from celery.schedules import crontab
        from django.conf import settings
        from django.contrib import admin

        from freelancers.admin_site import BoardAdminSite

        # django-otp's documented way to put the whole admin behind the second factor; the lazy
        # default site forwards the assignment to the real site, keeping every registration.
        admin.site.__class__ = BoardAdminSite

        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "freelancers-expiry-reminders",
            {
                "task": "freelancers.tasks.send_expiry_reminders",
                "schedule": crontab(hour=7, minute=0),
            },
        )
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "freelancers-send-pending-emails",
            {"task": "freelancers.tasks.send_pending_emails", "schedule": 300.0},
        )
