"""The portal's pages: thin views over services and selectors."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from freelancers import selectors
from freelancers.certificates import certificate_pdf
from freelancers.forms import (
    DeclarationForm,
    DocumentForm,
    EducationFormSet,
    PersonalForm,
    PlatformFormSet,
    RenewalForm,
    SignUpForm,
    SkillsForm,
    VerifyLookupForm,
)
from freelancers.models import Document, Freelancer
from freelancers.services import accounts, applications, documents, workflow
from freelancers.services.applications import STEPS, ApplicationLocked


def home(request):
    return render(request, "freelancers/home.html")


def signup(request):
    if request.user.is_authenticated:
        return redirect("freelancers:dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            freelancer = accounts.freelancer_sign_up(
                email=form.cleaned_data["email"], password=form.cleaned_data["password1"]
            )
        except accounts.EmailTaken:
            form.add_error("email", "An account with this e-mail already exists.")
        else:
            login(request, freelancer.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request, "Account created. We sent you an e-mail: open its link to continue."
            )
            return redirect("freelancers:dashboard")
    return render(request, "freelancers/signup.html", {"form": form})


def verify_email(request, token: str):
    freelancer = accounts.freelancer_verify_email(token=token)
    if freelancer is None:
        return render(request, "freelancers/verify_email_failed.html", status=400)
    messages.success(request, "Your e-mail address is confirmed. You can fill in your application.")
    if request.user.is_authenticated and request.user.pk == freelancer.user_id:
        return redirect("freelancers:apply", step="personal")
    return redirect("login")


@login_required
@require_POST
def resend_verification(request):
    freelancer = selectors.freelancer_for_user(user=request.user)
    if freelancer and not freelancer.email_verified_at:
        with transaction.atomic():
            accounts.verification_email_send(freelancer=freelancer)
        messages.success(request, "We sent the confirmation e-mail again.")
    return redirect("freelancers:dashboard")


def freelancer_required(view):
    """Signed in, with a freelancer record and a confirmed e-mail address."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        freelancer = selectors.freelancer_for_user(user=request.user)
        if freelancer is None:
            raise PermissionDenied("This page is for registered freelancers.")
        if not freelancer.email_verified_at:
            messages.error(request, "Confirm your e-mail address first (see the link we sent).")
            return redirect("freelancers:dashboard")
        request.freelancer = freelancer
        return view(request, *args, **kwargs)

    return wrapper


@login_required
def dashboard(request):
    freelancer = selectors.freelancer_for_user(user=request.user)
    if freelancer is None:
        return render(request, "freelancers/dashboard_staff.html")
    context = {
        "freelancer": freelancer,
        "steps": STEPS,
        "missing": applications.application_missing(freelancer=freelancer),
        "board_messages": selectors.board_messages(freelancer=freelancer),
        "documents": freelancer.documents.all(),
        "renewal_open": workflow.renewal_is_open(freelancer),
    }
    return render(request, "freelancers/dashboard.html", context)


def _step_nav(freelancer, current):
    missing = applications.application_missing(freelancer=freelancer)
    keys = [key for key, _ in STEPS]
    index = keys.index(current)
    return {
        "steps": STEPS,
        "current": current,
        "current_number": index + 1,
        "missing": missing,
        "next_step": keys[index + 1] if index + 1 < len(keys) else None,
        "previous_step": keys[index - 1] if index else None,
    }


@freelancer_required
def apply(request, step: str):
    freelancer = request.freelancer
    if step not in dict(STEPS):
        raise Http404
    if not freelancer.is_editable:
        messages.info(request, "Your application is not open for changes now.")
        return redirect("freelancers:dashboard")
    nav = _step_nav(freelancer, step)
    handler = STEP_HANDLERS[step]
    try:
        result = handler(request, freelancer)
    except ApplicationLocked as exc:
        messages.error(request, str(exc))
        return redirect("freelancers:dashboard")
    if isinstance(result, HttpResponse):
        return result
    if result is True:
        if "save_draft" in request.POST or not nav["next_step"]:
            messages.success(request, "Draft saved.")
            return redirect("freelancers:apply", step=step)
        return redirect("freelancers:apply", step=nav["next_step"])
    context = {"freelancer": freelancer, **nav, **result}
    return render(request, f"freelancers/apply_{step}.html", context)


def _apply_errors(form, exc: ValidationError):
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _personal(request, freelancer):
    initial = {
        "full_name": freelancer.full_name,
        "cnic": freelancer.cnic or "",
        "date_of_birth": freelancer.date_of_birth,
        "mobile": freelancer.mobile,
        "address": freelancer.address,
        "city": freelancer.city,
        "province": freelancer.province,
    }
    form = PersonalForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            applications.freelancer_update_personal(freelancer=freelancer, **form.cleaned_data)
            return True
        except ValidationError as exc:
            _apply_errors(form, exc)
    return {"form": form}


def _skills(request, freelancer):
    form = SkillsForm(
        request.POST or None, initial={"categories": list(freelancer.categories.all())}
    )
    if request.method == "POST" and form.is_valid():
        applications.freelancer_set_categories(
            freelancer=freelancer, categories=form.cleaned_data["categories"]
        )
        return True
    return {"form": form}


def _formset_step(request, freelancer, formset_class, prefix, initial, save):
    extra = int(request.GET.get("rows", 0) or 0)
    optional = {"empty_permitted": True}
    if request.method == "POST":
        formset = formset_class(request.POST, prefix=prefix, form_kwargs=optional)
        if formset.is_valid():
            rows = [f.cleaned_data for f in formset.forms if f.cleaned_data]
            save(rows)
            return True
    else:
        rows = initial + [{}] * max(1 if not initial else 0, min(extra, 4))
        formset = formset_class(prefix=prefix, initial=rows, form_kwargs=optional)
    return {"formset": formset, "more_rows": len(formset.forms) + 1}


def _platforms(request, freelancer):
    initial = [{"platform": p.platform, "url": p.url} for p in freelancer.platforms.all()]
    return _formset_step(
        request,
        freelancer,
        PlatformFormSet,
        "platforms",
        initial,
        lambda rows: applications.freelancer_set_platforms(
            freelancer=freelancer, profiles=[(r["platform"], r["url"]) for r in rows]
        ),
    )


def _education(request, freelancer):
    initial = [
        {
            "level": e.level,
            "institution": e.institution,
            "field_of_study": e.field_of_study,
            "year_completed": e.year_completed,
        }
        for e in freelancer.education.all()
    ]
    return _formset_step(
        request,
        freelancer,
        EducationFormSet,
        "education",
        initial,
        lambda rows: applications.freelancer_set_education(
            freelancer=freelancer,
            entries=[
                (r["level"], r["institution"], r["field_of_study"], r["year_completed"])
                for r in rows
            ],
        ),
    )


def _documents(request, freelancer):
    existing = {d.kind: d for d in freelancer.documents.all()}
    form = DocumentForm(request.POST or None, request.FILES or None, existing_kinds=existing)
    if request.method == "POST" and form.is_valid():
        for kind in Document.Kind.values:
            upload = form.cleaned_data.get(kind)
            if upload:
                documents.document_upload(freelancer=freelancer, kind=kind, upload=upload)
        return True
    return {"form": form, "existing": existing}


def _declaration(request, freelancer):
    form = DeclarationForm(request.POST or None)
    if freelancer.status != Freelancer.Status.CHANGES_REQUESTED:
        del form.fields["response"]  # only an application returned for changes has an answer
    if request.method == "POST" and form.is_valid():
        applications.freelancer_accept_declaration(freelancer=freelancer)
        try:
            workflow.application_submit(
                freelancer=freelancer,
                actor=request.user,
                response=form.cleaned_data.get("response", ""),
            )
        except workflow.IncompleteApplication as exc:
            for message in exc.missing.values():
                form.add_error(None, message)
        except workflow.WorkflowError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Application submitted. The board will review it.")
            return redirect("freelancers:dashboard")
    return {
        "form": form,
        "categories": freelancer.categories.all(),
        "platforms": freelancer.platforms.all(),
        "education": freelancer.education.all(),
        "documents": freelancer.documents.all(),
    }


STEP_HANDLERS = {
    "personal": _personal,
    "skills": _skills,
    "platforms": _platforms,
    "education": _education,
    "documents": _documents,
    "declaration": _declaration,
}


@freelancer_required
def renew(request):
    freelancer = request.freelancer
    if not workflow.renewal_is_open(freelancer):
        messages.info(request, "Renewal opens 30 days before your registration expires.")
        return redirect("freelancers:dashboard")
    initial = {
        "mobile": freelancer.mobile,
        "address": freelancer.address,
        "city": freelancer.city,
        "province": freelancer.province,
        "categories": list(freelancer.categories.all()),
    }
    form = RenewalForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            workflow.renewal_submit(
                freelancer=freelancer,
                actor=request.user,
                mobile=data["mobile"],
                address=data["address"],
                city=data["city"],
                province=data["province"],
                categories=list(data["categories"]),
            )
        except workflow.WorkflowError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Renewal submitted. The board will review it.")
            return redirect("freelancers:dashboard")
    return render(request, "freelancers/renew.html", {"form": form, "freelancer": freelancer})


def _can_see_documents(user, freelancer: Freelancer) -> bool:
    if freelancer.user_id == user.pk:
        return True
    return user.is_staff and user.has_perm("freelancers.view_document")


@login_required
def document_download(request, pk: int):
    """Serve a private document to its owner or to staff who may view documents; 404 otherwise
    (not 403, so ids cannot be probed)."""
    document = get_object_or_404(Document.objects.select_related("freelancer"), pk=pk)
    if not _can_see_documents(request.user, document.freelancer):
        raise Http404
    response = FileResponse(
        document.file.open("rb"),
        content_type=document.content_type,
        as_attachment=request.GET.get("inline") != "1",
        filename=document.original_name,
    )
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _certificate_response(freelancer: Freelancer) -> HttpResponse:
    if freelancer.status != Freelancer.Status.APPROVED or not freelancer.registration_number:
        raise Http404
    response = HttpResponse(certificate_pdf(freelancer=freelancer), content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="certificate-{freelancer.registration_number}.pdf"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


@freelancer_required
def certificate(request):
    return _certificate_response(request.freelancer)


@login_required
def certificate_for_staff(request, pk: int):
    if not (request.user.is_staff and request.user.has_perm("freelancers.view_freelancer")):
        raise Http404
    return _certificate_response(get_object_or_404(Freelancer, pk=pk))


def verify_lookup(request):
    form = VerifyLookupForm(request.GET or None)
    if form.is_valid():
        number = form.cleaned_data["number"].strip().upper()
        return redirect(reverse("freelancers:verify-detail", args=[number]))
    return render(request, "freelancers/verify_lookup.html", {"form": form})


def verify_detail(request, number: str):
    freelancer = selectors.public_registration(registration_number=number)
    if freelancer is None:
        raise Http404("No registration with this number.")
    return render(request, "freelancers/verify_detail.html", {"registration": freelancer})
