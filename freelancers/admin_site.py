"""The admin site with a TOTP second factor for staff (django-otp).

``freelancers.apps`` swaps the default admin site's class for this one (as django-otp documents),
so every app's ModelAdmin is behind the second factor. ``ADMIN_OTP_REQUIRED`` (default true) can
switch the admin sign-in check off in tests of other apps; the approval services require a
verified device regardless of it.
"""

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


def otp_required() -> bool:
    return bool(getattr(settings, "ADMIN_OTP_REQUIRED", True))


class BoardOTPAuthenticationForm(OTPAdminAuthenticationForm):
    """Username, password and code in one step: a user with a single confirmed device need not
    pick it from the list first (django-otp otherwise asks on a second round trip)."""

    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is None:
            devices = list(devices_for_user(user, confirmed=True))
            if len(devices) == 1:
                return devices[0]
        return device


class BoardAdminSite(OTPAdminSite):
    site_header = "Software Export Board administration"
    site_title = "Board admin"

    @property
    def login_form(self):
        return BoardOTPAuthenticationForm if otp_required() else AdminAuthenticationForm

    @property
    def login_template(self):
        return "otp/admin111/login.html" if otp_required() else None

    def has_permission(self, request):
        if otp_required():
            return super().has_permission(request)
        return AdminSite.has_permission(self, request)
