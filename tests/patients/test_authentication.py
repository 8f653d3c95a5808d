"""The Bearer token look-up: knox's hashing and expiry, in one query per request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from patients.authentication import (
    BearerTokenAuthentication,
    CompiledTokenLookup,
    _token_lookup,
    tokens_with_roles,
)
from patients.models import AuthToken
from patients.services import auth_tokens_purge_expired
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _request(token: str) -> Request:
    return Request(RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))


def test_it_signs_a_patient_in_with_their_role_rows_in_one_query(
    patient, django_assert_num_queries
):
    _, token = AuthToken.objects.create(user=patient.user, expiry=timedelta(days=1))
    with django_assert_num_queries(1):
        user, auth = BearerTokenAuthentication().authenticate(_request(token))
        # What the permission checks and the scoping ask next costs nothing more.
        assert user.patient == patient
        assert not hasattr(user, "clinician")
    assert auth.user_id == patient.user_id


def test_it_signs_a_clinician_in_with_their_clinic_membership(clinician, django_assert_num_queries):
    _, token = AuthToken.objects.create(user=clinician.user, expiry=timedelta(days=1))
    with django_assert_num_queries(1):
        user, _ = BearerTokenAuthentication().authenticate(_request(token))
        assert user.clinician == clinician
        assert not hasattr(user, "patient")


def test_it_rejects_and_deletes_an_expired_token(patient):
    instance, token = AuthToken.objects.create(user=patient.user, expiry=timedelta(hours=1))
    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed):
        BearerTokenAuthentication().authenticate(_request(token))
    assert not AuthToken.objects.filter(pk=instance.pk).exists()


def test_it_rejects_a_token_whose_key_matches_but_digest_does_not(patient):
    _, token = AuthToken.objects.create(user=patient.user, expiry=timedelta(days=1))
    forged = token[:15] + ("0" if token[15] != "0" else "1") + token[16:]
    with pytest.raises(AuthenticationFailed):
        BearerTokenAuthentication().authenticate(_request(forged))


def test_it_leaves_other_devices_expired_tokens_to_the_purge(patient, clinician):
    live, token = AuthToken.objects.create(user=patient.user, expiry=timedelta(days=1))
    stale, _ = AuthToken.objects.create(user=patient.user, expiry=timedelta(hours=1))
    other, _ = AuthToken.objects.create(user=clinician.user, expiry=timedelta(hours=1))
    AuthToken.objects.filter(pk__in=[stale.pk, other.pk]).update(
        expiry=timezone.now() - timedelta(minutes=1)
    )
    BearerTokenAuthentication().authenticate(_request(token))
    assert AuthToken.objects.filter(pk=stale.pk).exists()  # not scanned per request

    assert auth_tokens_purge_expired() == 2
    assert list(AuthToken.objects.values_list("pk", flat=True)) == [live.pk]


def test_it_purges_expired_tokens_on_the_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["auth-purge-expired-tokens"]
    assert entry["task"] == "patients.tasks.purge_expired_tokens_task"


# --------------------------------------------------------------------------- compiled once


def _fields(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _as_loaded(token: Any) -> dict[str, Any]:
    """Everything of a looked-up token a request can read without another query."""
    user = token._state.fields_cache["user"]
    roles = {name: user._state.fields_cache[name] for name in ("patient", "clinician")}
    return {
        "token": _fields(token),
        "user": _fields(user),
        "roles": {name: _fields(row) for name, row in roles.items()},
        "caches": (sorted(token._state.fields_cache), sorted(user._state.fields_cache)),
        # The role row knows its user without a query, as select_related leaves it.
        "back": [row._state.fields_cache.get("user") is user for row in roles.values() if row],
        "state": [(o._state.db, o._state.adding) for o in (token, user)],
        "classes": [type(o) for o in (token, user, *roles.values())],
    }


def test_it_compiles_the_look_up_once_and_loads_what_the_orm_loads(patient, clinician):
    staff = UserFactory.create(email="ops@example.com", is_staff=True)
    keys = []
    for user in (patient.user, clinician.user, staff):
        instance, _ = AuthToken.objects.create(user=user, expiry=timedelta(days=1))
        keys.append(instance.token_key)
    # Two devices whose keys collide: both rows come back, in the same order.
    twin, _ = AuthToken.objects.create(user=patient.user, expiry=None)
    AuthToken.objects.filter(pk=twin.pk).update(token_key=keys[0])

    lookup = _token_lookup()
    assert isinstance(lookup, CompiledTokenLookup)
    for key in [*keys, "no-such-key"]:
        compiled = lookup.run(key)
        orm = list(tokens_with_roles(key))
        assert [_as_loaded(t) for t in compiled] == [_as_loaded(t) for t in orm]
    assert len(lookup.run(keys[0])) == 2
    assert lookup.run(keys[2])[0].user.is_staff


def test_it_counts_the_compiled_look_up_as_the_one_query(patient, django_assert_num_queries):
    instance, _ = AuthToken.objects.create(user=patient.user, expiry=timedelta(days=1))
    with django_assert_num_queries(1) as captured:
        (token,) = _token_lookup().run(instance.token_key)
        assert token.user.patient.timezone == patient.timezone
    # Through the function planned once per connection, not the four-table join itself.
    assert "FROM patients_token_roles(" in captured.captured_queries[0]["sql"]
    assert " JOIN " not in captured.captured_queries[0]["sql"]
