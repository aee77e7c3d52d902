"""The invoice portal in real Chromium: a freelancer creates and sends an invoice without Stripe
keys, and the client's page explains that card payment is not configured."""

import pytest
from django.conf import settings as django_settings
from django.test import Client

from payments.models import Invoice
from tests.factories import ApprovedFreelancerFactory

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_freelancer_creates_invoice_and_client_page_explains_stripe_missing(
    live_server, monkeypatch, settings
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.STRIPE_API_KEY = ""
    freelancer = ApprovedFreelancerFactory()
    django_client = Client()
    django_client.force_login(freelancer.user)
    session_id = django_client.cookies[django_settings.SESSION_COOKIE_NAME].value
    external: list[str] = []  # every URL the pages load; none may be off-site (no CDN)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        context = browser.new_context()
        context.add_cookies(
            [
                {
                    "name": django_settings.SESSION_COOKIE_NAME,
                    "value": session_id,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        page.on("request", lambda r: external.append(r.url))
        page.goto(f"{live_server.url}/invoices/")
        page.fill("#id_client_name", "Hooli Inc")
        page.fill("#id_client_email", "ap@hooli.example.com")
        page.fill("#id_client_country", "US")
        page.fill("#id_description", "API integration")
        page.fill("#id_amount", "750.00")
        page.select_option("#id_currency", "USD")
        page.select_option("#id_purpose_code", label="9184 Export of computer software")
        page.fill("#id_due_date", "2099-01-31")
        page.click("text=Create draft")
        page.wait_for_url("**/invoices/*/")
        assert "Draft" in page.inner_text("h1")
        page.click("button:has-text('Send')")
        assert "Stripe is not configured" in page.inner_text("main")
        browser.close()
    # ORM calls stay outside Playwright's event loop: inside it, Django would open a connection
    # per async context that is never closed.
    invoice = Invoice.objects.get()
    assert invoice.status == Invoice.Status.DRAFT
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.OPEN)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        client_page = browser.new_page()  # the client: no session
        client_page.on("request", lambda r: external.append(r.url))
        client_page.goto(f"{live_server.url}/pay/{invoice.public_token}/")
        assert "750.00 USD" in client_page.inner_text("main")
        assert client_page.is_disabled("#pay-with-stripe")
        assert "Stripe is not configured" in client_page.inner_text("#stripe-not-configured")
        browser.close()
    assert [url for url in external if not url.startswith(live_server.url)] == []
