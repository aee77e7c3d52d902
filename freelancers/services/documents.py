"""Uploaded documents: checked by content and size, stored privately under generated names."""

import os
import uuid

import filetype
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.text import get_valid_filename

from freelancers.models import Document, Freelancer
from freelancers.services.applications import ensure_editable

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
ALLOWED_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


def sanitise_filename(name: str) -> str:
    """The base name only (no directories, no traversal), safe characters, at most 100 chars."""
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    try:
        cleaned = get_valid_filename(base)
    except Exception:  # noqa: BLE001 - Django raises SuspiciousFileOperation for '.', '..'
        cleaned = ""
    return (cleaned or "upload")[-100:]


def check_upload(upload: File) -> str:
    """Return the detected MIME type, or raise ValidationError for a wrong type or size."""
    if upload.size is None or upload.size > MAX_UPLOAD_BYTES:
        raise ValidationError("The file is larger than 5 MB.", code="too_large")
    if upload.size == 0:
        raise ValidationError("The file is empty.", code="empty")
    upload.seek(0)
    head = upload.read(2048)
    upload.seek(0)
    kind = filetype.guess(head)
    if kind is None or kind.mime not in ALLOWED_TYPES:
        raise ValidationError(
            "Upload a PDF, JPEG or PNG file (checked by its content, not its name).",
            code="bad_type",
        )
    return kind.mime


def document_upload(*, freelancer: Freelancer, kind: str, upload: File) -> Document:
    """Store (or replace) the freelancer's document of this kind.

    Checks type by content and size first (raises ValidationError); the stored name is generated
    (``documents/<freelancer id>/<uuid>.<ext>``), the user's file name is kept only as a label.
    The replaced file is deleted after commit. Only while the application is editable.
    """
    ensure_editable(freelancer)
    if kind not in Document.Kind.values:
        raise ValidationError("Unknown document kind.", code="bad_kind")
    mime = check_upload(upload)
    name = f"documents/{freelancer.pk}/{uuid.uuid4().hex}.{ALLOWED_TYPES[mime]}"
    stored = default_storage.save(name, upload)
    try:
        with transaction.atomic():
            existing = (
                Document.objects.select_for_update()
                .filter(freelancer=freelancer, kind=kind)
                .first()
            )
            old_name = existing.file.name if existing else None
            document = existing or Document(freelancer=freelancer, kind=kind)
            document.file.name = stored
            document.original_name = sanitise_filename(getattr(upload, "name", ""))
            document.content_type = mime
            document.size = upload.size
            document.save()
            if old_name:
                transaction.on_commit(lambda: default_storage.delete(old_name))
    except Exception:
        default_storage.delete(stored)
        raise
    return document
