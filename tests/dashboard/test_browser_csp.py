"""The Content-Security-Policy in a real browser (issue 18 item 8, docs/security.md):
the dashboard (its pygal chart and tooltips included), the admin and the API docs work
under it, and the browser reports no violation. Debian's Chromium, as test_browser.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect, sync_playwright

from patients.models import Clinician, Patient
from rehab.models import DailyLog
from tests.dashboard.test_browser import ARGS, CHROMIUM
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every violation the page reports, from before its first script runs.
_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`);
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (as .ci/run does)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield browser
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context()
    context.add_init_script(_WATCH)
    page = context.new_page()
    console: list[str] = []
    page.on(
        "console",
        lambda message: (
            console.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page, console
    context.close()


def _violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__cspViolations")
    return found


def _sign_in(page: Page, url: str, email: str) -> None:
    page.goto(url)
    page.locator("input[name=username]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("[type=submit]").click()


def test_it_runs_the_dashboard_and_its_chart_under_the_policy(
    page: tuple[Page, list[str]], live_server: Any, clinician: Clinician, patient: Patient
) -> None:
    tab, console = page
    today = timezone.localdate()
    for days in range(1, 8):
        DailyLog.objects.create(patient=patient, date=today - timedelta(days=days), pain=days)
    _sign_in(tab, f"{live_server.url}/dashboard/login/", clinician.user.email)
    expect(tab.get_by_role("heading", level=1)).to_have_text("Caseload")
    assert _violations(tab) == []

    tab.goto(f"{live_server.url}/dashboard/patients/{patient.pk}/")
    expect(tab.get_by_role("heading", level=1)).to_have_text(patient.full_name)
    # pygal's inline configuration ran (it carries the nonce) and its tooltips work.
    tab.wait_for_function("window.pygal && Object.keys(window.pygal.config).length === 1")
    # The tooltip it shows then covers the point, so the hover is forced; the script
    # writes the point's value into it.
    point = tab.locator("svg circle[data-series='pain']").first
    point.hover(force=True)
    value = point.get_attribute("data-value")
    expect(tab.locator("svg g.tooltip")).to_contain_text(f": {value}")
    assert _violations(tab) == []
    assert console == []


def test_it_runs_the_admin_under_the_policy(
    page: tuple[Page, list[str]], live_server: Any, patient: Patient
) -> None:
    tab, console = page
    UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    _sign_in(tab, f"{live_server.url}/admin/login/", "ops@example.com")
    expect(tab.locator("#site-name")).to_be_visible()
    for path in (
        "/admin/",
        "/admin/patients/patient/",
        f"/admin/patients/patient/{patient.pk}/change/",
        "/admin/patients/clinician/add/",
    ):
        tab.goto(f"{live_server.url}{path}")
        tab.wait_for_load_state("load")
        assert _violations(tab) == [], path
    assert console == []


def test_it_runs_the_api_docs_under_the_policy(
    page: tuple[Page, list[str]], live_server: Any, db: None
) -> None:
    tab, _ = page
    tab.goto(f"{live_server.url}/api/docs/")
    expect(tab.locator(".opblock").first).to_be_visible()
    assert _violations(tab) == []

    tab.goto(f"{live_server.url}/api/redoc/")
    expect(tab.get_by_role("heading", name="Rehab tracking API").first).to_be_visible()
    # Only what Redoc fetches from the internet may be refused (Google Fonts, its logo:
    # README, API); never an inline script or one of our own files.
    remote = ("https://fonts.googleapis.com/", "https://cdn.redoc.ly/")
    assert [v for v in _violations(tab) if not v.split()[-1].startswith(remote)] == []
