"""The earnings pages in real Chromium: a freelancer opens a month and finds its totals."""

import datetime
from decimal import Decimal

import pytest
from django.conf import settings

from tests.factories import DollarAccountFactory, ReceiptFactory

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.django_db(transaction=True)
def test_freelancer_opens_a_monthly_statement_in_the_browser(live_server, client, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    from payments.services.banks import purpose_code_set

    code, _ = purpose_code_set(code="9182", description="Software consultancy", category="computer")
    account = DollarAccountFactory()
    ReceiptFactory(
        account=account,
        purpose_code=code,
        amount=Decimal("1500.00"),
        retained_amount=Decimal("500.00"),
        value_date=datetime.date(2024, 3, 5),
    )
    client.force_login(account.freelancer.user)
    session_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies(
                [
                    {
                        "name": settings.SESSION_COOKIE_NAME,
                        "value": session_cookie,
                        "url": live_server.url,
                    }
                ]
            )
            page = context.new_page()
            external = []
            page.on(
                "request",
                lambda r: external.append(r.url) if not r.url.startswith(live_server.url) else None,
            )
            page.goto(f"{live_server.url}/earnings/")
            assert account.iban in page.content()
            page.get_by_role("link", name="March 2024").click()
            page.wait_for_url("**/earnings/2024-03/")
            text = page.inner_text("main")
            assert "1500.00" in text and "500.00" in text
            with page.expect_download() as download:
                page.get_by_role("link", name="Download CSV").click()
            assert download.value.suggested_filename == "earnings-2024-03.csv"
            assert external == []  # nothing loaded from another site
        finally:
            browser.close()
