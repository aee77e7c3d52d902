"""Hostile uploads through the registration form's documents step on the running portal: a
script renamed .pdf, an oversized image, a zip bomb, path-traversal file names, a PNG/HTML
polyglot. Each is refused with a form error next to the field and stores nothing, or (a valid
file under a hostile name) is stored privately under a generated name and served only as a
sandboxed attachment."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.resilience.conftest import require_feature
from tests.resilience.harness import CSRF_TOKEN, create_session, session_headers

pytestmark = pytest.mark.resilience

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"
TRIED: dict[str, int] = {}


def zip_bomb() -> bytes:
    """A small zip that expands to 200 MB of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("zeros.bin", "w", force_zip64=True) as member:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(200):
                member.write(chunk)
    return buffer.getvalue()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]):
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    for name, (filename, content, content_type) in files.items():
        parts.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
            ).encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def applicant(stack):
    require_feature("freelancers.services.documents", "registration uploads (issue 3)")
    out = stack.shell(
        "from django.contrib.auth import get_user_model\n"
        "from django.utils import timezone\n"
        "from freelancers.models import Freelancer\n"
        "user = get_user_model().objects.create_user('upload@example.pk',"
        " 'upload@example.pk', 'Upload-Pass-1234!')\n"
        "f = Freelancer.objects.create(user=user, status=Freelancer.Status.DRAFT,"
        " email_verified_at=timezone.now())\n"
        "print(f.pk)\n"
    )
    return {
        "pk": int(out.strip().splitlines()[-1]),
        "session": create_session(stack, "upload@example.pk"),
    }


def upload(stack, applicant, filename: str, content: bytes, content_type: str):
    """The hostile file as the CNIC's front side, a valid PDF as its back (both are required,
    so the only error left is the one about the hostile file)."""
    body, ctype = multipart(
        {"csrfmiddlewaretoken": CSRF_TOKEN},
        {
            "cnic_front": (filename, content, content_type),
            "cnic_back": ("back.pdf", PDF, "application/pdf"),
        },
    )
    headers = session_headers(applicant["session"])
    headers["Content-Type"] = ctype
    return stack.request("POST", "/apply/documents/", body=body, headers=headers, timeout=120)


def documents(stack, applicant, kind: str | None = None) -> list[tuple]:
    return stack.db.query(
        "SELECT id, file, original_name, content_type, size FROM freelancers_document"
        " WHERE freelancer_id = %s AND (%s::text IS NULL OR kind = %s)",
        (applicant["pk"], kind, kind),
    )


def media_files(stack) -> set[Path]:
    root = stack.log_dir / f"{stack.tag}-media"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


BAD_TYPE = "checked by its content"
TOO_LARGE = "larger than 5 MB"
SCRIPT = b"#!/bin/sh\nrm -rf / --no-preserve-root\n"
HTML = b"<html><script>alert(1)</script></html>"
BIG_PNG = PNG_HEADER + b"\0" * (5 * 1024 * 1024)
EXE = b"MZ\x90\x00" + b"\0" * 200


@pytest.mark.parametrize(
    "case,filename,content,content_type,message",
    [
        ("script renamed .pdf", "cnic.pdf", SCRIPT, "application/pdf", BAD_TYPE),
        ("html renamed .png", "cnic.png", HTML, "image/png", BAD_TYPE),
        ("oversized image", "cnic.png", BIG_PNG, "image/png", TOO_LARGE),
        ("zip bomb named .pdf", "cnic.pdf", zip_bomb(), "application/pdf", BAD_TYPE),
        ("zip bomb", "cnic.zip", zip_bomb(), "application/zip", BAD_TYPE),
        ("windows executable", "cnic.pdf", EXE, "application/pdf", BAD_TYPE),
    ],
)
def test_hostile_upload_gets_a_form_error_and_stores_nothing(
    stack, applicant, case, filename, content, content_type, message
):
    before_files = media_files(stack)
    response = upload(stack, applicant, filename, content, content_type)
    TRIED[case] = TRIED.get(case, 0) + 1
    assert response.status == 200, (case, response.status, response.body[:300])
    page = response.body.decode(errors="replace")
    assert message in page, f"{case}: no error about the file ({page[-1500:]})"
    assert documents(stack, applicant) == [], case
    assert media_files(stack) == before_files, f"{case}: a file was left in storage"


@pytest.mark.parametrize(
    "filename",
    [
        "../../../../etc/cron.d/evil.pdf",
        "..\\..\\..\\windows\\evil.pdf",
        "/etc/passwd.pdf",
        "....//....//evil.pdf",
        "evil\x00.pdf",
        "%2e%2e%2fevil.pdf",
    ],
)
def test_path_traversal_name_is_stored_under_a_generated_private_name(stack, applicant, filename):
    response = upload(stack, applicant, filename, PDF, "application/pdf")
    TRIED["path traversal name"] = TRIED.get("path traversal name", 0) + 1
    assert response.status in (200, 302), response.status
    rows = documents(stack, applicant, "cnic_front")
    if response.status == 200:  # refused with a form error: nothing stored
        assert rows == []
        return
    assert len(rows) == 1
    pk, stored, original, content_type, size = rows[0]
    assert stored.startswith(f"documents/{applicant['pk']}/") and ".." not in stored
    assert "/" not in original and "\\" not in original and ".." not in original.strip(".")
    root = (stack.log_dir / f"{stack.tag}-media").resolve()
    assert (root / stored).resolve().is_relative_to(root)
    assert content_type == "application/pdf" and size == len(PDF)
    # Served only to its owner, as a sandboxed attachment.
    download = stack.get(f"/documents/{pk}/", headers=session_headers(applicant["session"]))
    assert download.status == 200
    assert download.body == PDF
    assert download.headers.get("content-disposition", "").startswith("attachment")
    assert "sandbox" in download.headers.get("content-security-policy", "")
    assert download.headers.get("x-content-type-options") == "nosniff"
    assert stack.get(f"/documents/{pk}/").status in (302, 404)
    assert stack.get(f"/media/{stored}").status == 404


def test_upload_counts_are_written(resilience_log_dir):
    (resilience_log_dir / "upload_counts.json").write_text(json.dumps(TRIED, indent=2))
