"""schemathesis against the portal's own OpenAPI schema (/api/schema/), every operation, as an
anonymous visitor, a freelancer and a staff member with every permission (second factor
verified): no 5xx, and every documented response matches its schema and content type.

Runs the schemathesis CLI (pinned in requirements.txt) as a subprocess against gunicorn, so the
schema is read from the live server exactly as a client would read it.
"""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from tests.resilience.harness import BIN, CSRF_TOKEN, create_session, create_user

pytestmark = pytest.mark.resilience

EXAMPLES = os.environ.get("RESILIENCE_SCHEMA_EXAMPLES", "200")
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
RESULTS: dict[str, dict] = {}
# Documentation gaps this suite tolerates (none now: the three it found are fixed and their tests
# below guard them). A 5xx is never on this list.
KNOWN_SCHEMA_GAPS: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def sessions(stack) -> dict[str, str | None]:
    create_user(stack, "st-freelancer", "Schema-Pass-1234!")
    stack.shell(
        "from django.contrib.auth import get_user_model\n"
        "from freelancers.models import Freelancer\n"
        "user = get_user_model().objects.get(username='st-freelancer')\n"
        "Freelancer.objects.get_or_create(user=user, defaults={'full_name': 'Schema Freelancer',"
        " 'cnic': '3520299887761', 'province': 'punjab'})\n"
    )
    create_user(stack, "st-staff", "Schema-Pass-1234!", staff=True, superuser=True)
    return {
        "anonymous": None,
        "freelancer": create_session(stack, "st-freelancer"),
        "staff": create_session(stack, "st-staff", otp=True),
    }


def junit_results(junit_path) -> tuple[int, list[tuple[str, str, str]]]:
    """(operations tested, [(operation, failure codes, text)]) from schemathesis' JUnit report."""
    if not junit_path.exists():
        return 0, []
    root = ET.parse(junit_path).getroot()
    total, failures = 0, []
    for case in root.iter("testcase"):
        total += 1
        for node in (case.find("failure"), case.find("error")):
            if node is not None:
                text = f"{node.get('message') or ''} {node.text or ''}"
                codes = ",".join(sorted(set(re.findall(r"\bST\d{3}\b", text)))) or node.tag
                failures.append((case.get("name"), codes, text[:600]))
    return total, failures


@pytest.mark.parametrize("role", ["anonymous", "freelancer", "staff"])
def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    stack, sessions, role, resilience_log_dir
):
    schema = stack.get("/api/schema/?format=json")
    assert schema.status == 200, schema.body[:300]
    junit = resilience_log_dir / f"schemathesis-{role}.xml"
    cookie = f"csrftoken={CSRF_TOKEN}"
    if sessions[role]:
        cookie += f"; sessionid={sessions[role]}"
    cmd = [
        str(BIN / "schemathesis"),
        "run",
        f"{stack.base_url}/api/schema/?format=json",
        "--url",
        stack.base_url,
        "--checks",
        CHECKS,
        "--max-examples",
        EXAMPLES,
        "--phases",
        "examples,fuzzing",
        "--seed",
        "20260401",
        "--workers",
        "4",
        "--request-timeout",
        "60",
        "--generation-database",
        "none",
        "--no-color",
        "--suppress-health-check",
        "all",
        "-H",
        f"Cookie: {cookie}",
        "-H",
        f"X-CSRFToken: {CSRF_TOKEN}",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
    ]
    # Run from the log directory: schemathesis keeps a cache folder in its working directory.
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=3000, cwd=resilience_log_dir
    )
    output = result.stdout + result.stderr
    (resilience_log_dir / f"schemathesis-{role}.log").write_text(output)
    total, failures = junit_results(junit)
    unexpected = [
        f"{operation} [{codes}]: {text}"
        for operation, codes, text in failures
        if not all((operation, code) in KNOWN_SCHEMA_GAPS for code in codes.split(","))
    ]
    RESULTS[role] = {"operations": total, "failures": len(failures), "exit": result.returncode}
    if "No operations" in output or total == 0:
        pytest.skip("the schema has no operations yet")
    assert unexpected == [], "\n\n".join(unexpected)


def schema_of(stack) -> dict:
    response = stack.get("/api/schema/?format=json")
    assert response.status == 200
    return response.json()


def test_statistics_csv_responses_are_documented(stack):
    schema = schema_of(stack)
    if "/api/v1/statistics/monthly/" not in schema["paths"]:
        pytest.skip("statistics not merged")
    content = schema["paths"]["/api/v1/statistics/monthly/"]["get"]["responses"]["200"]["content"]
    assert "text/csv" in content


def test_staff_application_list_documents_its_cursor_page(stack):
    schema = schema_of(stack)
    if "/api/v1/freelancers/applications/" not in schema["paths"]:
        pytest.skip("registration not merged")
    operation = schema["paths"]["/api/v1/freelancers/applications/"]["get"]
    documented = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert documented.get("type") != "array"


def test_earnings_lists_document_their_results_object(stack):
    schema = schema_of(stack)
    if "/api/v1/earnings/accounts/" not in schema["paths"]:
        pytest.skip("earnings not merged")
    operation = schema["paths"]["/api/v1/earnings/accounts/"]["get"]
    documented = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert documented.get("type") != "array"
