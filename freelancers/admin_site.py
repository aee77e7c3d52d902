"""The admin site with a TOTP second factor for staff (django-otp).

``freelancers.apps`` swaps the default admin site's class for this one (as django-otp documents),
so every app's ModelAdmin is behind the second factor. ``ADMIN_OTP_REQUIRED`` (default true) can
switch the admin sign-in check off in tests of other apps; the approval services require a
verified device regardless of it.
"""

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


def otp_required() -> bool:
    return bool(getattr(settings, "ADMIN_OTP_REQUIRED", True))


class BoardAdminSite(OTPAdminSite):
    site_header = "Software Export Board administration"
    site_title = "Board admin"

    @property
    def login_form(self):
        return OTPAdminAuthenticationForm if otp_required() else AdminAuthenticationForm

    @property
    def login_template(self):
        return "otp/admin111/login.html" if otp_required() else None

    def has_permission(self, request):
        if otp_required():
            return super().has_permission(request)
        return AdminSite.has_permission(self, request)
