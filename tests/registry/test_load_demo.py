import pytest
from django.core.management import call_command

from freelancers.models import Freelancer
from payments.models import Receipt


@pytest.mark.django_db
def test_load_demo_populates_and_is_idempotent():
    call_command("load_demo", stdout=open("/dev/null", "w"))
    counts = (Freelancer.objects.count(), Receipt.objects.count())
    assert counts[0] >= 40
    assert Receipt.objects.filter(freelancer__isnull=True).exists()
    assert Receipt.objects.filter(freelancer__isnull=False).exists()
    call_command("load_demo", stdout=open("/dev/null", "w"))
    assert (Freelancer.objects.count(), Receipt.objects.count()) == counts
