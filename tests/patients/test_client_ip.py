"""Which address is the caller's (per-client sign-in limit, audit trail)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory, override_settings

from patients.throttling import client_ip
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"


def _ip(forwarded: str | None, remote: str = "10.0.0.9") -> str | None:
    meta: dict[str, Any] = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(RequestFactory().get("/", **meta))


@override_settings(TRUSTED_PROXY_COUNT=0)
def test_it_ignores_forwarded_for_when_no_proxy_is_in_front():
    assert _ip("198.51.100.7") == "10.0.0.9"
    assert _ip("6.6.6.6, 198.51.100.7") == "10.0.0.9"


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_it_takes_the_entry_the_one_proxy_appended():
    assert _ip("6.6.6.6, 198.51.100.7") == "198.51.100.7"
    assert _ip(None) == "10.0.0.9"


@override_settings(TRUSTED_PROXY_COUNT=2)
def test_it_takes_the_entry_the_outermost_of_two_proxies_appended():
    # client-forged, what the outer proxy saw, what the inner proxy saw (the outer proxy)
    assert _ip("6.6.6.6, 198.51.100.7, 10.1.1.1") == "198.51.100.7"
    assert _ip("198.51.100.8") == "198.51.100.8"


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_it_falls_back_to_the_socket_for_an_entry_that_is_not_an_address():
    assert _ip("6.6.6.6, not-an-ip") == "10.0.0.9"


@override_settings(TRUSTED_PROXY_COUNT=0)
def test_it_throttles_a_client_that_rotates_a_forged_forwarded_for(anon_client, patient):
    for i in range(10):
        anon_client.post(
            LOGIN,
            {"email": f"guess{i}@example.com", "password": "bad"},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
            REMOTE_ADDR="10.9.9.9",
        )
    response = anon_client.post(
        LOGIN,
        {"email": "pat@example.com", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.200",
        REMOTE_ADDR="10.9.9.9",
    )
    assert response.status_code == 429
