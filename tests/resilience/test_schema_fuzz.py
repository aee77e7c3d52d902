"""schemathesis against the portal's own OpenAPI schema (/api/schema/), every operation, as an
anonymous visitor, a freelancer and a staff member with every permission (second factor
verified): no 5xx, and every documented response matches its schema and content type.

Runs the schemathesis CLI (pinned in requirements.txt) as a subprocess against gunicorn, so the
schema is read from the live server exactly as a client would read it.
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from tests.resilience.harness import BIN, CSRF_TOKEN, create_session, create_user

pytestmark = pytest.mark.resilience

EXAMPLES = os.environ.get("RESILIENCE_SCHEMA_EXAMPLES", "200")
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
RESULTS: dict[str, dict] = {}


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


def operations_in(junit_path) -> tuple[int, int]:
    """(operations tested, operations failed) from schemathesis' JUnit report."""
    if not junit_path.exists():
        return 0, 0
    root = ET.parse(junit_path).getroot()
    cases = root.iter("testcase")
    total = failed = 0
    for case in cases:
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
    return total, failed


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
        "examples,coverage,fuzzing",
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
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=3000)
    output = result.stdout + result.stderr
    (resilience_log_dir / f"schemathesis-{role}.log").write_text(output)
    total, failed = operations_in(junit)
    RESULTS[role] = {"operations": total, "failed": failed, "exit": result.returncode}
    if "No operations" in output or total == 0:
        pytest.skip("the schema has no operations yet")
    assert result.returncode == 0, output[-6000:]
