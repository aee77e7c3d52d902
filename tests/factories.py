"""factory_boy factories shared by every test folder."""

import datetime
import itertools
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from freelancers.models import Freelancer, Province
from payments.demo import make_iban
from payments.models import Bank, BankSecret, DollarAccount, PurposeCode, Receipt

_cnic_serial = itertools.count(1)


def valid_cnic(n: int | None = None) -> str:
    """A 13-digit CNIC that python-stdnum's pk.cnic accepts."""
    n = next(_cnic_serial) if n is None else n
    return f"35202{n:07d}{1 + n % 9}"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.pk")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")


class StaffFactory(UserFactory):
    is_staff = True


class FreelancerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Freelancer

    user = factory.SubFactory(UserFactory)
    full_name = factory.Sequence(lambda n: f"Freelancer {n}")
    cnic = factory.LazyFunction(valid_cnic)
    date_of_birth = datetime.date(1990, 1, 1)
    mobile = "+923001234567"
    address = "House 1, Street 2"
    city = "Lahore"
    province = Province.PUNJAB
    status = Freelancer.Status.DRAFT


class ApprovedFreelancerFactory(FreelancerFactory):
    status = Freelancer.Status.APPROVED
    submitted_at = factory.LazyFunction(lambda: datetime.datetime(2023, 1, 2, tzinfo=datetime.UTC))
    approved_at = factory.LazyFunction(lambda: datetime.datetime(2023, 1, 5, tzinfo=datetime.UTC))
    registration_number = factory.Sequence(lambda n: f"PSEB-F-2023-{n:06d}")
    expires_on = datetime.date(2099, 1, 1)


class BankFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bank
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"BK{n:02d}")
    name = factory.LazyAttribute(lambda o: f"Bank {o.code}")


class BankSecretFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BankSecret

    bank = factory.SubFactory(BankFactory)
    secret = factory.Sequence(lambda n: f"whsec-test-{n:04d}-abcdef")


class DollarAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DollarAccount

    iban = factory.Sequence(lambda n: make_iban("TEST", 500_000 + n))
    currency = "USD"
    holder_cnic = factory.LazyAttribute(
        lambda o: o.freelancer.cnic if o.freelancer else valid_cnic()
    )
    bank = factory.SubFactory(BankFactory)
    freelancer = factory.SubFactory(ApprovedFreelancerFactory)
    opened_on = datetime.date(2023, 1, 10)


def purpose_code(code: str = "9182") -> PurposeCode:
    return PurposeCode.objects.get(code=code)


class ReceiptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Receipt

    source = Receipt.Source.BANK
    bank = factory.SubFactory(BankFactory)
    reference = factory.Sequence(lambda n: f"REF{n:08d}")
    account = None
    freelancer = factory.LazyAttribute(lambda o: o.account.freelancer if o.account else None)
    iban = factory.LazyAttribute(lambda o: o.account.iban if o.account else make_iban("ZZZZ", 7))
    amount = Decimal("1000.00")
    currency = "USD"
    usd_amount = factory.LazyAttribute(lambda o: o.amount)
    pkr_rate = Decimal("280.000000")
    value_date = datetime.date(2024, 3, 15)
    purpose_code = factory.LazyFunction(purpose_code)
    retained_amount = Decimal("0.00")
    tax_withheld_pkr = Decimal("0.00")
    remitter_name = "Acme Inc"
    remitter_country = "US"


# --- incentives (payments) ---------------------------------------------------------------------
from payments.models import IncentiveScheme, PayoutAccount  # noqa: E402


class IncentiveSchemeFactory(factory.django.DjangoModelFactory):
    """A 5% rebate on all converted proceeds of fiscal year 2023-24, no minimum, no cap."""

    class Meta:
        model = IncentiveScheme

    name = factory.Sequence(lambda n: f"Scheme {n}")
    kind = IncentiveScheme.Kind.REBATE
    fiscal_year = "2023-24"
    rate_percent = Decimal("5")
    basis = IncentiveScheme.Basis.ALL
    min_proceeds_usd = Decimal("0")


class PayoutAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PayoutAccount

    freelancer = factory.SubFactory(ApprovedFreelancerFactory)
    iban = factory.Sequence(lambda n: make_iban("MEZN", 700_000 + n))
    account_title = factory.LazyAttribute(lambda o: o.freelancer.full_name)


# --- Stripe invoices (payments/models/stripe.py) ---


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "payments.Invoice"

    freelancer = factory.SubFactory(ApprovedFreelancerFactory)
    client_name = "Globex Corporation"
    client_email = "ap@globex.example.com"
    client_country = "US"
    description = "Backend development, March"
    amount = Decimal("1500.00")
    currency = "USD"
    purpose_code = factory.LazyFunction(purpose_code)
    due_date = factory.LazyFunction(lambda: datetime.date.today() + datetime.timedelta(days=30))


class StripeAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "payments.StripeAccount"

    freelancer = factory.SubFactory(ApprovedFreelancerFactory)
    account_id = factory.Sequence(lambda n: f"acct_test{n:08d}")
    payout_account = factory.SubFactory(
        DollarAccountFactory, freelancer=factory.SelfAttribute("..freelancer")
    )
