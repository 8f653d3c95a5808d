"""The template editor and the patient preview in a real browser (Debian's Chromium
through Playwright, as tests/dashboard/test_browser.py): copy a seeded template, edit it,
see an error, preview a phase in English and Spanish, give the program to a patient,
adjust their dosage from today and see their app. Screenshots of every step go to
test-artifacts/screenshots/editor-*.png."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from playwright.sync_api import Browser, Page, expect

from patients.models import Clinician, Patient
from programs.education import content
from programs.models import (
    AssignedExercise,
    CardAssignment,
    DosageVersion,
    ProgramAssignment,
    ProgramTemplate,
)
from rehab.safety.rules import MESSAGES
from tests.dashboard.test_browser import VIEWPORTS, Shots, _axe_violations, browser  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password-2026"


@pytest.fixture
def seeded() -> None:
    # A transactional test starts from a flushed database: seed as the migrations did.
    importlib.import_module("programs.migrations.0002_seed_templates").seed(apps)
    importlib.import_module("programs.migrations.0003_seed_templates_source_ranges").apply(apps)
    content.seed_cards(apps)


@pytest.fixture
def page(browser: Browser, live_server: Any, clinician: Clinician, seeded: None) -> Iterator[Page]:  # noqa: F811
    clinician.user.set_password(PASSWORD)
    clinician.user.save()
    context = browser.new_context(viewport=VIEWPORTS["laptop"])  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{live_server.url}/dashboard/login/")
    page.get_by_label("Email").fill(clinician.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Caseload")
    yield page
    context.close()


def test_it_builds_a_template_and_previews_what_the_patient_sees(
    page: Page, live_server: Any, clinician: Clinician, patient: Patient
) -> None:
    shots = Shots(page, "editor")
    violations: list[str] = []
    try:
        # The seeded templates, read-only: copy one to the clinic.
        page.get_by_role("link", name="Templates").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Program templates")
        violations += _axe_violations(page)
        shots.take("templates")
        page.get_by_role("link", name="Deep gluteal syndrome, 8-12 weeks", exact=True).click()
        page.get_by_role("button", name="Copy to my clinic").click()
        expect(page.get_by_role("status")).to_contain_text("Copied to")
        copy = ProgramTemplate.objects.get(clinic=clinician.clinic)
        expect(page).to_have_url(f"{live_server.url}/dashboard/templates/{copy.pk}/")
        violations += _axe_violations(page)
        shots.take("copied")

        # Edit: a heavier first exercise, a fifth phase, and a ceiling of 4.
        page.locator("#id_t-name").fill("DGS, our way")
        page.locator("#id_t-pain_ceiling").fill("4")
        page.locator("#id_phase-0-exercises-0-sets").fill("4")
        new = page.locator("fieldset.phase").last
        new.locator("#id_phases-4-name").fill("Back to running")
        new.locator("#id_phases-4-length_weeks").fill("2")
        walking = new.locator("#id_phase-4-exercises-0-exercise")
        walking.select_option(label="Walking")
        new.locator("#id_phase-4-exercises-0-sets").fill("1")
        new.locator("#id_phase-4-exercises-0-duration_minutes").fill("20")
        new.locator("#id_phase-4-exercises-0-sessions_per_week").fill("3")
        new.get_by_label("After a fall").check()
        shots.take("editing")
        page.get_by_role("button", name="Save template").click()
        expect(page.get_by_role("status")).to_contain_text("Saved “DGS, our way”")
        copy.refresh_from_db()
        assert (copy.name, copy.pain_ceiling, copy.phases.count()) == ("DGS, our way", 4, 5)
        first = copy.phases.get(position=1).exercises.order_by("position")[0]
        assert first.sets == 4
        last = copy.phases.get(position=5)
        assert [c.slug for c in last.education_cards.all()] == ["after-a-fall"]
        shots.take("saved")

        # Bad input: two units on one row. The page says so and nothing changes.
        page.locator("#id_phase-0-exercises-0-reps").fill("10")
        page.get_by_role("button", name="Save template").click()
        expect(page.locator(".row-errors").first).to_contain_text("exactly one of")
        assert copy.phases.get(position=1).exercises.order_by("position")[0].reps is None
        shots.take("error")

        # The patient's view of phase 1, with the Emergency Department card, then in Spanish.
        page.goto(f"{live_server.url}/dashboard/templates/{copy.pk}/preview/?phase=1")
        preview = page.locator(".app-preview")
        expect(preview.get_by_role("heading", level=2)).to_have_text("Phase 1 of 5: Calm and glide")
        expect(preview.locator(".app-exercise").first).to_contain_text("4 sets of 30 s holds")
        ed = preview.locator(".app-card").filter(has_text="When to go to the Emergency Department")
        ed.locator("summary").click()
        expect(ed.locator(".card-body strong").last).to_have_text(MESSAGES["ces"])
        violations += _axe_violations(page)
        shots.take("preview-phase-1")
        page.get_by_label("Language").select_option("es")
        page.get_by_role("button", name="Show").click()
        expect(
            preview.locator(".app-card").filter(has_text="Cuándo ir al servicio de Urgencias")
        ).to_be_visible()
        shots.take("preview-spanish")

        # Give the program to a patient, and change one dosage from today.
        page.goto(f"{live_server.url}/dashboard/patients/{patient.pk}/plan/")
        page.get_by_label("Program template").select_option(label="DGS, our way")
        page.get_by_role("button", name="Give this program").click()
        expect(page.get_by_role("status")).to_contain_text("now has the program")
        assignment = ProgramAssignment.objects.get(patient=patient)
        assert assignment.pain_ceiling == 4
        given = set(
            CardAssignment.objects.filter(patient=patient).values_list("card__slug", flat=True)
        )
        assert "when-to-go-to-the-emergency-department" in given
        shots.take("plan")
        exercise = AssignedExercise.objects.get(
            phase__assignment=assignment, phase__position=1, position=1
        )
        row = page.locator(f"tr[data-exercise-id='{exercise.pk}']")
        row.get_by_label("Sets").fill("5")
        page.get_by_role("button", name="Save changes from").click()
        expect(page.get_by_role("status")).to_contain_text("Saved 1 change")
        versions = DosageVersion.objects.filter(assigned_exercise=exercise)
        assert sorted(v.sets for v in versions) == [5]  # the program starts today
        violations += _axe_violations(page)
        shots.take("plan-saved")

        # What the patient's app shows today: the new dosage and their cards.
        page.get_by_role("link", name="Preview the app").click()
        preview = page.locator(".app-preview")
        expect(preview.locator(".app-exercise").first).to_contain_text("5 sets of 30 s holds")
        expect(preview.locator(".app-card")).to_have_count(len(given))
        violations += _axe_violations(page)
        shots.take("patient-preview")

        # Education: give a card by hand and see it listed, unread.
        page.goto(f"{live_server.url}/dashboard/patients/{patient.pk}/education/")
        page.get_by_label("Education card").select_option(label="What to expect after prolotherapy")
        page.get_by_role("button", name="Give").click()
        expect(page.get_by_role("status")).to_contain_text("Card given")
        expect(page.locator("table.receipts tbody tr")).to_have_count(len(given) + 1)
        violations += _axe_violations(page)
        shots.take("patient-education")
    except BaseException:
        with contextlib.suppress(Exception):
            shots.take("failure")
        raise
    assert not violations, "\n".join(violations)
