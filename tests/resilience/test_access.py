"""Who gets what: every API operation and every portal page, tried anonymously, as the owning
freelancer, as another freelancer, as a reviewer and as an approver (both staff with a verified
second factor). The table below is the expected result of each; a new API operation that is not
in the table fails ``test_access_table_covers_every_api_operation``. Four eyes are then driven
through the API, the admin and the services.

``RESILIENCE_ACCESS_PROBE=1`` prints the observed matrix instead of asserting (to review a new
endpoint's behaviour before writing its row).
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse

import pytest

from tests.resilience.conftest import require_feature
from tests.resilience.harness import CSRF_TOKEN, create_session, session_headers

pytestmark = pytest.mark.resilience

ROLES = ["anonymous", "owner", "other", "reviewer", "approver"]
DENIED = {401, 403}
LOGIN = "login"  # a redirect to the sign-in page
NOT_FOUND = {404}

# What each role gets. A value is a status, a set of statuses, or LOGIN (302 to the sign-in
# page). Placeholders: {A} owner's freelancer id, {A_DOC} owner's document, {A_INV} owner's
# invoice, {A_TOKEN} its public payment token, {A_REG} owner's registration number, {B}
# another freelancer's id, {C} a submitted application nobody here owns.
# fmt: off
API_TABLE: dict[tuple[str, str], dict[str, object]] = {
    ("GET", "/api/v1/freelancers/me/"):
        {"anonymous": DENIED, "owner": 200, "other": 200, "reviewer": 404, "approver": 404},
    ("PUT", "/api/v1/freelancers/me/"):
        {"anonymous": DENIED, "owner": {400}, "other": {400}, "reviewer": 404, "approver": 404},
    ("POST", "/api/v1/freelancers/me/submit/"):
        {"anonymous": DENIED, "owner": {400}, "other": {400}, "reviewer": 404, "approver": 404},
    ("GET", "/api/v1/freelancers/applications/"):
        {"anonymous": DENIED, "owner": 403, "other": 403, "reviewer": 200, "approver": 200},
    ("GET", "/api/v1/freelancers/applications/{id}/"):
        {"anonymous": DENIED, "owner": 403, "other": 403, "reviewer": 200, "approver": 200},
    ("POST", "/api/v1/freelancers/applications/{id}/{action}/"):
        # The approver passes the access check and is stopped by validation (reason required).
        {"anonymous": DENIED, "owner": 403, "other": 403, "reviewer": 403, "approver": 400},
    ("GET", "/api/v1/incentives/"):
        {"anonymous": DENIED, "owner": 200, "other": 200, "reviewer": 403, "approver": 403},
    ("GET", "/api/v1/incentives/payout-account/"):
        {"anonymous": DENIED, "owner": {200, 404}, "other": {200, 404}, "reviewer": 403,
         "approver": 403},
    ("PUT", "/api/v1/incentives/payout-account/"):
        {"anonymous": DENIED, "owner": 400, "other": 400, "reviewer": 403, "approver": 403},
    ("GET", "/api/v1/invoices/"):
        {"anonymous": DENIED, "owner": 200, "other": 200, "reviewer": 403, "approver": 403},
    ("POST", "/api/v1/invoices/"):
        {"anonymous": DENIED, "owner": 400, "other": 400, "reviewer": 403, "approver": 403},
    ("GET", "/api/v1/invoices/{id}/"):
        {"anonymous": DENIED, "owner": 200, "other": 404, "reviewer": 403, "approver": 403},
    # send: the owner passes the access check and the service refuses (400); void of an
    # already void invoice is idempotent (200).
    ("POST", "/api/v1/invoices/{id}/send/"):
        {"anonymous": DENIED, "owner": 400, "other": 404, "reviewer": 403, "approver": 403},
    ("POST", "/api/v1/invoices/{id}/void/"):
        {"anonymous": DENIED, "owner": 200, "other": 404, "reviewer": 403, "approver": 403},
    ("GET", "/api/v1/earnings/accounts/"):
        {"anonymous": DENIED, "owner": 200, "other": 200, "reviewer": 403, "approver": 403},
    ("GET", "/api/v1/earnings/months/"):
        {"anonymous": DENIED, "owner": 200, "other": 200, "reviewer": 403, "approver": 403},
    ("GET", "/api/v1/earnings/months/{month}/"):
        {"anonymous": DENIED, "owner": 200, "other": 200, "reviewer": 403, "approver": 403},
    ("GET", "/api/v1/statistics/monthly/"): dict.fromkeys(ROLES, 200),
    ("GET", "/api/v1/statistics/fiscal-years/"): dict.fromkeys(ROLES, 200),
    ("GET", "/api/v1/statistics/registrations/"): dict.fromkeys(ROLES, 200),
}
# How each templated API path is filled in, and the body sent (None: no body). The bodies of
# unsafe methods are empty or invalid on purpose: access is granted or refused before any
# validation, and nothing changes state here.
API_CALLS = {
    ("GET", "/api/v1/freelancers/applications/{id}/"): ("/api/v1/freelancers/applications/{A}/",
                                                        None),
    ("POST", "/api/v1/freelancers/applications/{id}/{action}/"): (
        "/api/v1/freelancers/applications/{A}/suspend/", {"reason": ""}),
    ("GET", "/api/v1/invoices/{id}/"): ("/api/v1/invoices/{A_INV}/", None),
    ("GET", "/api/v1/earnings/months/{month}/"): ("/api/v1/earnings/months/{MONTH}/", None),
    ("POST", "/api/v1/invoices/{id}/send/"): ("/api/v1/invoices/{A_INV}/send/", {}),
    ("POST", "/api/v1/invoices/{id}/void/"): ("/api/v1/invoices/{A_INV_VOIDED}/void/", {}),
    ("PUT", "/api/v1/freelancers/me/"): (None, {"date_of_birth": "not a date"}),
    ("POST", "/api/v1/freelancers/me/submit/"): (None, {}),
    ("PUT", "/api/v1/incentives/payout-account/"): (None, {"iban": "PK00", "account_title": ""}),
    ("POST", "/api/v1/invoices/"): (None, {"amount": "-1"}),
}
# Outside the schema: webhooks answer by their own contract, whoever the caller is.
EXTRA_API = {
    ("POST", "/api/v1/webhooks/banks/NOSUCHBANK/", "{}"): dict.fromkeys(ROLES, 404),
    ("POST", "/api/v1/webhooks/stripe/", "{}"): dict.fromkeys(ROLES, {400, 401}),
}
PAGE_TABLE: dict[str, dict[str, object]] = {
    "/": dict.fromkeys(ROLES, 200),
    "/healthz": dict.fromkeys(ROLES, 200),
    "/statistics/": dict.fromkeys(ROLES, 200),
    "/verify/": dict.fromkeys(ROLES, 200),
    "/verify/{A_REG}/": dict.fromkeys(ROLES, 200),
    "/verify/NO-SUCH-NUMBER/": dict.fromkeys(ROLES, 404),
    "/accounts/login/": {"anonymous": 200, "owner": 302, "other": 302, "reviewer": 302,
                         "approver": 302},
    "/accounts/signup/": {"anonymous": 200, "owner": 302, "other": 302, "reviewer": 302,
                          "approver": 302},
    # Staff without an application see an empty dashboard; approved applications are locked,
    # so their editing steps redirect to the dashboard.
    "/dashboard/": dict.fromkeys(ROLES, 200) | {"anonymous": LOGIN},
    "/apply/personal/": {"anonymous": LOGIN, "owner": 302, "other": 302, "reviewer": 403,
                         "approver": 403},
    "/renew/": {"anonymous": LOGIN, "owner": 302, "other": 302, "reviewer": 403,
                "approver": 403},
    "/documents/{A_DOC}/": {"anonymous": LOGIN, "owner": 200, "other": 404, "reviewer": 200,
                            "approver": 200},
    "/certificate/": {"anonymous": LOGIN, "owner": 200, "other": 200, "reviewer": 403,
                      "approver": 403},
    "/certificate/{A}/": {"anonymous": LOGIN, "owner": 404, "other": 404,
                          "reviewer": 200, "approver": 200},
    "/incentives/": {"anonymous": LOGIN, "owner": 200, "other": 200, "reviewer": 403,
                     "approver": 403},
    "/invoices/": {"anonymous": LOGIN, "owner": 200, "other": 200, "reviewer": 403,
                   "approver": 403},
    "/invoices/{A_INV}/": {"anonymous": LOGIN, "owner": 200, "other": 404, "reviewer": 403,
                           "approver": 403},
    # A draft invoice has no public payment page yet: 404 for everyone.
    "/pay/{A_TOKEN}/": dict.fromkeys(ROLES, 404),
    "/pay/not-a-real-token/": dict.fromkeys(ROLES, 404),
    "/earnings/": {"anonymous": LOGIN, "owner": 200, "other": 200, "reviewer": 403,
                   "approver": 403},
    "/earnings/{MONTH}/": {"anonymous": LOGIN, "owner": 200, "other": 200, "reviewer": 403,
                           "approver": 403},
    "/earnings/{MONTH}/csv/": {"anonymous": LOGIN, "owner": 200, "other": 200, "reviewer": 403,
                               "approver": 403},
    "/earnings/{MONTH}/pdf/": {"anonymous": LOGIN, "owner": 200, "other": 200, "reviewer": 403,
                               "approver": 403},
    "/admin/": {"anonymous": 302, "owner": 302, "other": 302, "reviewer": 200, "approver": 200},
    "/admin/freelancers/freelancer/": {"anonymous": 302, "owner": 302, "other": 302,
                                       "reviewer": 200, "approver": 200},
    "/admin/freelancers/freelancer/{A}/change/": {"anonymous": 302, "owner": 302, "other": 302,
                                                  "reviewer": 200, "approver": 200},
    "/admin/payments/bank/": {"anonymous": 302, "owner": 302, "other": 302,
                              "reviewer": {403, 404}, "approver": {403, 404}},
    "/admin/auth/user/": {"anonymous": 302, "owner": 302, "other": 302, "reviewer": 403,
                          "approver": 403},
    "/api/schema/": dict.fromkeys(ROLES, 200),
    "/api/docs/": dict.fromkeys(ROLES, 200),
}
# fmt: on
PROBE = os.environ.get("RESILIENCE_ACCESS_PROBE") == "1"
TRIED: dict[str, int] = {"api": 0, "pages": 0, "four_eyes": 0}

WORLD_SETUP = r"""
import datetime, json
from decimal import Decimal
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from freelancers.models import Document, Freelancer
from payments.models import Invoice, PurposeCode

User = get_user_model()
now = timezone.now()
out = {}

def freelancer(username, cnic, status, number=None):
    user = User.objects.create_user(username, username + "@example.pk", "Access-Pass-1234!")
    f = Freelancer.objects.create(
        user=user, full_name="Access " + username, cnic=cnic, status=status,
        date_of_birth=datetime.date(1990, 1, 1), mobile="+923001234567", address="House 1",
        city="Lahore", province="punjab", registration_number=number,
        submitted_at=now - datetime.timedelta(days=30),
        approved_at=now - datetime.timedelta(days=20) if number else None,
        expires_on=(now + datetime.timedelta(days=300)).date() if number else None,
        email_verified_at=now,
    )
    return f

a = freelancer("acc-owner", "3520212345671", Freelancer.Status.APPROVED, "PSEB-F-2026-990001")
b = freelancer("acc-other", "3520212345682", Freelancer.Status.APPROVED, "PSEB-F-2026-990002")
c = freelancer("acc-applicant", "3520212345693", Freelancer.Status.SUBMITTED)
name = default_storage.save("documents/access-owner-cnic.pdf",
                            ContentFile(b"%PDF-1.4\n%access test\n"))
doc = Document.objects.create(freelancer=a, kind=Document.Kind.values[0], file=name,
                              original_name="cnic.pdf", content_type="application/pdf", size=24)
code = PurposeCode.objects.get(code="9182")

def invoice(f, status=None):
    inv = Invoice.objects.create(
        freelancer=f, client_name="Globex", client_email="ap@globex.example.com",
        client_country="US", description="Work", amount=Decimal("100.00"), currency="USD",
        purpose_code=code, due_date=datetime.date.today() + datetime.timedelta(days=30))
    if status:
        Invoice.objects.filter(pk=inv.pk).update(status=status)
    return inv

inv_a = invoice(a)
inv_void = invoice(a, "void")
invoice(b)

for username, groups in (("acc-reviewer", ["Reviewers"]), ("acc-approver", ["Approvers"]),
                         ("acc-approver2", ["Approvers"]),
                         ("acc-dual", ["Reviewers", "Approvers"])):
    user = User.objects.create_user(username, username + "@example.pk", "Access-Pass-1234!",
                                    is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=groups))

from payments.models import Bank, DollarAccount, Receipt
bank, _ = Bank.objects.get_or_create(code="ACCBANK", defaults={"name": "Access bank"})
account = DollarAccount.objects.create(
    iban="PK36SCBL0000001123456702", currency="USD", holder_cnic=a.cnic, bank=bank,
    freelancer=a, opened_on=datetime.date(2024, 1, 1))
today = timezone.localdate()
Receipt.objects.create(
    bank=bank, reference="ACCESS-OWNER-REF-1", iban=account.iban, account=account, freelancer=a,
    amount=Decimal("777.00"), currency="USD", usd_amount=Decimal("777.00"),
    pkr_rate=Decimal("278.5"), value_date=today, purpose_code=code,
    remitter_name="Owner Client", remitter_country="US")
out.update(MONTH=today.strftime("%Y-%m"), A_IBAN=account.iban, A_REF="ACCESS-OWNER-REF-1")
out.update(A=a.pk, B=b.pk, C=c.pk, A_DOC=doc.pk, A_INV=inv_a.pk, A_INV_VOIDED=inv_void.pk,
           A_TOKEN=inv_a.public_token, A_REG=a.registration_number)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def world(stack):
    require_feature("freelancers.services.workflow", "registration (issue 3)")
    require_feature("payments.apis_stripe", "Stripe invoices (issue 5)")
    out = stack.shell(WORLD_SETUP)
    ids = json.loads(out.strip().splitlines()[-1])
    sessions = {
        "anonymous": None,
        "owner": create_session(stack, "acc-owner"),
        "other": create_session(stack, "acc-other"),
        "reviewer": create_session(stack, "acc-reviewer", otp=True),
        "approver": create_session(stack, "acc-approver", otp=True),
        "approver2": create_session(stack, "acc-approver2", otp=True),
        "dual": create_session(stack, "acc-dual", otp=True),
    }
    return {"ids": ids, "sessions": sessions}


def fill(path: str, ids: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: urllib.parse.quote(str(ids[m.group(1)])), path)


def call(stack, world, role: str, method: str, path: str, body):
    headers = session_headers(world["sessions"][role])
    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    return stack.request(method, fill(path, world["ids"]), body=data, headers=headers)


def verdict(response, expected) -> bool:
    if expected == LOGIN:
        return response.status == 302 and "/accounts/login/" in response.headers.get("location", "")
    allowed = expected if isinstance(expected, set) else {expected}
    return response.status in allowed


def test_access_table_covers_every_api_operation(stack, world):
    schema = stack.get("/api/schema/?format=json")
    assert schema.status == 200
    operations = {
        (method.upper(), path)
        for path, ops in schema.json()["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    }
    missing = sorted(operations - set(API_TABLE))
    stale = sorted(set(API_TABLE) - operations)
    assert missing == [], f"operations without an expected-access row: {missing}"
    assert stale == [], f"rows for operations that no longer exist: {stale}"


def run_table(stack, world, rows) -> list[str]:
    problems, matrix = [], []
    for (method, path, body), expected in rows:
        seen = {}
        for role in ROLES:
            response = call(stack, world, role, method, path, body)
            seen[role] = response.status
            if response.status >= 500:
                problems.append(f"{method} {path} as {role}: {response.status}")
            elif not verdict(response, expected[role]):
                problems.append(
                    f"{method} {path} as {role}: got {response.status} "
                    f"({response.headers.get('location', '')}{response.body[:120]!r}), "
                    f"expected {expected[role]}"
                )
        matrix.append(f"{method:5} {path:55} {seen}")
    if PROBE:
        print("\n".join(matrix))
    return problems


def test_every_api_operation_gives_each_role_what_the_table_says(stack, world):
    rows = []
    for (method, path), expected in API_TABLE.items():
        template, body = API_CALLS.get((method, path), (None, None))
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = {}
        rows.append(((method, template or path, body), expected))
    for (method, path, body), expected in EXTRA_API.items():
        rows.append(((method, path, body), expected))
    problems = run_table(stack, world, rows)
    TRIED["api"] += len(rows) * len(ROLES)
    assert PROBE or problems == [], "\n".join(problems)


def test_every_portal_page_gives_each_role_what_the_table_says(stack, world):
    rows = [(("GET", path, None), expected) for path, expected in PAGE_TABLE.items()]
    problems = run_table(stack, world, rows)
    TRIED["pages"] += len(rows) * len(ROLES)
    assert PROBE or problems == [], "\n".join(problems)


def test_another_freelancer_never_sees_the_owners_earnings(stack, world):
    """Earnings are always the signed-in freelancer's own: the owner's receipt shows up in the
    owner's statement (API, CSV, page) and in nobody else's."""
    ids = world["ids"]
    paths = [
        "/api/v1/earnings/accounts/",
        "/api/v1/earnings/months/{MONTH}/",
        "/earnings/{MONTH}/",
        "/earnings/{MONTH}/csv/",
    ]
    for path in paths:
        mine = call(stack, world, "owner", "GET", path, None)
        theirs = call(stack, world, "other", "GET", path, None)
        assert mine.status == 200 and theirs.status == 200, (path, mine.status, theirs.status)
        owner_marks = [ids["A_IBAN"].encode(), ids["A_REF"].encode(), b"777"]
        assert any(mark in mine.body for mark in owner_marks), (path, mine.body[:300])
        leaked = [m for m in (ids["A_IBAN"].encode(), ids["A_REF"].encode()) if m in theirs.body]
        assert leaked == [] and b"777.00" not in theirs.body, path
    TRIED["api"] += 2 * len(paths)


def application_status(stack, pk: int) -> str:
    return stack.db.scalar("SELECT status FROM freelancers_freelancer WHERE id = %s", (pk,))


def api_action(stack, world, role: str, action: str, body: dict):
    return call(
        stack,
        world,
        role,
        "POST",
        f"/api/v1/freelancers/applications/{{C}}/{action}/",
        body,
    )


def test_four_eyes_through_the_api(stack, world):
    c = world["ids"]["C"]
    # No decision without a recommendation, and a reviewer cannot decide.
    assert api_action(stack, world, "approver", "approve", {"reason": "ok"}).status == 403
    assert api_action(stack, world, "reviewer", "approve", {"reason": "ok"}).status == 403
    assert application_status(stack, c) == "submitted"
    # Someone holding both roles recommends, then may not decide their own recommendation.
    recommended = api_action(stack, world, "dual", "recommend", {"decision": "approve"})
    assert recommended.status == 200, recommended.body[:300]
    assert api_action(stack, world, "dual", "approve", {"reason": "ok"}).status == 403
    assert application_status(stack, c) == "submitted"
    TRIED["four_eyes"] += 5
    # A second person decides.
    approved = api_action(stack, world, "approver", "approve", {"reason": "ok"})
    assert approved.status == 200, approved.body[:300]
    assert application_status(stack, c) == "approved"


def test_four_eyes_through_the_admin(stack, world):
    """The admin's bulk actions call the same services: the reviewer who recommended a renewal
    cannot approve it there either, and a second approver can."""
    c = world["ids"]["C"]
    # Put C back into review through the services (suspend, reinstate are approver actions;
    # here a fresh submitted application is simpler).
    out = stack.shell(
        "from freelancers.models import Freelancer\n"
        f"c = Freelancer.objects.get(pk={c})\n"
        "d = Freelancer.objects.create(user=__import__('django.contrib.auth',"
        " fromlist=['x']).get_user_model().objects.create_user('acc-applicant2',"
        " 'acc-applicant2@example.pk', 'Access-Pass-1234!'), full_name='Admin four eyes',"
        " cnic='3520212345704', status=Freelancer.Status.SUBMITTED, province='punjab',"
        " submitted_at=c.submitted_at)\n"
        "print(d.pk)\n"
    )
    d = int(out.strip().splitlines()[-1])

    def admin_action(role: str, action: str):
        fields = {
            "csrfmiddlewaretoken": CSRF_TOKEN,
            "action": action,
            "_selected_action": str(d),
            "select_across": "0",
            "index": "0",
            "apply": "1",
            "reason": "four eyes test",
        }
        headers = session_headers(world["sessions"][role])
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return stack.request(
            "POST",
            "/admin/freelancers/freelancer/",
            body=urllib.parse.urlencode(fields).encode(),
            headers=headers,
        )

    actions = admin_actions(stack, world)
    recommend = next(a for a in actions if a.startswith("recommend_approv"))
    approve = next(a for a in actions if a == "approve" or a.startswith("approve"))
    assert admin_action("approver", approve).status in (200, 302)
    assert application_status(stack, d) == "submitted", "approved without a recommendation"
    assert admin_action("dual", recommend).status in (200, 302)
    assert admin_action("dual", approve).status in (200, 302)
    assert application_status(stack, d) == "submitted", "the recommender approved it"
    assert admin_action("approver2", approve).status in (200, 302)
    assert application_status(stack, d) == "approved"
    TRIED["four_eyes"] += 4


def admin_actions(stack, world) -> list[str]:
    page = call(stack, world, "approver", "GET", "/admin/freelancers/freelancer/", None)
    assert page.status == 200
    return re.findall(r'<option value="([a-z_]+)"', page.body.decode())


def test_four_eyes_through_the_services(stack, world):
    out = stack.shell(
        "from django.contrib.auth import get_user_model\n"
        "from django_otp.oath import totp\n"
        "from django_otp.plugins.otp_totp.models import TOTPDevice\n"
        "from freelancers.models import Freelancer\n"
        "from freelancers.services import workflow\n"
        "User = get_user_model()\n"
        "f = Freelancer.objects.create(user=User.objects.create_user('acc-applicant3',"
        " 'acc-applicant3@example.pk', 'Access-Pass-1234!'), full_name='Service four eyes',"
        " cnic='3520212345715', status=Freelancer.Status.SUBMITTED, province='punjab')\n"
        "def verified(username):\n"
        "    user = User.objects.get(username=username)\n"
        "    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()\n"
        "    assert workflow.staff_verify_otp(user=user, token=f'{totp(device.bin_key):06d}')\n"
        "    return user\n"
        "workflow.application_recommend(freelancer=f, reviewer=User.objects.get("
        "username='acc-dual'), decision='approve')\n"
        "results = []\n"
        "for approver in (User.objects.get(username='acc-approver'), verified('acc-dual'),"
        " verified('acc-approver')):\n"
        "    try:\n"
        "        workflow.application_approve(freelancer=f, approver=approver)\n"
        "        results.append('approved')\n"
        "    except workflow.WorkflowError as exc:\n"
        "        results.append(type(exc).__name__)\n"
        "print(','.join(results), Freelancer.objects.get(pk=f.pk).status)\n"
    )
    # Without the second factor an approver is refused; the recommender is refused even with
    # it (four eyes); another approver with it decides.
    assert out.strip().splitlines()[-1] == "NotPermitted,FourEyesViolation,approved approved"
    TRIED["four_eyes"] += 3


def test_access_counts_are_written(resilience_log_dir):
    (resilience_log_dir / "access_counts.json").write_text(json.dumps(TRIED, indent=2))
