from django.contrib.auth import views as auth_views
from django.urls import include, path

from freelancers import apis, views
from freelancers.forms import EmailLoginForm, QueuedPasswordResetForm

account_urls = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            authentication_form=EmailLoginForm,
            template_name="freelancers/login.html",
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            form_class=QueuedPasswordResetForm,
            template_name="freelancers/password_reset.html",
            email_template_name="freelancers/email/password_reset.txt",
            subject_template_name="freelancers/email/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="freelancers/password_reset_done.html"
        ),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="freelancers/password_reset_confirm.html"
        ),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="freelancers/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
]

portal_urls = [
    path("", views.home, name="home"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/verify/resend/", views.resend_verification, name="resend-verification"),
    path("accounts/verify/<str:token>/", views.verify_email, name="verify-email"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("apply/<slug:step>/", views.apply, name="apply"),
    path("renew/", views.renew, name="renew"),
    path("documents/<int:pk>/", views.document_download, name="document"),
    path("certificate/", views.certificate, name="certificate"),
    path("certificate/<int:pk>/", views.certificate_for_staff, name="certificate-staff"),
    path("verify/", views.verify_lookup, name="verify"),
    path("verify/<str:number>/", views.verify_detail, name="verify-detail"),
    path("api/v1/freelancers/", include(apis.urlpatterns)),
]

# Django's auth views reverse un-namespaced names (login, password_reset_done, ...), so the
# account URLs are mounted outside the app namespace; config.urls includes this module as is.
urlpatterns = [
    path("accounts/", include(account_urls)),
    path("", include((portal_urls, "freelancers"))),
]
