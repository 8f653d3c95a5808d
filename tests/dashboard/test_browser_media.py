"""Exercise media pages in a real browser (Debian's Chromium, as tests/dashboard/
test_browser.py): upload an image, see it served through its signed link under the
dashboard's Content-Security-Policy, be told why a disguised script is refused, and no
accessibility violation on the way. Screenshots in test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.dashboard.test_browser import ARGS, CHROMIUM, Shots, _axe_violations
from tests.factories import ClinicianFactory, UserFactory
from tests.programs.factories import ExerciseFactory
from tests.programs.media_support import PHP, jpeg_with_gps
from tests.programs.media_support import media_root as media_root  # a fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password-2026"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (as .ci/run does)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield browser
            browser.close()


@pytest.mark.usefixtures("media_root")
def test_a_clinician_uploads_an_image_and_sees_it_served(
    chromium: Browser, live_server: Any, tmp_path: Path
) -> None:
    user = UserFactory.create(email="media-physio@example.com", first_name="Mia")
    user.set_password(PASSWORD)
    user.save()
    ClinicianFactory.create(user=user)
    exercise = ExerciseFactory.create(clinic=None, name="Bridge")
    photo, script = tmp_path / "bridge.jpg", tmp_path / "holiday.jpg"
    photo.write_bytes(jpeg_with_gps(size=(400, 300)))
    script.write_bytes(PHP)

    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    shots = Shots(page, "media")
    violations: list[str] = []
    try:
        page.goto(f"{live_server.url}/dashboard/login/")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Exercises").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Exercise library")
        violations += _axe_violations(page)
        page.get_by_role("link", name=exercise.name).click()
        violations += _axe_violations(page)

        page.get_by_label("Image or video").set_input_files(str(script))
        page.get_by_role("button", name="Upload").click()
        expect(page.locator(".field-error")).to_contain_text("not a JPEG, PNG or WebP image")
        shots.take("refused")

        page.get_by_label("Image or video").set_input_files(str(photo))
        page.get_by_label("Description").fill("Hips lifted, knees bent")
        page.get_by_role("button", name="Upload").click()
        expect(page.get_by_role("status")).to_contain_text("Added the image")
        image = page.get_by_role("img", name="Hips lifted, knees bent")
        expect(image).to_be_visible()
        # Loaded through its signed link, under the page's Content-Security-Policy: its
        # width once it has loaded (0 if it failed), not at a moment it may still load.
        loaded = (
            "img => img.complete ? img.naturalWidth : new Promise(done => {"
            " img.addEventListener('load', () => done(img.naturalWidth));"
            " img.addEventListener('error', () => done(0)); })"
        )
        assert image.evaluate(loaded) == 400
        violations += _axe_violations(page)
        shots.take("uploaded")
    finally:
        context.close()
    assert not violations, "\n".join(violations)
