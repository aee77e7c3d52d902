"""Portal forms: thin; the rules live in services and validators."""

import datetime

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.template import loader

from freelancers.models import Document, Education, PlatformProfile, Province, ServiceCategory
from freelancers.services.accounts import normalise_email
from freelancers.services.documents import check_upload
from freelancers.services.emails import email_enqueue
from freelancers.validators import normalise_cnic, normalise_mobile


class SignUpForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(
        label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean_email(self):
        email = normalise_email(self.cleaned_data["email"])
        if get_user_model().objects.filter(username=email).exists():
            raise forms.ValidationError(
                "An account with this e-mail already exists. Sign in or reset your password."
            )
        return email

    def clean(self):
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1:
            user = get_user_model()(username=data.get("email", ""), email=data.get("email", ""))
            try:
                password_validation.validate_password(p1, user)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


class EmailLoginForm(AuthenticationForm):
    """Django's form (authenticate(request=...), so django-axes counts failures); the username is
    the e-mail address, matched case-insensitively by normalising it."""

    username = forms.CharField(
        label="E-mail",
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "username", "inputmode": "email"}
        ),
    )

    def clean_username(self):
        return normalise_email(self.cleaned_data["username"])


class QueuedPasswordResetForm(PasswordResetForm):
    """Sends the reset e-mail through the outbox and Celery instead of inline SMTP."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        email_enqueue(to=to_email, subject=subject, body=body, sensitive=True)


class PersonalForm(forms.Form):
    full_name = forms.CharField(max_length=200, label="Full name (as on your CNIC)")
    cnic = forms.CharField(max_length=15, label="CNIC", help_text="13 digits, e.g. 35202-1234567-1")
    date_of_birth = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), help_text="You must be at least 16."
    )
    mobile = forms.CharField(max_length=20, label="Mobile number", help_text="e.g. 0300 1234567")
    address = forms.CharField(max_length=300)
    city = forms.CharField(max_length=100)
    province = forms.ChoiceField(choices=[("", "Choose…"), *Province.choices])

    def clean_cnic(self):
        return normalise_cnic(self.cleaned_data["cnic"])

    def clean_mobile(self):
        return normalise_mobile(self.cleaned_data["mobile"])

    def clean_date_of_birth(self):
        dob = self.cleaned_data["date_of_birth"]
        today = datetime.date.today()
        if dob > today.replace(year=today.year - 16) or dob.year < 1900:
            raise forms.ValidationError("Enter a real date of birth; you must be at least 16.")
        return dob


class SkillsForm(forms.Form):
    categories = forms.ModelMultipleChoiceField(
        queryset=ServiceCategory.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        label="Services you offer",
        error_messages={"required": "Choose at least one service category."},
    )


class OptionalRowMixin:
    """A formset row the user may leave (or clear to) empty: it is then skipped, not an error.
    Used with ``form_kwargs={"empty_permitted": True}``."""

    def has_changed(self):
        if not self.is_bound:
            return False
        return any(str(self.data.get(self.add_prefix(name), "")).strip() for name in self.fields)


class PlatformForm(OptionalRowMixin, forms.ModelForm):
    class Meta:
        model = PlatformProfile
        fields = ["platform", "url"]
        labels = {"url": "Profile URL"}

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url.lower().startswith("https://") and not url.lower().startswith("http://"):
            raise forms.ValidationError("Enter a web address starting with https://")
        return url


class EducationForm(OptionalRowMixin, forms.ModelForm):
    class Meta:
        model = Education
        fields = ["level", "institution", "field_of_study", "year_completed"]

    def clean_year_completed(self):
        year = self.cleaned_data["year_completed"]
        if not 1950 <= year <= datetime.date.today().year + 1:
            raise forms.ValidationError("Enter the year you completed it.")
        return year


PlatformFormSet = forms.formset_factory(PlatformForm, extra=0, max_num=8, absolute_max=8)
EducationFormSet = forms.formset_factory(EducationForm, extra=0, max_num=6, absolute_max=6)


class DocumentForm(forms.Form):
    cnic_front = forms.FileField(required=False, label="CNIC front (PDF, JPEG or PNG, max 5 MB)")
    cnic_back = forms.FileField(required=False, label="CNIC back (PDF, JPEG or PNG, max 5 MB)")
    degree = forms.FileField(required=False, label="Degree, optional (PDF, JPEG or PNG, max 5 MB)")

    def __init__(self, *args, existing_kinds=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.existing_kinds = set(existing_kinds)
        for name in ("cnic_front", "cnic_back", "degree"):
            self.fields[name].widget.attrs["accept"] = ".pdf,.jpg,.jpeg,.png"

    def _check(self, name):
        upload = self.cleaned_data.get(name)
        if upload:
            check_upload(upload)
        return upload

    def clean_cnic_front(self):
        return self._check("cnic_front")

    def clean_cnic_back(self):
        return self._check("cnic_back")

    def clean_degree(self):
        return self._check("degree")

    def clean(self):
        data = super().clean()
        for kind in (Document.Kind.CNIC_FRONT, Document.Kind.CNIC_BACK):
            if kind not in self.existing_kinds and not data.get(kind) and kind not in self.errors:
                self.add_error(kind, "Upload this side of your CNIC.")
        return data


class DeclarationForm(forms.Form):
    declaration = forms.BooleanField(
        label="I declare that the information I have given is true and complete, and that the "
        "documents are mine. I understand that false information leads to rejection or suspension."
    )
    response = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Your answer to the board (if they asked for changes)",
    )


class RenewalForm(forms.Form):
    mobile = forms.CharField(max_length=20, label="Mobile number")
    address = forms.CharField(max_length=300)
    city = forms.CharField(max_length=100)
    province = forms.ChoiceField(choices=Province.choices)
    categories = forms.ModelMultipleChoiceField(
        queryset=ServiceCategory.objects.all(), widget=forms.CheckboxSelectMultiple
    )
    declaration = forms.BooleanField(label="I declare that my details are still true and complete.")

    def clean_mobile(self):
        return normalise_mobile(self.cleaned_data["mobile"])


class VerifyLookupForm(forms.Form):
    number = forms.CharField(max_length=32, label="Registration number")


class ReasonForm(forms.Form):
    """The admin's bulk-action confirmation: why (sent to the freelancer)."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), required=False)
