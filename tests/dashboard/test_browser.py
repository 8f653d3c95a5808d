"""The dashboard in a real browser: Debian's Chromium driven by Playwright
(docs/architecture.md § Facts measured).

Never `playwright install`: the browser is /usr/bin/chromium, installed by .ci/run.
Screenshots of every step go to test-artifacts/screenshots/ (gitignored), for a person to
look at, on a laptop and on a tablet viewport.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, FloatRect, Page, expect, sync_playwright

from dashboard.views import PAGE_SIZE
from patients.models import Clinician, Patient
from rehab.demo import DEMO_PASSWORD, PHYSIO_EMAIL, seed_demo
from rehab.demo_record import DGS_EMAIL
from rehab.models import Alert, DailyLog
from rehab.models.alerts import SEVERITY_RANK
from rehab.selectors.alerts import severity_rank
from rehab.selectors.caseload import MISSED_LOG_DAYS
from rehab.selectors.logs import progress_get
from tests.factories import PatientFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
VIEWPORTS = {"laptop": {"width": 1280, "height": 800}, "tablet": {"width": 768, "height": 1024}}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (as .ci/run does)")
    # Sync Playwright runs an event loop in this thread while pytest-django's live server
    # answers in another; Django refuses ORM calls from a thread with a running loop unless
    # told. Told for as long as the loop runs (the test's database flush included), and
    # for these tests only, not the whole session.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield browser
            browser.close()


class Shots:
    def __init__(self, page: Page, prefix: str) -> None:
        self.page, self.prefix, self.n = page, prefix, 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(self, name: str) -> None:
        self.n += 1
        self.page.screenshot(
            path=SCREENSHOTS / f"{self.prefix}-{self.n:02d}-{name}.png", full_page=True
        )


def _expected_triage(physio: Clinician) -> list[str]:
    """The caseload's first page as issue 7 orders it, worked out in Python from the
    database (not from the selector's SQL): open emergency, urgent, routine alerts (the
    longest waiting first), then worsening pain (the most first), then missed logs (never
    logged, then the longest silent), then the rest (the most worsened first)."""
    keys = []
    for patient in Patient.objects.visible_to(physio.user):
        alerts = sorted(
            (SEVERITY_RANK[a.severity], a.opened_at.timestamp())
            for a in patient.alerts.filter(status=Alert.Status.OPEN)
        )
        rank, waited = alerts[0] if alerts else (len(SEVERITY_RANK), math.inf)
        change = progress_get(patient=patient).figures.change
        last = patient.daily_logs.order_by("-date").values_list("date", flat=True).first()
        today = patient.local_today()
        missed = last is None or last <= today - timedelta(days=MISSED_LOG_DAYS)
        tier = 0 if change is not None and change > 0 else 1 if missed else 2
        silent_since = (last.toordinal() if last else -math.inf) if tier == 1 else 0
        worsened = -change if change is not None else math.inf
        keys.append(
            (
                (rank, waited, tier, silent_since, worsened, patient.last_name, patient.first_name),
                f"{patient.last_name}, {patient.first_name}",
            )
        )
    return [name for _, name in sorted(keys)][:PAGE_SIZE]


def _first_in_triage() -> Patient:
    """From the database, not the page: the patient whose most severe open alert is the
    most severe, the longest waiting among equals."""
    alert = (
        Alert.objects.filter(status=Alert.Status.OPEN)
        .annotate(rank=severity_rank())
        .order_by("rank", "opened_at")
        .select_related("patient")
        .first()
    )
    assert alert is not None, "the demo data has an open red flag"
    patient: Patient = alert.patient
    return patient


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_it_triages_charts_and_handles_an_alert_in_a_browser(
    device: str, browser: Browser, live_server: Any
) -> None:
    seed_demo()
    physio = Clinician.objects.select_related("clinic").get(user__email=PHYSIO_EMAIL)
    elsewhere = PatientFactory.create(first_name="Olly", last_name="Elsewhere")
    assert elsewhere.clinic_id != physio.clinic_id
    # A patient who never logged: the missed-logs tier, below worsening pain, above the rest.
    PatientFactory.create(
        clinic=physio.clinic, care_team=[physio], first_name="Sid", last_name="Silent"
    )
    first = _first_in_triage()
    expected = _expected_triage(physio)

    context = browser.new_context(viewport=VIEWPORTS[device])  # type: ignore[arg-type]
    page = context.new_page()
    shots = Shots(page, device)
    try:
        # Sign in: the dashboard sends us to the login page and back.
        page.goto(f"{live_server.url}/dashboard/")
        expect(page).to_have_url(f"{live_server.url}/dashboard/login/?next=/dashboard/")
        expect(page.get_by_label("Email")).to_be_focused()  # autofocus
        shots.take("login")
        page.get_by_label("Email").fill(PHYSIO_EMAIL)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{live_server.url}/dashboard/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Caseload")
        # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
        page.keyboard.press("Tab")
        expect(page.locator(".skip-link")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        shots.take("caseload")

        # Triage order, every row: emergency > urgent > routine > worsening > missed > rest.
        rows = page.locator("table.caseload tbody tr")
        expect(rows.first.locator("th a")).to_have_text(f"{first.last_name}, {first.first_name}")
        assert page.locator("table.caseload tbody tr th a").all_inner_texts() == expected
        assert "Silent, Sid" in expected
        _assert_no_horizontal_overflow(page, device)

        # The patient page and the chart's points.
        rows.first.locator("th a").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(first.full_name)
        points = page.locator("svg circle[data-series='pain']")
        logs = DailyLog.objects.filter(patient=first).order_by("-date")
        expect(points).to_have_count(logs.count())  # all within the default 90 days
        latest = logs[0]
        point = page.locator(f"svg circle[data-series='pain'][data-date='{latest.date}']")
        expect(point).to_have_attribute("data-value", str(latest.pain))
        assert f"pain {latest.pain}/10" in (
            point.locator("xpath=..").locator("title").text_content() or ""
        )
        expect(page.locator("svg [data-series='baseline']").first).to_be_attached()
        _assert_no_horizontal_overflow(page, device)
        shots.take("patient")

        # Acknowledge, then resolve, the most urgent alert through the forms.
        alert = (
            first.alerts.filter(status=Alert.Status.OPEN)
            .annotate(rank=severity_rank())
            .order_by("rank", "opened_at")[0]
        )
        card = page.locator(f"#alert-{alert.pk}")
        note = "Phoned the patient; reviewing today."
        card.get_by_label("Acknowledgement note (optional)").fill(note)
        card.get_by_role("button", name="Acknowledge").click()
        expect(page.get_by_role("status").filter(has_text="Acknowledged")).to_be_visible()
        card = page.locator(f"#alert-{alert.pk}")
        expect(card).to_have_attribute("data-status", "acknowledged")
        alert.refresh_from_db()
        assert alert.status == Alert.Status.ACKNOWLEDGED
        assert alert.acknowledged_note == note
        shots.take("acknowledged")

        card.get_by_label("Outcome").select_option("referred")
        card.get_by_label("Resolution note (optional)").fill("Urgent spinal referral made.")
        card.get_by_role("button", name="Resolve").click()
        expect(page.get_by_role("status").filter(has_text="Resolved")).to_be_visible()
        expect(page.locator(f"#alert-{alert.pk}")).to_have_count(0)
        alert.refresh_from_db()
        assert alert.status == Alert.Status.RESOLVED
        assert alert.disposition == "referred"
        shots.take("resolved")

        page.goto(f"{live_server.url}/dashboard/alerts/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Alerts")
        _assert_no_horizontal_overflow(page, device)
        shots.take("alerts")

        # The deep gluteal syndrome story: program phases as bands, the prolotherapy
        # sessions as markers, and the provocative tests turning negative.
        helen = Patient.objects.get(clinic=physio.clinic, email=DGS_EMAIL)
        page.goto(f"{live_server.url}/dashboard/patients/{helen.pk}/")
        expect(page.get_by_role("heading", level=1)).to_have_text(helen.full_name)
        expect(page.locator("svg g.band-phase").first).to_be_attached()
        expect(page.locator("svg g[data-kind='intervention']")).to_have_count(3)
        fair = page.locator("table.provocative-tests tr[data-test='fair'][data-side='right']")
        expect(fair).to_have_class("turned-negative")
        for heading in ("Exercise program", "Questionnaire scores", "Provocative tests"):
            expect(page.get_by_role("heading", level=2, name=heading)).to_be_visible()
        shots.take("deep-gluteal-syndrome")

        # Another clinic's patient does not exist, as far as this clinician knows.
        response = page.goto(f"{live_server.url}/dashboard/patients/{elsewhere.pk}/")
        assert response is not None
        assert response.status == 404
        shots.take("other-clinic-404")
    except BaseException:
        # What the page looked like when it went wrong, for whoever reads the failure; a
        # page too broken to photograph must not hide the original error.
        with contextlib.suppress(Exception):
            shots.take("failure")
        raise
    finally:
        context.close()


def _assert_no_horizontal_overflow(page: Page, device: str) -> None:
    """Readable on a tablet: nothing wider than the viewport (a wide table scrolls in its
    own box instead of the whole page)."""
    if device != "tablet":
        return
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"{page.url}: page {widths[0]} px wide in {widths[1]} px"


# --------------------------------------------------------------------------- accessibility


def _axe_violations(page: Page) -> list[str]:
    """axe-core (the copy inside axe-playwright-python: no CDN) over the page, every rule
    and every impact: the dashboard is meant to have no violation at all."""
    results = Axe().run(page)
    return [
        f"{page.url}: {violation['id']} ({violation['impact']}): "
        + "; ".join(node["target"][0] for node in violation["nodes"])
        for violation in results.response["violations"]
    ]


def _overlaps(boxes: Sequence[FloatRect], gap: float = 8) -> list[tuple[int, int]]:
    """Neighbouring labels closer than `gap` px: touching reads as one label."""
    ordered = sorted(range(len(boxes)), key=lambda i: boxes[i]["x"])
    return [
        (a, b)
        for a, b in itertools.pairwise(ordered)
        if boxes[a]["x"] + boxes[a]["width"] + gap > boxes[b]["x"]
    ]


def test_it_has_no_accessibility_violation_and_fits_a_laptop(
    browser: Browser, live_server: Any
) -> None:
    seed_demo()
    physio = Clinician.objects.select_related("clinic").get(user__email=PHYSIO_EMAIL)
    first = _first_in_triage()
    helen = Patient.objects.get(clinic=physio.clinic, email=DGS_EMAIL)
    context = browser.new_context(viewport=VIEWPORTS["laptop"])  # type: ignore[arg-type]
    page = context.new_page()
    shots = Shots(page, "a11y")
    violations: list[str] = []
    try:
        page.goto(f"{live_server.url}/dashboard/login/")
        violations += _axe_violations(page)
        page.get_by_label("Email").fill(PHYSIO_EMAIL)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Caseload")
        violations += _axe_violations(page)

        # The whole caseload table in a 1280 px window, with no sideways scrolling.
        wrap = page.locator(".table-wrap")
        widths = wrap.evaluate("el => [el.scrollWidth, el.clientWidth]")
        shots.take("caseload")
        assert widths[0] <= widths[1], f"caseload table {widths[0]} px wide in {widths[1]} px"

        for url in (f"/dashboard/patients/{first.pk}/", f"/dashboard/patients/{helen.pk}/"):
            page.goto(f"{live_server.url}{url}")
            violations += _axe_violations(page)
            # The 90-day chart's date labels side by side, none on top of another.
            labels = page.locator("svg .axis.x text")
            boxes = [box for box in (label.bounding_box() for label in labels.all()) if box]
            assert len(boxes) >= 3, "no date labels on the chart"
            assert not _overlaps(boxes), f"{url}: date labels collide"
            shots.take("patient")
        page.goto(f"{live_server.url}/dashboard/alerts/")
        violations += _axe_violations(page)
    finally:
        context.close()
    assert not violations, "\n".join(violations)
