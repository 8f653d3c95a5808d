"""The Bearer token look-up: knox's hashing and expiry, in one query per request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from patients.authentication import BearerTokenAuthentication
from patients.models import AuthToken
from patients.services import auth_tokens_purge_expired

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
