import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.utils import timezone

from freelancers.models import Document
from freelancers.services import applications, documents
from freelancers.services.documents import MAX_UPLOAD_BYTES, sanitise_filename
from tests.factories import FreelancerFactory, StaffFactory

from .conftest import PDF, PNG, submitted, upload

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "content",
    [
        b"plain text pretending",
        b"MZ\x90\x00\x03windows exe",
        b"GIF89a\x01\x00\x01\x00",
        b"PK\x03\x04zip",
    ],
)
def test_upload_of_other_types_is_refused_whatever_its_name(content):
    freelancer = FreelancerFactory()
    with pytest.raises(ValidationError) as exc:
        documents.document_upload(
            freelancer=freelancer, kind="cnic_front", upload=upload("scan.pdf", content)
        )
    assert exc.value.code == "bad_type"
    assert not Document.objects.exists()


def test_upload_over_5_mb_is_refused():
    big = PDF + b"0" * (MAX_UPLOAD_BYTES + 1 - len(PDF))
    with pytest.raises(ValidationError) as exc:
        documents.document_upload(
            freelancer=FreelancerFactory(), kind="cnic_front", upload=upload("big.pdf", big)
        )
    assert exc.value.code == "too_large"


def test_upload_of_exactly_5_mb_is_accepted():
    exact = PDF + b"0" * (MAX_UPLOAD_BYTES - len(PDF))
    document = documents.document_upload(
        freelancer=FreelancerFactory(), kind="degree", upload=upload("degree.pdf", exact)
    )
    assert document.size == MAX_UPLOAD_BYTES


def test_stored_name_is_generated_and_the_users_name_is_sanitised():
    freelancer = FreelancerFactory()
    document = documents.document_upload(
        freelancer=freelancer, kind="cnic_front", upload=upload("../../etc/passwd.png", PNG)
    )
    assert document.file.name.startswith(f"documents/{freelancer.pk}/")
    assert document.file.name.endswith(".png") and ".." not in document.file.name
    assert document.original_name == "passwd.png"
    assert sanitise_filename("..") == "upload"
    assert sanitise_filename("C:\\Users\\me\\my cnic.jpg") == "my_cnic.jpg"


def test_replacing_a_document_keeps_one_row_and_deletes_the_old_file(
    django_capture_on_commit_callbacks,
):
    freelancer = FreelancerFactory()
    first = documents.document_upload(
        freelancer=freelancer, kind="cnic_back", upload=upload("a.png", PNG)
    )
    old_name = first.file.name
    with django_capture_on_commit_callbacks(execute=True):
        documents.document_upload(
            freelancer=freelancer, kind="cnic_back", upload=upload("b.pdf", PDF)
        )
    assert Document.objects.filter(freelancer=freelancer).count() == 1
    assert not default_storage.exists(old_name)


def test_documents_cannot_change_after_submission():
    freelancer = submitted()
    with pytest.raises(applications.ApplicationLocked):
        documents.document_upload(freelancer=freelancer, kind="degree", upload=upload("d.pdf", PDF))


@pytest.fixture
def document():
    freelancer = FreelancerFactory(email_verified_at=timezone.now())
    return documents.document_upload(
        freelancer=freelancer, kind="cnic_front", upload=upload("front.png", PNG)
    )


def test_owner_downloads_their_document(client, document):
    client.force_login(document.freelancer.user)
    response = client.get(f"/documents/{document.pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert "attachment" in response["Content-Disposition"]


def test_another_freelancer_gets_404_for_a_document(client, document):
    client.force_login(FreelancerFactory().user)
    assert client.get(f"/documents/{document.pk}/").status_code == 404


def test_anonymous_is_sent_to_sign_in_for_a_document(client, document):
    response = client.get(f"/documents/{document.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_reviewer_sees_documents_but_staff_without_the_permission_do_not(client, document):
    reviewer = StaffFactory()
    reviewer.groups.add(Group.objects.get(name="Reviewers"))
    client.force_login(reviewer)
    assert client.get(f"/documents/{document.pk}/").status_code == 200
    client.force_login(StaffFactory())
    assert client.get(f"/documents/{document.pk}/").status_code == 404


def test_no_public_media_url_serves_uploads(client, document):
    assert client.get("/" + document.file.name).status_code == 404
    assert client.get("/media/" + document.file.name).status_code == 404
