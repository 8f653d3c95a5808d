"""The dashboard offers Web Push to a clinician's browser: its button, script and service
worker are served from our own static files (no inline script under the CSP)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_the_dashboard_offers_to_notify_this_browser(clinician, settings):
    from django.test import Client

    settings.MFA_REQUIRED_DEFAULT = False
    browser = Client()
    browser.force_login(clinician.user)
    page = browser.get("/dashboard/").content.decode()
    assert 'id="push-toggle"' in page
    assert 'data-sw="/static/dashboard/push-sw.js"' in page
    assert 'data-devices-url="/api/v1/me/devices/"' in page
    assert '<script src="/static/dashboard/push.js" defer></script>' in page


def test_the_service_worker_shows_each_message_once_per_delivery():
    path = finders.find("dashboard/push-sw.js")
    assert path is not None
    source = Path(path).read_text()
    assert 'addEventListener("push"' in source
    assert "showNotification" in source
    assert "tag: message.delivery_id" in source
