from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from registry import periods as P
from registry.services import statistics_rebuild
from tests.factories import ApprovedFreelancerFactory, ReceiptFactory

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _receipts_for_two_years() -> None:
    today = timezone.localdate()
    freelancers = [ApprovedFreelancerFactory(province=p) for p in ("punjab", "sindh")]
    key = P.month_key(today.year, today.month)
    for back in range(26):
        month = P.month_start(P.month_add(key, -back))
        for n in range((back + 2) % 3 + 1):
            ReceiptFactory(
                value_date=month.replace(day=1 + n * 7),
                amount=Decimal(1000 + 137 * back + 11 * n) + Decimal("0.25"),
                freelancer=freelancers[n % 2] if n < 2 else None,
                remitter_country=["US", "GB", "AE"][(back + n) % 3],
            )
    statistics_rebuild()


def _plain(text: str) -> str:
    return text.replace(",", "").replace("USD", "").replace("%", "").strip()


@pytest.mark.django_db
def test_statistics_page_is_public_and_shows_the_api_figures_without_external_assets():
    _receipts_for_two_years()
    response = Client().get("/statistics/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html and "format=csv" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert 'data-testid="registrations"' in html


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_statistics_page_in_chromium_matches_the_api(live_server, monkeypatch):
    import importlib

    from django.apps import apps
    from playwright.sync_api import sync_playwright

    importlib.import_module("payments.migrations.0002_seed_purpose_codes").seed(apps, None)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    _receipts_for_two_years()
    external_requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on(
            "request",
            lambda r: (
                external_requests.append(r.url) if not r.url.startswith(live_server.url) else None
            ),
        )
        page.goto(f"{live_server.url}/statistics/")
        rows = page.locator("table[data-testid=monthly] tbody tr")
        first = rows.last.get_attribute("data-month")
        last = rows.first.get_attribute("data-month")
        api = page.request.get(
            f"{live_server.url}/api/v1/statistics/monthly/?from={first}&to={last}"
        ).json()["results"]
        assert rows.count() == len(api) == 12
        fields = ["total_usd", "receipts", "freelancers", "mom_pct", "yoy_pct", "fytd_usd",
                  "fytd_yoy_pct"]  # fmt: skip
        for expected in api:
            row = page.locator(f"tr[data-month='{expected['month']}']")
            for field in fields:
                shown = _plain(row.locator(f"[data-field={field}]").inner_text())
                want = "–" if expected[field] is None else str(expected[field])
                assert shown == want, (expected["month"], field)
        headline = page.locator("[data-testid=latest]")
        assert (
            _plain(headline.locator("[data-field=total_usd]").inner_text()) == api[-1]["total_usd"]
        )
        fiscal = page.request.get(f"{live_server.url}/api/v1/statistics/fiscal-years/").json()
        for expected in fiscal["results"]:
            row = page.locator(f"tr[data-fiscal-year='{expected['fiscal_year']}']")
            assert (
                _plain(row.locator("[data-field=total_usd]").inner_text())
                == (expected["total_usd"])
            )
        # The breakdowns show FYTD through the last month: the API's FYTD of each group in that
        # month (every group here has receipts in the last month).
        by_province = page.request.get(
            f"{live_server.url}/api/v1/statistics/monthly/?from={last}&to={last}&group_by=province"
        ).json()["results"]
        section = page.locator("[data-testid=breakdown-province]")
        assert section.locator("tbody tr").count() >= len(by_province) > 0
        for expected in by_province:
            row = section.locator(f"tr[data-group='{expected['province']}']")
            for field in ("fytd_usd", "fytd_yoy_pct"):
                want = "–" if expected[field] is None else expected[field]
                assert _plain(row.locator(f"[data-field={field}]").inner_text()) == want
        registrations = page.request.get(
            f"{live_server.url}/api/v1/statistics/registrations/?from={first}&to={last}"
        ).json()["results"]
        assert any(r["active"] for r in registrations)
        for expected in registrations:
            row = page.locator(
                f"table[data-testid=registrations] tr[data-month='{expected['month']}']"
            )
            for field in ("registered", "approved", "active"):
                assert row.locator(f"[data-field={field}]").inner_text() == str(expected[field])
        assert page.locator("svg.chart").count() == 5
        href = page.locator("a", has_text="monthly CSV").get_attribute("href")
        csv = page.request.get(f"{live_server.url}{href}")
        assert csv.headers["content-type"].startswith("text/csv")
        page.screenshot(path="/tmp/statistics.png", full_page=True)
        browser.close()
    assert external_requests == []
