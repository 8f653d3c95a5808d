"""The dashboard's service worker in a real browser (Debian's Chromium, as the dashboard's
browser tests): the page offers Web Push once the server has a VAPID key, and a push
message delivered to the worker becomes a notification, tagged with its delivery."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from patients.models import Clinician
from tests.dashboard.test_browser import ARGS, CHROMIUM
from tests.factories import PASSWORD
from tests.notifications.subscriptions import vapid_private_key

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Seconds to wait for the worker's registration, then for the notification: each wait
# ends as soon as it is there (polled every 100 ms). Chromium took over 10 s under the
# load of a parallel suite on a shared 2-core machine.
DEADLINE = 30


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


def test_a_push_message_becomes_a_notification(
    browser: Browser, live_server: Any, clinician: Clinician, settings: Any
) -> None:
    settings.MFA_REQUIRED_DEFAULT = False
    settings.WEBPUSH_VAPID_PRIVATE_KEY = vapid_private_key()
    clinician.clinic.two_factor_required = False
    clinician.clinic.save()
    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=live_server.url)
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{live_server.url}/dashboard/login/")
    page.locator("input[name=username]").fill(clinician.user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("[type=submit]").click()
    button = page.locator("#push-toggle")
    expect(button).to_be_visible()

    cdp = context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    # The worker as push.js registers it (a real subscription would need the push
    # service's network, which tests do not have).
    page.evaluate(
        "() => navigator.serviceWorker.register("
        "document.getElementById('push-toggle').dataset.sw).then(() => null)"
    )
    # A push delivered while the worker is still installing is dropped by Chromium, so
    # wait for it to be activated (under a loaded parallel suite, installing takes seconds).
    deadline = time.monotonic() + DEADLINE
    while not page.evaluate(
        "async () => { const r = await navigator.serviceWorker.getRegistration("
        "'/static/dashboard/'); return !!(r && r.active && r.active.state === 'activated'); }"
    ):
        assert time.monotonic() < deadline, "the service worker was never activated"
        page.wait_for_timeout(100)
    deadline = time.monotonic() + DEADLINE
    while not any(r["scopeURL"].endswith("/static/dashboard/") for r in registrations):
        assert time.monotonic() < deadline, registrations
        page.wait_for_timeout(100)
    registration_id = next(
        r["registrationId"] for r in registrations if r["scopeURL"].endswith("/static/dashboard/")
    )
    payload = {
        "title": "Emergency alert",
        "body": "Open the dashboard",
        "data": {"kind": "alert", "alert": "3f1c0c52-8a5e-4a8e-9a51-0c1c2f3e4d5a"},
        "delivery_id": "5b6f0d4e-9c1a-4a3b-8f2e-7d6c5b4a3f2e",
        "urgent": True,
    }
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": live_server.url, "registrationId": registration_id, "data": json.dumps(payload)},
    )
    shown: list[dict[str, Any]] = []
    deadline = time.monotonic() + DEADLINE
    while not shown:
        assert time.monotonic() < deadline, "no notification was shown"
        page.wait_for_timeout(100)
        shown = page.evaluate(
            "async () => (await (await navigator.serviceWorker.getRegistration("
            "'/static/dashboard/')).getNotifications())"
            ".map(n => ({title: n.title, body: n.body, tag: n.tag, data: n.data,"
            " sticky: n.requireInteraction}))"
        )
    assert shown == [
        {
            "title": "Emergency alert",
            "body": "Open the dashboard",
            "tag": payload["delivery_id"],
            "data": payload["data"],
            "sticky": True,
        }
    ]
    assert violations == []
    context.close()
