"""Exclusions' references to the scheme and the registration, enforced by the database once per
statement (migration 0004_incentive_exclusion_statement_checks) instead of by per-row foreign
keys: every way of breaking them is still refused."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from freelancers.models import Freelancer
from payments.models import Exclusion, IncentiveScheme
from tests.factories import ApprovedFreelancerFactory, IncentiveSchemeFactory

pytestmark = pytest.mark.django_db


def exclusion(**kw) -> Exclusion:
    return Exclusion(
        reason=Exclusion.Reason.BELOW_MINIMUM,
        detail="Converted proceeds USD 10.00 are below the minimum USD 1,000.00.",
        receipts_counted=1,
        proceeds_usd=Decimal("10.00"),
        proceeds_pkr=Decimal("2800.00"),
        previous_proceeds_usd=Decimal(0),
        **kw,
    )


def table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def test_an_exclusion_of_a_registration_that_does_not_exist_is_refused():
    scheme = IncentiveSchemeFactory()
    missing = (Freelancer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 99
    with pytest.raises(IntegrityError), transaction.atomic():
        exclusion(scheme=scheme, freelancer_id=missing).save()
    assert not Exclusion.objects.exists()


def test_an_exclusion_under_a_scheme_that_does_not_exist_is_refused():
    freelancer = ApprovedFreelancerFactory()
    missing = (
        IncentiveScheme.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    ) + 9
    with pytest.raises(IntegrityError), transaction.atomic():
        exclusion(scheme_id=missing, freelancer=freelancer).save()
    assert not Exclusion.objects.exists()


def test_pointing_an_exclusion_at_a_missing_registration_is_refused():
    row = exclusion(scheme=IncentiveSchemeFactory(), freelancer=ApprovedFreelancerFactory())
    row.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        Exclusion.objects.filter(pk=row.pk).update(freelancer_id=row.freelancer_id + 99)
    row.refresh_from_db()
    assert Freelancer.objects.filter(pk=row.freelancer_id).exists()


def test_a_registration_with_an_exclusion_cannot_be_deleted_nor_renumbered():
    freelancer = ApprovedFreelancerFactory()
    exclusion(scheme=IncentiveSchemeFactory(), freelancer=freelancer).save()
    with pytest.raises(ProtectedError):
        freelancer.delete()
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table(Freelancer)} WHERE id = %s", [freelancer.pk])
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table(Freelancer)} SET id = id + 1000 WHERE id = %s", [freelancer.pk]
        )
    assert Freelancer.objects.filter(pk=freelancer.pk).exists()


def test_a_registration_without_exclusions_can_still_be_deleted():
    kept, deleted = ApprovedFreelancerFactory(), ApprovedFreelancerFactory()
    exclusion(scheme=IncentiveSchemeFactory(), freelancer=kept).save()
    user = deleted.user
    deleted.delete()
    user.delete()
    assert list(Freelancer.objects.values_list("pk", flat=True)) == [kept.pk]


def test_a_scheme_with_exclusions_is_deleted_only_with_them():
    scheme = IncentiveSchemeFactory()
    exclusion(scheme=scheme, freelancer=ApprovedFreelancerFactory()).save()
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table(IncentiveScheme)} WHERE id = %s", [scheme.pk])
    assert Exclusion.objects.filter(scheme_id=scheme.pk).count() == 1
    scheme.delete()  # the ORM cascades: exclusions first, then the scheme
    assert not Exclusion.objects.exists()


@pytest.mark.postgres
def test_one_missing_registration_refuses_a_whole_multi_row_insert():
    """The PostgreSQL check runs once per statement, over every row the statement wrote."""
    scheme = IncentiveSchemeFactory()
    present = [ApprovedFreelancerFactory().pk for _ in range(3)]
    ids = [*present, max(present) + 99]
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table(Exclusion)} (scheme_id, freelancer_id, reason, detail, "
            "receipts_counted, proceeds_usd, proceeds_pkr, previous_proceeds_usd) "
            "SELECT %s, f, 'no_proceeds', '', 0, 0, 0, 0 FROM unnest(%s::bigint[]) AS f",
            [scheme.pk, ids],
        )
    assert not Exclusion.objects.exists()


@pytest.mark.postgres
def test_the_exclusions_reference_checks_replace_the_foreign_keys():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass",
            [Exclusion._meta.db_table],
        )
        assert cursor.fetchone() == (0,)
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE %s ORDER BY 1",
            ["payments_exclusion_%"],
        )
        assert [name for (name,) in cursor.fetchall()] == [
            "payments_exclusion_protect_freelancer",
            "payments_exclusion_protect_scheme",
            "payments_exclusion_references_insert",
            "payments_exclusion_references_update",
        ]
